import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { Idea } from '../../src/crypto/idea';
import { ideaEcbPlain } from '../support/idea-plain';
import { edgeWordCases, IDEA_VECTORS as VECTORS } from '../support/idea-vectors';
import { NO_OPENSSL_IDEA, opensslHasIdea, opensslIdeaEcb } from '../support/lond-idea';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

function enc(key: Buffer, pt: Buffer): Buffer {
  const out = Buffer.alloc(8);
  new Idea(key).encryptBlock(pt, 0, out, 0);
  return out;
}

function dec(key: Buffer, ct: Buffer): Buffer {
  const out = Buffer.alloc(8);
  new Idea(key).decryptBlock(ct, 0, out, 0);
  return out;
}

// Two implementations independent of ours: OpenSSL's IDEA (where this node has it: it
// needs --openssl-legacy-provider, and Debian's OpenSSL has none) and the test side's plain one.
function openssl(mode: 'enc' | 'dec', key: Buffer, data: Buffer): Buffer {
  return opensslIdeaEcb(mode === 'dec', key, data);
}
const withOpenSsl = { skip: opensslHasIdea() ? false : NO_OPENSSL_IDEA };

test('PROTOCOL.md reference vector', () => {
  assert.equal(enc(hex('00010002000300040005000600070008'), hex('0000000100020003')).toString('hex'), '11fbed2b01986de5');
  assert.equal(dec(hex('00010002000300040005000600070008'), hex('11fbed2b01986de5')).toString('hex'), '0000000100020003');
});

test('published vectors, both directions', () => {
  for (const [k, p, c] of VECTORS) {
    assert.equal(enc(hex(k), hex(p)).toString('hex'), c, `encrypt key ${k} pt ${p}`);
    assert.equal(dec(hex(k), hex(c)).toString('hex'), p, `decrypt key ${k} ct ${c}`);
  }
});

test('the published vectors agree with OpenSSL (so the cross-check below is meaningful)', withOpenSsl, () => {
  for (const [k, p, c] of VECTORS) {
    assert.equal(openssl('enc', hex(k), hex(p)).toString('hex'), c);
  }
});

test('agrees with OpenSSL on random keys and blocks, in both directions', withOpenSsl, () => {
  for (let n = 0; n < 3000; n++) {
    const key = crypto.randomBytes(16);
    const data = crypto.randomBytes(8 * (1 + (n % 4)));
    const idea = new Idea(key);
    const ours = Buffer.alloc(data.length);
    for (let o = 0; o < data.length; o += 8) idea.encryptBlock(data, o, ours, o);
    assert.deepEqual(ours, openssl('enc', key, data), `encrypt key ${key.toString('hex')}`);
    const back = Buffer.alloc(data.length);
    for (let o = 0; o < data.length; o += 8) idea.decryptBlock(data, o, back, o);
    assert.deepEqual(back, openssl('dec', key, data), `decrypt key ${key.toString('hex')}`);
  }
});

test('keys and blocks made of 0x0000 and 0xffff words (the multiplication edge cases) agree with OpenSSL', withOpenSsl, () => {
  for (const { key, block: pt } of edgeWordCases(5)) {
    const ct = enc(key, pt);
    assert.deepEqual(ct, openssl('enc', key, pt), `key ${key.toString('hex')} pt ${pt.toString('hex')}`);
    assert.deepEqual(dec(key, ct), pt);
    assert.deepEqual(dec(key, pt), openssl('dec', key, pt));
  }
});

test('all-zero key: decrypt(encrypt(x)) = x and matches OpenSSL', withOpenSsl, () => {
  const key = Buffer.alloc(16);
  for (const p of ['0000000000000000', 'ffffffffffffffff', '0001000100010001', 'fffe0000ffff0001']) {
    const ct = enc(key, hex(p));
    assert.deepEqual(ct, openssl('enc', key, hex(p)));
    assert.equal(dec(key, ct).toString('hex'), p);
  }
});

test("agrees with the test side's plain IDEA (test/support/idea-plain.ts) on random keys and blocks, and on 0x0000/0xffff words", () => {
  for (let n = 0; n < 1000; n++) {
    const key = crypto.randomBytes(16);
    const data = crypto.randomBytes(8);
    assert.deepEqual(enc(key, data), ideaEcbPlain(false, key, data), `encrypt key ${key.toString('hex')}`);
    assert.deepEqual(dec(key, data), ideaEcbPlain(true, key, data), `decrypt key ${key.toString('hex')}`);
  }
  for (const { key, block: pt } of edgeWordCases(17)) {
    assert.deepEqual(enc(key, pt), ideaEcbPlain(false, key, pt), `key ${key.toString('hex')} pt ${pt.toString('hex')}`);
    assert.deepEqual(dec(key, pt), ideaEcbPlain(true, key, pt), `key ${key.toString('hex')} ct ${pt.toString('hex')}`);
  }
});

test('decrypt(encrypt(x)) = x on random keys and blocks', () => {
  for (let n = 0; n < 2000; n++) {
    const idea = new Idea(crypto.randomBytes(16));
    const pt = crypto.randomBytes(8);
    const ct = Buffer.alloc(8);
    idea.encryptBlock(pt, 0, ct, 0);
    assert.notDeepEqual(ct, pt);
    const back = Buffer.alloc(8);
    idea.decryptBlock(ct, 0, back, 0);
    assert.deepEqual(back, pt);
  }
});

test('works in place and at offsets, touching only its 8 bytes', () => {
  const key = hex('00010002000300040005000600070008');
  const idea = new Idea(key);
  const buf = Buffer.alloc(19, 0xaa);
  hex('0000000100020003').copy(buf, 5);
  idea.encryptBlock(buf, 5, buf, 5);
  assert.equal(buf.subarray(5, 13).toString('hex'), '11fbed2b01986de5');
  assert.equal(buf.subarray(0, 5).toString('hex'), 'aaaaaaaaaa');
  assert.equal(buf.subarray(13).toString('hex'), 'aaaaaaaaaaaa');
  idea.decryptBlock(buf, 5, buf, 5);
  assert.equal(buf.subarray(5, 13).toString('hex'), '0000000100020003');

  // From one offset to another of a different array; a plain Uint8Array works too.
  const src = new Uint8Array(24);
  src.set(hex('0000000100020003'), 16);
  const dst = new Uint8Array(11);
  idea.encryptBlock(src, 16, dst, 3);
  assert.equal(Buffer.from(dst.subarray(3)).toString('hex'), '11fbed2b01986de5');
  assert.deepEqual(Array.from(dst.subarray(0, 3)), [0, 0, 0]);
});

test('the key is copied: changing the key buffer later does not change the cipher', () => {
  const key = hex('00010002000300040005000600070008');
  const idea = new Idea(key);
  key.fill(0);
  const out = Buffer.alloc(8);
  idea.encryptBlock(hex('0000000100020003'), 0, out, 0);
  assert.equal(out.toString('hex'), '11fbed2b01986de5');
});

test('rejects keys that are not 16 bytes', () => {
  for (const n of [0, 8, 15, 17, 32]) {
    assert.throws(() => new Idea(new Uint8Array(n)), { name: 'RangeError', message: 'IDEA key must be 16 bytes' });
  }
  assert.throws(() => new Idea('0123456789abcdef' as unknown as Uint8Array), RangeError);
});
