import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { writeLine } from '../../src/protocol/write-line';

function sink(): { out: Writable; chunks: Buffer[]; writes: () => number } {
  const chunks: Buffer[] = [];
  let writes = 0;
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes++;
      chunks.push(chunk);
      cb();
    },
    writev(parts, cb) {
      writes++;
      for (const p of parts) chunks.push(p.chunk as Buffer);
      cb();
    },
  });
  return { out, chunks, writes: () => writes };
}

test('a line and its newline reach the stream in one write, small or large, bytes unchanged', async () => {
  for (const size of [0, 1, 100, 16 * 1024 - 1, 16 * 1024, 1 << 20]) {
    const s = sink();
    const line = Buffer.alloc(size, 0xfe);
    writeLine(s.out, line);
    await new Promise((r) => setImmediate(r));
    assert.equal(s.writes(), 1, `size ${size}`);
    const all = Buffer.concat(s.chunks);
    assert.equal(all.length, size + 1);
    assert.equal(all[size], 10);
    assert.ok(all.subarray(0, size).equals(line));
  }
});
