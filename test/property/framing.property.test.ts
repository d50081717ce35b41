// Line framing against a reference model: whatever the bytes and however they are cut
// into chunks, the reader delivers exactly the lines the model predicts, overflows once
// per over-long line, never holds more than its limit, and throws nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineReader, stripCR } from '../../src/protocol/framing';
import { forAll, Gen, gen, Rng, shrinkBuffer } from './gen';

type Event = { line: string } | 'overflow';

interface Case {
  stream: Buffer;
  /** Chunk boundaries (cut points into stream). */
  cuts: number[];
  max: number;
}

const NL = 0x0a;
const CR = 0x0d;

const streamGen: Gen<Buffer> = gen.bytes(300, [NL, NL, CR, 0x61, 0x62, 0x00, 0xff], 0.6);

const caseGen: Gen<Case> = (r, size) => {
  const stream = streamGen(r, size);
  const cuts = Array.from({ length: r.int(0, 12) }, () => r.int(0, stream.length)).sort((a, b) => a - b);
  const max = r.weighted<number>([
    [3, r.int(0, 4)],
    [5, r.int(5, 40)],
    [2, r.int(41, 400)],
  ]);
  return { stream, cuts, max };
};

/** What a line reader must do with the whole stream. */
function model(stream: Buffer, max: number): { events: Event[]; pending: number } {
  const events: Event[] = [];
  let start = 0;
  for (let nl = stream.indexOf(NL); nl >= 0; nl = stream.indexOf(NL, start)) {
    const len = nl - start;
    events.push(len <= max ? { line: stream.subarray(start, nl).toString('hex') } : 'overflow');
    start = nl + 1;
  }
  const tail = stream.length - start;
  if (tail > max) events.push('overflow');
  return { events, pending: tail > max ? 0 : tail };
}

function run(c: Case): { events: Event[]; pending: number } {
  const events: Event[] = [];
  const reader = new LineReader({
    maxLineBytes: c.max,
    onLine: (l) => events.push({ line: Buffer.from(l).toString('hex') }),
    onOverflow: () => events.push('overflow'),
  });
  let prev = 0;
  for (const cut of [...c.cuts, c.stream.length]) {
    // A copy per chunk: the reader may keep views, so chunks must not be reused.
    reader.push(Buffer.from(c.stream.subarray(prev, cut)));
    assert.ok(reader.pendingBytes <= c.max, `pendingBytes ${reader.pendingBytes} > max ${c.max}`);
    prev = cut;
  }
  return { events, pending: reader.pendingBytes };
}

const showCase = (c: Case): string => `max ${c.max}, cuts ${JSON.stringify(c.cuts)}, stream ${JSON.stringify(c.stream.toString('latin1'))}`;

function* shrinkCase(c: Case): Iterable<Case> {
  for (const stream of shrinkBuffer(c.stream)) yield { ...c, stream, cuts: c.cuts.filter((x) => x <= stream.length) };
  if (c.cuts.length > 0) yield { ...c, cuts: c.cuts.slice(1) };
  if (c.max > 0) yield { ...c, max: c.max - 1 };
}

test('LineReader delivers what the model predicts for any bytes, any chunking, any limit', () => {
  forAll('framing-model', caseGen, (c) => {
    assert.deepEqual(run(c), model(c.stream, c.max));
  }, { runs: 1500, shrink: shrinkCase, show: showCase });
});

test('LineReader: the result does not depend on how the stream is cut', () => {
  forAll('framing-chunking', caseGen, (c, r) => {
    const whole = run({ ...c, cuts: [] });
    const byteByByte = run({ ...c, cuts: Array.from({ length: c.stream.length }, (_, i) => i) });
    const random = run({ ...c, cuts: Array.from({ length: r.int(0, 5) }, () => r.int(0, c.stream.length)).sort((a, b) => a - b) });
    assert.deepEqual(byteByByte, whole);
    assert.deepEqual(random, whole);
  }, { runs: 300, shrink: shrinkCase, show: showCase });
});

test('LineReader: reset() from a callback at random moments never throws, keeps the bound, and resynchronises', () => {
  forAll('framing-reset', caseGen, (c, r) => {
    const resetAt = new Set(Array.from({ length: r.int(0, 4) }, () => r.int(0, 20)));
    let n = 0;
    const lines: string[] = [];
    const reader: LineReader = new LineReader({
      maxLineBytes: c.max,
      onLine: (l) => {
        lines.push(l.toString('latin1'));
        if (resetAt.has(n++)) reader.reset();
      },
      onOverflow: () => {
        if (resetAt.has(n++)) reader.reset();
      },
    });
    let prev = 0;
    for (const cut of [...c.cuts, c.stream.length]) {
      reader.push(Buffer.from(c.stream.subarray(prev, cut)));
      assert.ok(reader.pendingBytes <= c.max);
      prev = cut;
    }
    // After a reset the next line is read whole, whatever state the reader was in.
    resetAt.clear();
    reader.reset();
    assert.equal(reader.pendingBytes, 0);
    reader.push(Buffer.from('\n'));
    assert.equal(lines.at(-1), '');
  }, { runs: 400, shrink: shrinkCase, show: showCase });
});

test('LineReader rejects a bad limit with RangeError only', () => {
  const bad: Gen<number> = (r) => r.pick([-1, -0.5, 0.5, 1.5, NaN, Infinity, -Infinity, -(2 ** 40), r.int(-1000, -1) + 0.25]);
  forAll('framing-bad-limit', bad, (max) => {
    assert.throws(() => new LineReader({ maxLineBytes: max, onLine: () => undefined }), RangeError);
  }, { runs: 40 });
});

test('stripCR removes exactly one trailing CR and nothing else', () => {
  forAll('framing-stripcr', gen.bytes(20, [CR, NL, 0x41]), (b) => {
    const out = stripCR(b);
    const endsCR = b.length > 0 && b[b.length - 1] === CR;
    assert.equal(out.length, b.length - (endsCR ? 1 : 0));
    assert.ok(out.equals(b.subarray(0, out.length)));
  }, { runs: 300, shrink: shrinkBuffer });
});

// The Rng itself is part of what makes these tests trustworthy.
test('Rng is reproducible and int() stays in range', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 100 }, () => a.int(-3, 3));
  assert.deepEqual(xs, Array.from({ length: 100 }, () => b.int(-3, 3)));
  assert.ok(xs.every((x) => x >= -3 && x <= 3));
  assert.equal(new Set(xs).size, 7, 'every value of a small range shows up');
  assert.notDeepEqual(Array.from({ length: 10 }, () => new Rng(1).u32()), Array.from({ length: 10 }, () => new Rng(2).u32()));
});

test('forAll reports the seed and the shrunk input of a failing property', () => {
  assert.throws(
    () => forAll('demo-failure', gen.bytes(50, [0x78]), (b) => assert.ok(!b.includes(0x78)), { runs: 100, shrink: shrinkBuffer }),
    (err: Error) => /replay with GATEWAYC_PROPERTY_SEED=\d+/.test(err.message) && /input \(shrunk\): Buffer<78>/.test(err.message),
  );
});
