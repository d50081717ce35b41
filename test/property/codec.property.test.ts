// The enc: codec and the session key, checked on random inputs against the fake lond's
// independent implementation (OpenSSL's IDEA where this node has it, else the test side's
// plain one; its own framing and key derivation):
// round trips hold, and no answer, however mangled, makes the decoder throw anything but
// EncAnswerError.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Idea } from '../../src/crypto/idea';
import { decodeEncAnswer, EncAnswerError, encodeEncryptedRequest, isEncAnswer, isEncryptRequest } from '../../src/protocol/codec';
import { deriveSessionKey, keyPrefix } from '../../src/protocol/key';
import { decodeEnc, encodeEnc, londKey } from '../support/fake-lond';
import { ASCII_PRINTABLE, forAll, Gen, gen, Rng, shrinkBuffer, UNICODE } from './gen';

interface Plain {
  key: Buffer;
  cmd: Buffer;
}

const keyGen: Gen<Buffer> = (r) => Buffer.from(Array.from({ length: 16 }, () => r.int(0, 255)));
const cmdGen: Gen<Buffer> = gen.oneOf(
  gen.bytes(80, [0x20, 0x3a, 0x61], 0.3),
  (r, size) => Buffer.from(gen.string([...ASCII_PRINTABLE, ...UNICODE], 40)(r, size), 'utf8'),
  // lengths around block boundaries
  (r) => Buffer.alloc(r.pick([0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65]), r.int(0, 255)),
);
const plainGen: Gen<Plain> = (r, size) => ({ key: keyGen(r, size), cmd: cmdGen(r, size) });
const showPlain = (p: Plain): string => `key ${p.key.toString('hex')}, cmd ${p.cmd.toString('hex')} (${p.cmd.length} bytes)`;
function* shrinkPlain(p: Plain): Iterable<Plain> {
  for (const cmd of shrinkBuffer(p.cmd)) yield { ...p, cmd };
}

test('encrypt: requests: the wire form follows PROTOCOL.md and lond decodes them', () => {
  forAll('codec-request', plainGen, ({ key, cmd }) => {
    const wire = encodeEncryptedRequest(cmd, new Idea(key)).toString('latin1');
    const m = /^enc:(\d+):([0-9a-f]*)$/.exec(wire);
    assert.ok(m, 'shape enc:<L>:<lowercase hex>');
    assert.equal(Number(m[1]), cmd.length);
    assert.equal(m[2].length, (Math.floor(cmd.length / 8) + 1) * 16, 'floor(L/8)+1 blocks');
    const decoded = decodeEnc(key, Buffer.from(wire, 'latin1'));
    assert.ok(decoded, 'the fake lond accepts the framing');
    assert.ok(decoded.equals(cmd));
  }, { runs: 400, shrink: shrinkPlain, show: showPlain });
});

test('enc: answers: what lond encodes decodes to the same bytes, hex in either case', () => {
  forAll('codec-answer', plainGen, ({ key, cmd }) => {
    const cipher = new Idea(key);
    const line = Buffer.from(encodeEnc(key, cmd), 'latin1');
    assert.ok(isEncAnswer(line));
    assert.ok(decodeEncAnswer(line, cipher).equals(cmd));
    const upper = Buffer.from(line.toString('latin1').replace(/:([0-9a-f]*)$/, (_m, h: string) => `:${h.toUpperCase()}`), 'latin1');
    assert.ok(decodeEncAnswer(upper, cipher).equals(cmd));
    // our own round trip, request form read back as an answer
    assert.ok(decodeEncAnswer(encodeEncryptedRequest(cmd, cipher), cipher).equals(cmd));
  }, { runs: 400, shrink: shrinkPlain, show: showPlain });
});

/** A valid enc: line with a few random edits: flips, cuts, insertions, odd lengths. */
function mangle(r: Rng, line: Buffer): Buffer {
  let b = Buffer.from(line);
  const edits = r.int(1, 4);
  for (let i = 0; i < edits; i++) {
    const at = r.int(0, b.length);
    switch (r.int(0, 6)) {
      case 0:
        if (b.length > 0) b[Math.min(at, b.length - 1)] = r.int(0, 255);
        break;
      case 1:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + r.int(1, 20)))]);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), Buffer.from(r.pick(['0', 'f', 'G', ':', '-', '9'.repeat(r.int(1, 30)), '\u00e9', ' ']), 'utf8'), b.subarray(at)]);
        break;
      case 3:
        b = b.subarray(0, at);
        break;
      case 4:
        b = Buffer.from(b.toString('latin1').replace(/^enc:\d*/, `enc:${r.pick(['', '-1', '00', String(r.int(0, 1000)), '9'.repeat(r.int(10, 40)), '1e3', ' 8'])}`), 'latin1');
        break;
      case 5:
        b = Buffer.concat([b, Buffer.from('0123456789abcdef'.slice(0, r.int(1, 16)))]);
        break;
      default:
        b = Buffer.from(b.toString('latin1').replace(/:/g, r.pick([':', '::', ''])), 'latin1');
    }
  }
  return b;
}

test('mangled and random enc: answers: a Buffer no longer than the hex allows, or EncAnswerError — nothing else', () => {
  const g: Gen<{ plain: Plain; line: Buffer }> = (r, size) => {
    const plain = plainGen(r, size);
    const line = r.bool(0.8) ? mangle(r, Buffer.from(encodeEnc(plain.key, plain.cmd), 'latin1')) : Buffer.concat([Buffer.from('enc:'), gen.bytes(60, [0x30, 0x3a, 0x61, 0x66])(r, size)]);
    return { plain, line };
  };
  forAll('codec-mangled', g, ({ plain, line }) => {
    let out: Buffer;
    try {
      out = decodeEncAnswer(line, new Idea(plain.key));
    } catch (err) {
      assert.ok(err instanceof EncAnswerError, `threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
      // Error messages describe the shape, never the content of the answer.
      const body = line.subarray(4).toString('latin1');
      if (body.length >= 12) assert.ok(!err.message.includes(body), 'the message quotes the answer');
      return;
    }
    const m = /^enc:(\d+):/.exec(line.toString('latin1'));
    assert.ok(m, 'only a well-formed header decodes');
    const hexLen = line.length - m[0].length;
    assert.equal(out.length, Number(m[1]));
    assert.ok(out.length <= hexLen / 2);
  }, { runs: 1500, show: ({ plain, line }) => `key ${plain.key.toString('hex')}, line ${JSON.stringify(line.toString('latin1'))}` });
});

test('decodeEncAnswer of a line that is not enc: throws EncAnswerError', () => {
  forAll('codec-not-enc', gen.bytes(30, [0x65, 0x6e, 0x63, 0x3a]), (line) => {
    if (isEncAnswer(line)) return;
    assert.throws(() => decodeEncAnswer(line, new Idea(Buffer.alloc(16))), EncAnswerError);
  }, { runs: 300, shrink: shrinkBuffer });
});

test('isEncryptRequest / isEncAnswer are exactly prefix tests on bytes', () => {
  forAll('codec-prefix', gen.bytes(12, [...Buffer.from('encrypt:')]), (b) => {
    assert.equal(isEncryptRequest(b), b.subarray(0, 8).toString('latin1') === 'encrypt:' && b.length >= 8);
    assert.equal(isEncAnswer(b), b.subarray(0, 4).toString('latin1') === 'enc:' && b.length >= 4);
  }, { runs: 500, shrink: shrinkBuffer });
});

const ID_CHARS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.', ...UNICODE.filter((c) => c !== '\ud800')];
const HEX = [...'0123456789ABCDEF'];

test('session key: same as the fake lond derives it, for any ids and buildkeys; line endings ignored', () => {
  const g: Gen<{ P: string; L: string; b: string }> = (r, size) => ({
    P: gen.string(ID_CHARS, 20, 1)(r, size),
    L: gen.string(ID_CHARS, 20, 1)(r, size),
    b: r.bool(0.8) ? gen.string(HEX, 40)(r, size) : gen.string([...ASCII_PRINTABLE, ...UNICODE.filter((c) => c !== '\ud800')], 30)(r, size),
  });
  forAll('key-derivation', g, ({ P, L, b }) => {
    const ours = deriveSessionKey(P, L, b);
    assert.equal(ours.length, 16);
    assert.equal(ours.toString('hex'), londKey(P, L, b).toString('hex'));
    for (const end of ['\n', '\r\n']) assert.ok(deriveSessionKey(P, L, b + end).equals(ours));
    // ASCII letters and digits only ever become hex digits; everything else stays.
    const k = keyPrefix(P, L);
    assert.equal(k.length, (P + L).length);
    for (let i = 0; i < k.length; i++) {
      const c = (P + L)[i] as string;
      if (/[A-Za-z0-9]/.test(c)) assert.match(k[i] as string, /[0-9A-F]/);
      else assert.equal(k[i], c);
    }
  }, { runs: 500 });
});
