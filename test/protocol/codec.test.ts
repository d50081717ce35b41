import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { Idea } from '../../src/crypto/idea';
import {
  decodeEncAnswer,
  ENCRYPT_PREFIX,
  EncAnswerError,
  encodeEncryptedRequest,
  isEncAnswer,
  isEncryptRequest,
} from '../../src/protocol/codec';
import { chooseIdeaBackend, ideaEcb } from '../support/lond-idea';

// The key of PROTOCOL.md's worked example (msul1/msul2).
const KEY = Buffer.from('624516245280516a0bbef7eb9dbdbcac', 'hex');
const cipher = new Idea(KEY);

// The independent side (what lond does), with the test side's IDEA rather than ours:
// OpenSSL's where this node has it, the plain one of test/support/idea-plain.ts otherwise.
const LOND_IDEA = chooseIdeaBackend();
function londEcb(mode: 'enc' | 'dec', key: Buffer, data: Buffer): Buffer {
  return ideaEcb(LOND_IDEA, mode === 'dec', key, data);
}

function padded(cmd: Buffer): Buffer {
  const blocks = Math.floor(cmd.length / 8) + 1;
  const out = Buffer.alloc(blocks * 8, 0x20);
  cmd.copy(out);
  return out;
}

/** How lond reads an `enc:` request: the L and the decrypted bytes. */
function londReads(wire: Buffer, key: Buffer): { len: number; plain: Buffer } {
  const m = /^enc:(\d+):([0-9a-f]*)$/.exec(wire.toString('latin1'));
  assert.ok(m, 'wire form is enc:<L>:<lowercase hex>');
  const len = Number(m[1]);
  return { len, plain: londEcb('dec', key, Buffer.from(m[2], 'hex')) };
}

/** How lond would build an `enc:` answer. */
function londAnswers(answer: Buffer, key: Buffer, upper = false): Buffer {
  let h = londEcb('enc', key, padded(answer)).toString('hex');
  if (upper) h = h.toUpperCase();
  return Buffer.from(`enc:${answer.length}:${h}`, 'latin1');
}

test('PROTOCOL.md example: encrypt:ping:abc', () => {
  const line = Buffer.from('encrypt:ping:abc');
  assert.ok(isEncryptRequest(line));
  const wire = encodeEncryptedRequest(line.subarray(ENCRYPT_PREFIX.length), cipher);
  assert.equal(wire.toString('latin1'), 'enc:8:d785e3cda53998a4b062af68f8f4434c');
  // And lond's IDEA agrees with the documented ciphertext (second block: 8 spaces).
  assert.equal(londEcb('enc', KEY, Buffer.from('ping:abc        ')).toString('hex'), 'd785e3cda53998a4b062af68f8f4434c');
  assert.equal(decodeEncAnswer(wire, cipher).toString('latin1'), 'ping:abc');
});

test('ENCRYPT_PREFIX, isEncryptRequest, isEncAnswer', () => {
  assert.equal(ENCRYPT_PREFIX.toString('latin1'), 'encrypt:');
  for (const s of ['encrypt:', 'encrypt:x', 'encrypt:ping:abc']) assert.equal(isEncryptRequest(Buffer.from(s)), true, s);
  for (const s of ['', 'encrypt', 'Encrypt:x', 'ENCRYPT:x', ' encrypt:x', 'xencrypt:', 'enc:8:00', 'encrypt;x']) {
    assert.equal(isEncryptRequest(Buffer.from(s)), false, s);
  }
  for (const s of ['enc:', 'enc:8:00', 'enc:x']) assert.equal(isEncAnswer(Buffer.from(s)), true, s);
  for (const s of ['', 'enc', 'encrypt:x', 'ENC:8:00', ' enc:8', 'ok', 'con_lost']) assert.equal(isEncAnswer(Buffer.from(s)), false, s);
});

test('lengths 0, 7, 8, 9, 16: floor(L/8)+1 blocks of space-padded bytes, lowercase hex', () => {
  for (const len of [0, 1, 7, 8, 9, 15, 16, 17, 100]) {
    const cmd = Buffer.alloc(len);
    for (let i = 0; i < len; i++) cmd[i] = 0x61 + (i % 26);
    const wire = encodeEncryptedRequest(cmd, cipher);
    const blocks = Math.floor(len / 8) + 1;
    const header = `enc:${len}:`;
    assert.equal(wire.subarray(0, header.length).toString('latin1'), header);
    assert.equal(wire.length, header.length + 16 * blocks, `L=${len}`);
    assert.match(wire.subarray(header.length).toString('latin1'), /^[0-9a-f]*$/);
    const { len: l, plain } = londReads(wire, KEY);
    assert.equal(l, len);
    assert.deepEqual(plain, padded(cmd), `L=${len}: lond sees cmd then spaces`);
    assert.deepEqual(decodeEncAnswer(wire, cipher), cmd);
  }
  // L = 0 and L = 8 end with a whole block of spaces.
  assert.equal(encodeEncryptedRequest(Buffer.alloc(0), cipher).toString('latin1'), `enc:0:${londEcb('enc', KEY, Buffer.from('        ')).toString('hex')}`);
});

test('multibyte UTF-8: L counts bytes', () => {
  const cmd = Buffer.from('put:msul1:é€😀:ü', 'utf8');
  assert.equal(cmd.length, 22); // 15 characters, 22 bytes
  const wire = encodeEncryptedRequest(cmd, cipher);
  assert.ok(wire.toString('latin1').startsWith('enc:22:'));
  assert.equal(wire.length, 'enc:22:'.length + 3 * 16);
  const { plain } = londReads(wire, KEY);
  assert.deepEqual(plain.subarray(0, 22), cmd);
  assert.deepEqual(decodeEncAnswer(wire, cipher), cmd);
});

test('binary bytes, all 256 values, pass through unchanged', () => {
  const cmd = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) cmd[i] = i;
  const wire = encodeEncryptedRequest(cmd, cipher);
  assert.equal(wire.indexOf(0x0a), -1, 'no newline in the wire form');
  assert.deepEqual(londReads(wire, KEY).plain, padded(cmd));
  assert.deepEqual(decodeEncAnswer(wire, cipher), cmd);
  // Trailing spaces in the command itself are kept: L says where it ends.
  const spaces = Buffer.from('abc   ');
  assert.deepEqual(decodeEncAnswer(encodeEncryptedRequest(spaces, cipher), cipher), spaces);
});

test('answers built the way lond builds them decode to the first L bytes', () => {
  for (let n = 0; n < 300; n++) {
    const key = crypto.randomBytes(16);
    const c = new Idea(key);
    const answer = crypto.randomBytes(n % 41);
    assert.deepEqual(decodeEncAnswer(londAnswers(answer, key), c), answer);
    assert.deepEqual(decodeEncAnswer(londAnswers(answer, key, true), c), answer, 'upper-case hex is accepted');
    // And a request we encode is what lond decodes.
    const { len, plain } = londReads(encodeEncryptedRequest(answer, c), key);
    assert.deepEqual(plain.subarray(0, len), answer);
  }
});

test('extra blocks beyond L are tolerated: only the first L bytes are kept', () => {
  const answer = Buffer.from('ok');
  const h = londEcb('enc', KEY, Buffer.from('ok              ')).toString('hex');
  assert.deepEqual(decodeEncAnswer(Buffer.from(`enc:2:${h}`), cipher), answer);
  assert.equal(decodeEncAnswer(Buffer.from('enc:0:'), cipher).length, 0);
  assert.deepEqual(decodeEncAnswer(Buffer.from(`enc:002:${h}`), cipher), answer, 'leading zeros in L');
});

test('encoding leaves the command buffer untouched', () => {
  const cmd = Buffer.from('put:a:b:c');
  const copy = Buffer.from(cmd);
  encodeEncryptedRequest(cmd, cipher);
  assert.deepEqual(cmd, copy);
});

test('every malformed answer throws EncAnswerError without showing content', () => {
  const block = 'd785e3cda53998a4';
  const cases: [string, RegExp][] = [
    ['enc:', /non-numeric length/],
    ['enc::' + block, /non-numeric length/],
    ['enc:x:' + block, /non-numeric length/],
    ['enc:-1:' + block, /non-numeric length/],
    ['enc: 8:' + block, /non-numeric length/],
    ['enc:+8:' + block, /non-numeric length/],
    ['enc:8', /no ":" after its length/],
    ['enc:8;' + block, /no ":" after its length/],
    ['enc:8 :' + block, /no ":" after its length/],
    ['enc:8:' + block.slice(0, 15), /hex length 15 is not a multiple of 16/],
    ['enc:8:' + block + block + 'a', /hex length 33 is not a multiple of 16/],
    ['enc:8:' + block + '\r', /hex length 17 is not a multiple of 16/],
    ['enc:8:' + block + ':' + block.slice(1), /hex length 32 is not a multiple of 16|non-hex/],
    ['enc:9:' + block, /length 9 but only 1 blocks \(8 bytes\)/],
    ['enc:1:', /length 1 but only 0 blocks/],
    ['enc:99999999999999999999:' + block, /20-digit length/],
    ['enc:8:d785e3cda53998ag', /non-hex character at offset 21/],
    ['enc:8:g785e3cda53998a4', /non-hex character at offset 6/],
    ['enc:8:d785e3cd 53998a4', /non-hex character at offset 14/],
    ['enc:8:0x85e3cda53998a4', /non-hex character at offset 7/],
    ['enc8:' + block, /does not start with "enc:"/],
    ['ok', /does not start with "enc:"/],
  ];
  for (const [line, why] of cases) {
    assert.throws(() => decodeEncAnswer(Buffer.from(line, 'latin1'), cipher), (err: unknown) => {
      assert.ok(err instanceof EncAnswerError, `${line}: ${String(err)}`);
      assert.ok(err instanceof Error);
      assert.match(err.message, why, line);
      assert.ok(!err.message.includes('d785'), `no content in: ${err.message}`);
      return true;
    });
  }
  // Non-ASCII bytes in the hex are reported by offset too.
  const bad = Buffer.concat([Buffer.from('enc:8:'), Buffer.from(block.slice(0, 14)), Buffer.from([0xc3, 0xa9])]);
  assert.throws(() => decodeEncAnswer(bad, cipher), /non-hex character at offset 20/);
});
