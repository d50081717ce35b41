import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineReader, stripCR } from '../../src/protocol/framing';

function collector(maxLineBytes: number) {
  const lines: string[] = [];
  let overflows = 0;
  const reader = new LineReader({
    maxLineBytes,
    onLine: (l) => lines.push(l.toString('latin1')),
    onOverflow: () => overflows++,
  });
  return { reader, lines, overflows: () => overflows };
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

test('many lines in one chunk, empty lines included', () => {
  const { reader, lines } = collector(100);
  reader.push(b('a\nbb\n\nccc\n\n'));
  assert.deepEqual(lines, ['a', 'bb', '', 'ccc', '']);
  assert.equal(reader.pendingBytes, 0);
});

test('lines of one chunk are views of it, not copies', () => {
  const got: Buffer[] = [];
  const reader = new LineReader({ maxLineBytes: 100, onLine: (l) => got.push(l) });
  const chunk = b('one\ntwo\n');
  reader.push(chunk);
  assert.equal(got[0].buffer, chunk.buffer);
  assert.equal(got[1].byteOffset, chunk.byteOffset + 4);
});

test('one line across many chunks, split right before and right after the newline', () => {
  const { reader, lines } = collector(100);
  for (const piece of ['he', 'l', 'lo', ' wor', 'ld']) reader.push(b(piece));
  assert.equal(reader.pendingBytes, 11);
  assert.deepEqual(lines, []);
  reader.push(b('\n'));
  assert.deepEqual(lines, ['hello world']);
  assert.equal(reader.pendingBytes, 0);

  reader.push(b('abc'));
  reader.push(b('\ndef'));
  assert.deepEqual(lines, ['hello world', 'abc']);
  assert.equal(reader.pendingBytes, 3);
  reader.push(b('\n'));
  reader.push(b('\n'));
  assert.deepEqual(lines, ['hello world', 'abc', 'def', '']);
  reader.push(Buffer.alloc(0));
  assert.equal(reader.pendingBytes, 0);
});

test("'\\r' is kept by the reader; stripCR drops exactly one trailing '\\r' without copying", () => {
  const { reader, lines } = collector(100);
  reader.push(b('ok\r\nx\r\r\n\r\n'));
  assert.deepEqual(lines, ['ok\r', 'x\r\r', '\r']);

  const line = b('ok\r');
  const s = stripCR(line);
  assert.equal(s.toString(), 'ok');
  assert.equal(s.buffer, line.buffer, 'a view, not a copy');
  assert.equal(stripCR(b('x\r\r')).toString('latin1'), 'x\r');
  assert.equal(stripCR(b('\r')).length, 0);
  assert.equal(stripCR(b('')).length, 0);
  assert.equal(stripCR(b('a\rb')).toString('latin1'), 'a\rb');
  const noCR = b('plain');
  assert.equal(stripCR(noCR), noCR);
});

test('bytes, not characters: multibyte UTF-8 split across chunks is reassembled, limits count bytes', () => {
  const got: Buffer[] = [];
  let overflows = 0;
  const reader = new LineReader({ maxLineBytes: 9, onLine: (l) => got.push(l), onOverflow: () => overflows++ });
  const line = Buffer.from('é€😀', 'utf8'); // 3 characters, 2 + 3 + 4 = 9 bytes
  reader.push(line.subarray(0, 1));
  reader.push(line.subarray(1, 7));
  assert.equal(reader.pendingBytes, 7);
  reader.push(Buffer.concat([line.subarray(7), b('\n')]));
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], line);
  assert.equal(got[0].toString('utf8'), 'é€😀');
  reader.push(Buffer.from('é€😀x\n', 'utf8')); // 10 bytes
  assert.equal(overflows, 1);
  assert.equal(got.length, 1);
});

test('a line of exactly maxLineBytes is accepted, one byte more overflows', () => {
  const { reader, lines, overflows } = collector(5);
  reader.push(b('12345\n'));
  reader.push(b('123'));
  reader.push(b('45\n'));
  assert.deepEqual(lines, ['12345', '12345']);
  assert.equal(overflows(), 0);
  reader.push(b('123456\nok\n'));
  assert.deepEqual(lines, ['12345', '12345', 'ok']);
  assert.equal(overflows(), 1);
});

test('overflow in the middle of a chunk: reported at once, the rest of the line dropped through its newline', () => {
  const { reader, lines, overflows } = collector(4);
  reader.push(b('ab\nabcdefgh'));
  assert.deepEqual(lines, ['ab']);
  assert.equal(overflows(), 1, 'reported before any newline arrives');
  assert.equal(reader.pendingBytes, 0);
  reader.push(b('ijkl'));
  reader.push(b('mn\nnext\n'));
  assert.deepEqual(lines, ['ab', 'next']);
  assert.equal(overflows(), 1, 'once per line');
});

test('overflow after bytes were held, then normal lines, then another overflow', () => {
  const { reader, lines, overflows } = collector(6);
  reader.push(b('abcd'));
  assert.equal(reader.pendingBytes, 4);
  reader.push(b('efg'));
  assert.equal(overflows(), 1);
  assert.equal(reader.pendingBytes, 0);
  reader.push(b('still the same line\n1\n22\n'));
  assert.deepEqual(lines, ['1', '22']);
  reader.push(b('abcdefghij\n333\n'));
  assert.equal(overflows(), 2);
  assert.deepEqual(lines, ['1', '22', '333']);
});

test('an over-long line whose newline is in the same chunk', () => {
  const { reader, lines, overflows } = collector(3);
  reader.push(b('x\nlonglong\ny\nlonger still\n\n'));
  assert.deepEqual(lines, ['x', 'y', '']);
  assert.equal(overflows(), 2);
  assert.equal(reader.pendingBytes, 0);
});

test('without onOverflow, over-long lines are dropped silently', () => {
  const lines: string[] = [];
  const reader = new LineReader({ maxLineBytes: 2, onLine: (l) => lines.push(l.toString()) });
  reader.push(b('abc'));
  reader.push(b('d\nok\n'));
  assert.deepEqual(lines, ['ok']);
});

test('100 MB without a newline keeps pendingBytes <= maxLineBytes and reports one overflow', () => {
  const max = 1 << 20;
  const { reader, lines, overflows } = collector(max);
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  for (let sent = 0; sent < 100 * 1024 * 1024; sent += chunk.length) {
    reader.push(chunk);
    assert.ok(reader.pendingBytes <= max);
  }
  assert.equal(overflows(), 1);
  assert.equal(reader.pendingBytes, 0);
  reader.push(b('AAAA\nafter\n'));
  assert.deepEqual(lines, ['after']);
  // The same with chunks bigger than the limit.
  const big = Buffer.alloc(4 * max, 0x42);
  for (let i = 0; i < 25; i++) {
    reader.push(big);
    assert.ok(reader.pendingBytes <= max);
  }
  assert.equal(overflows(), 2);
});

test('reset drops held bytes and ends discarding; a callback that resets stops the current chunk', () => {
  const { reader, lines, overflows } = collector(4);
  reader.push(b('abc'));
  reader.reset();
  assert.equal(reader.pendingBytes, 0);
  reader.push(b('d\n'));
  assert.deepEqual(lines, ['d']);
  reader.push(b('toolong'));
  assert.equal(overflows(), 1);
  reader.reset();
  reader.push(b('e\n'));
  assert.deepEqual(lines, ['d', 'e'], 'after reset the next bytes start a new line');

  const seen: string[] = [];
  const r2: LineReader = new LineReader({
    maxLineBytes: 10,
    onLine: (l) => {
      seen.push(l.toString());
      if (l.toString() === 'stop') r2.reset();
    },
  });
  r2.push(b('a\nstop\nb\nc'));
  assert.deepEqual(seen, ['a', 'stop']);
  assert.equal(r2.pendingBytes, 0);

  let r3Lines = 0;
  const r3: LineReader = new LineReader({ maxLineBytes: 2, onLine: () => r3Lines++, onOverflow: () => r3.reset() });
  r3.push(b('toolong\nx\n'));
  assert.equal(r3Lines, 0);
});

test('rejects a bad maxLineBytes', () => {
  for (const m of [-1, 1.5, NaN]) {
    assert.throws(() => new LineReader({ maxLineBytes: m, onLine: () => undefined }), RangeError);
  }
});

// Deterministic PRNG so that a failure can be replayed.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

test('random data and random chunking agree with a naive split', () => {
  for (let round = 0; round < 400; round++) {
    const rnd = prng(round + 1);
    const max = Math.floor(rnd() * 20);
    const size = Math.floor(rnd() * 400);
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = rnd() < 0.12 ? 0x0a : rnd() < 0.1 ? 0x0d : 0x61 + Math.floor(rnd() * 26);

    // Naive model: split on '\n'; the last piece is incomplete.
    const pieces = data.toString('latin1').split('\n');
    const tail = pieces.pop() as string;
    const expectedLines = pieces.filter((p) => p.length <= max);
    const expectedOverflows = pieces.filter((p) => p.length > max).length + (tail.length > max ? 1 : 0);
    const expectedPending = tail.length > max ? 0 : tail.length;

    const { reader, lines, overflows } = collector(max);
    let at = 0;
    while (at < size) {
      const n = Math.min(size - at, Math.floor(rnd() * 30));
      reader.push(data.subarray(at, at + n));
      assert.ok(reader.pendingBytes <= max);
      at += n;
    }
    assert.deepEqual(lines, expectedLines, `round ${round}`);
    assert.equal(overflows(), expectedOverflows, `round ${round}`);
    assert.equal(reader.pendingBytes, expectedPending, `round ${round}`);
  }
});
