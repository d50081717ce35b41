import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecordSplitter, isTlsRecordType } from '../../src/peer/keymode/records';

function record(type: number, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const h = Buffer.from([type, 0x03, 0x03, 0, 0]);
  h.writeUInt16BE(b.length, 3);
  return Buffer.concat([h, b]);
}

/** Feeds `stream` in pieces of `size` bytes; returns records handed on and the cleartext. */
function run(stream: Buffer, size: number, collect = true): { records: Buffer[]; clear: Buffer; s: RecordSplitter } {
  const s = new RecordSplitter();
  const records: Buffer[] = [];
  if (collect) s.onRecord = (r) => records.push(r);
  const clear: Buffer[] = [];
  for (let i = 0; i < stream.length; i += size) clear.push(s.push(stream.subarray(i, i + size)));
  return { records, clear: Buffer.concat(clear), s };
}

describe('RecordSplitter', () => {
  const recs = [record(0x16, 'hello handshake'), record(0x14, Buffer.from([1])), record(0x17, Buffer.alloc(300, 0x0a)), record(0x15, Buffer.alloc(0))];
  const clear = Buffer.from('ok\nanswer \x16 with a TLS byte inside\n', 'latin1');
  const stream = Buffer.concat([...recs, clear]);

  for (const size of [1, 2, 5, 7, 64, stream.length]) {
    it(`splits records and finds the cleartext at the exact byte (chunks of ${size})`, () => {
      const r = run(stream, size);
      assert.deepEqual(r.records, recs);
      assert.deepEqual(r.clear, clear);
      assert.equal(r.s.inCleartext, true);
      assert.equal(r.s.recordCount, 4);
    });
  }

  it('drops records without buffering them while onRecord is unset', () => {
    const r = run(stream, 3, false);
    assert.deepEqual(r.clear, clear);
    assert.equal(r.s.recordCount, 4);
  });

  it('drops the rest when onRecord is unset in the middle of the stream', () => {
    const s = new RecordSplitter();
    const got: Buffer[] = [];
    s.onRecord = (rec) => {
      got.push(rec);
      s.onRecord = undefined; // the key arrived with the first record
    };
    const out = s.push(stream);
    assert.deepEqual(got, [recs[0]]);
    assert.deepEqual(out, clear);
  });

  it('passes everything through once the cleartext began', () => {
    const s = new RecordSplitter();
    assert.deepEqual(s.push(Buffer.from('x')), Buffer.from('x'));
    const later = Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x00]);
    assert.equal(s.push(later), later);
  });

  it('gives back a header with an impossible version or length as cleartext', () => {
    const bad = Buffer.concat([Buffer.from([0x16, 0x02, 0x00]), Buffer.from('rest')]);
    const r = run(Buffer.concat([recs[0], bad]), 2);
    assert.deepEqual(r.records, [recs[0]]);
    assert.deepEqual(r.clear, bad);
    const long = Buffer.from([0x17, 0x03, 0x03, 0xff, 0xff, 0x41]);
    assert.deepEqual(run(long, 1).clear, long);
  });

  it('knows where a record is half-read', () => {
    const s = new RecordSplitter();
    assert.equal(s.atBoundary, true);
    s.push(recs[0].subarray(0, 3));
    assert.equal(s.atBoundary, false);
    s.push(recs[0].subarray(3, 10));
    assert.equal(s.atBoundary, false);
    s.push(recs[0].subarray(10));
    assert.equal(s.atBoundary, true);
  });

  it('knows the record types', () => {
    assert.deepEqual([0x13, 0x14, 0x15, 0x16, 0x17, 0x18].map(isTlsRecordType), [false, true, true, true, true, false]);
  });
});
