// The test side's plain IDEA (idea-plain.ts) against the published vectors, PROTOCOL.md's
// examples, and OpenSSL's IDEA where this node has it (skipped with the reason where not).
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { test } from 'node:test';
import { add, addInverse, cryptBlock, decryptionSubkeys, encryptionSubkeys, ideaEcbPlain, mul, mulInverse } from './idea-plain';
import { edgeWordCases, IDEA_VECTORS } from './idea-vectors';
import { NO_OPENSSL_IDEA, opensslHasIdea, opensslIdeaEcb } from './lond-idea';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const enc = (key: Buffer, data: Buffer): Buffer => ideaEcbPlain(false, key, data);
const dec = (key: Buffer, data: Buffer): Buffer => ideaEcbPlain(true, key, data);
const withOpenSsl = { skip: opensslHasIdea() ? false : NO_OPENSSL_IDEA };

test('word arithmetic: 0 stands for 2^16 in ⊙, ⊞ wraps at 2^16', () => {
  assert.equal(mul(0, 0), 1, '2^16 · 2^16 = (-1)(-1) = 1 mod 2^16+1');
  assert.equal(mul(0, 1), 0, '2^16 · 1 = 2^16, written 0');
  assert.equal(mul(0, 2), 0xffff, '2^16 · 2 = -2 = 2^16 - 1');
  assert.equal(mul(0xffff, 0xffff), 4, '(-2)(-2) = 4');
  assert.equal(mul(3, 5), 15);
  assert.equal(mul(0x8000, 2), 0, '2^16, written 0');
  assert.equal(add(0xffff, 1), 0);
  assert.equal(add(0x1234, 0x4321), 0x5555);
  // ⊙ against BigInt arithmetic on a spread of words
  for (let a = 0; a < 0x10000; a += 251) {
    for (const b of [0, 1, 2, 0x7fff, 0x8000, 0xfffe, 0xffff, a ^ 0x5a5a]) {
      const A = BigInt(a === 0 ? 0x10000 : a);
      const B = BigInt(b === 0 ? 0x10000 : b);
      const want = Number((A * B) % 0x10001n) % 0x10000; // 2^16 is written 0
      assert.equal(mul(a, b), want, `${a} ⊙ ${b}`);
    }
  }
});

test('inverses: x ⊙ x⁻¹ = 1 and x ⊞ -x = 0 for every 16-bit word', () => {
  for (let x = 0; x < 0x10000; x++) {
    assert.equal(mul(x, mulInverse(x)), 1, `⊙ inverse of ${x}`);
    assert.equal(add(x, addInverse(x)), 0, `⊞ inverse of ${x}`);
  }
  assert.equal(mulInverse(0), 0, '2^16 = -1 is its own inverse');
  assert.equal(mulInverse(1), 1);
});

test('key schedule: the key words, then the key rotated left by 25 bits', () => {
  const z = encryptionSubkeys(hex('00010002000300040005000600070008'));
  assert.equal(z.length, 52);
  // Worked by hand for the key words w = 1..8: after a rotation by 16q + r bits, word i is
  // (w[i+q] << r | w[i+q+1] >> (16 - r)) & 0xffff, indices mod 8.
  assert.deepEqual(z.slice(0, 8), [1, 2, 3, 4, 5, 6, 7, 8]);
  // 25 = 16 + 9
  assert.deepEqual(z.slice(8, 16), [0x0400, 0x0600, 0x0800, 0x0a00, 0x0c00, 0x0e00, 0x1000, 0x0200]);
  // 50 = 48 + 2
  assert.deepEqual(z.slice(16, 18), [0x0010, 0x0014]);
  // the output transformation's four: 150 mod 128 = 22 = 16 + 6
  assert.deepEqual(z.slice(48), [0x0080, 0x00c0, 0x0100, 0x0140]);
  assert.throws(() => encryptionSubkeys(Buffer.alloc(15)), /16 bytes/);
});

test('decryption subkeys undo the encryption subkeys step by step', () => {
  const z = encryptionSubkeys(crypto.randomBytes(16));
  const d = decryptionSubkeys(z);
  assert.equal(d.length, 52);
  // first decryption step against the output transformation
  assert.equal(mul(d[0], z[48]), 1);
  assert.equal(add(d[1], z[49]), 0);
  assert.equal(add(d[2], z[50]), 0);
  assert.equal(mul(d[3], z[51]), 1);
  // the last one against the first encryption round
  assert.equal(mul(d[48], z[0]), 1);
  assert.equal(add(d[49], z[1]), 0);
  assert.equal(add(d[50], z[2]), 0);
  assert.equal(mul(d[51], z[3]), 1);
});

test("PROTOCOL.md's reference vector and its enc: example", () => {
  assert.equal(enc(hex('00010002000300040005000600070008'), hex('0000000100020003')).toString('hex'), '11fbed2b01986de5');
  assert.equal(dec(hex('00010002000300040005000600070008'), hex('11fbed2b01986de5')).toString('hex'), '0000000100020003');
  // encrypt:ping:abc under the worked-example key: enc:8:<two blocks>, the second 8 spaces
  const key = hex('624516245280516a0bbef7eb9dbdbcac');
  assert.equal(enc(key, Buffer.from('ping:abc        ')).toString('hex'), 'd785e3cda53998a4b062af68f8f4434c');
  assert.equal(dec(key, hex('d785e3cda53998a4b062af68f8f4434c')).toString('latin1'), 'ping:abc        ');
});

test('published vectors (Lai, NESSIE, Bouncy Castle), both directions', () => {
  for (const [k, p, c] of IDEA_VECTORS) {
    assert.equal(enc(hex(k), hex(p)).toString('hex'), c, `encrypt key ${k} pt ${p}`);
    assert.equal(dec(hex(k), hex(c)).toString('hex'), p, `decrypt key ${k} ct ${c}`);
  }
});

test('ECB over several blocks is block by block; partial blocks are refused', () => {
  const key = crypto.randomBytes(16);
  const data = crypto.randomBytes(40);
  const whole = enc(key, data);
  for (let o = 0; o < 40; o += 8) assert.deepEqual(whole.subarray(o, o + 8), enc(key, data.subarray(o, o + 8)));
  assert.deepEqual(dec(key, whole), data);
  assert.deepEqual(enc(key, Buffer.alloc(0)), Buffer.alloc(0));
  assert.throws(() => enc(key, Buffer.alloc(9)), /8-byte blocks/);
  assert.throws(() => cryptBlock(encryptionSubkeys(key), Buffer.alloc(7)), /8 bytes/);
});

test('decrypt(encrypt(x)) = x on random keys and blocks', () => {
  for (let n = 0; n < 500; n++) {
    const key = crypto.randomBytes(16);
    const pt = crypto.randomBytes(8);
    const ct = enc(key, pt);
    assert.notDeepEqual(ct, pt);
    assert.deepEqual(dec(key, ct), pt);
  }
});

test("agrees with OpenSSL's IDEA on random keys and data, both directions", withOpenSsl, () => {
  for (let n = 0; n < 1000; n++) {
    const key = crypto.randomBytes(16);
    const data = crypto.randomBytes(8 * (1 + (n % 4)));
    assert.deepEqual(enc(key, data), opensslIdeaEcb(false, key, data), `encrypt key ${key.toString('hex')}`);
    assert.deepEqual(dec(key, data), opensslIdeaEcb(true, key, data), `decrypt key ${key.toString('hex')}`);
  }
});

test("keys and blocks made of 0x0000 and 0xffff words (the ⊙ edge cases) agree with OpenSSL's IDEA", withOpenSsl, () => {
  for (const { key, block: pt } of edgeWordCases(3)) {
    assert.deepEqual(enc(key, pt), opensslIdeaEcb(false, key, pt), `key ${key.toString('hex')} pt ${pt.toString('hex')}`);
    assert.deepEqual(dec(key, pt), opensslIdeaEcb(true, key, pt), `key ${key.toString('hex')} ct ${pt.toString('hex')}`);
  }
});
