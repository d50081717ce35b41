// IDEA throughput: gatewayc's TypeScript cipher beside OpenSSL's idea-ecb, same process,
// same key and buffer. Also the per-request cost of the enc: codec for a typical line.
import * as crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Idea } from '../../src/crypto/idea';
import { encodeEncryptedRequest } from '../../src/protocol/codec';
import { encodeEnc } from '../../test/support/fake-lond';

export interface IdeaResult {
  tsEncryptMBs: number;
  tsDecryptMBs: number;
  opensslEncryptMBs: number;
  opensslDecryptMBs: number;
  /** Microseconds per `encrypt:` request of the benchmark's size, gatewayc's codec. */
  codecUs: number;
  /** The same with OpenSSL (a cipher object per request, as the fake lond does). */
  opensslCodecUs: number;
}

const KEY = Buffer.from('624516245280516a0bbef7eb9dbdbcac', 'hex');
const BUF_BYTES = 64 * 1024;

/** Runs `fn` (which processes `bytes` per call) for about ms milliseconds; returns MB/s. */
function rate(ms: number, bytes: number, fn: () => void): number {
  fn(); // warm-up: compile before timing
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    fn();
    n++;
    now = performance.now();
  }
  return (n * bytes) / ((now - start) / 1000) / 1e6;
}

function perCallUs(ms: number, fn: () => void): number {
  for (let i = 0; i < 1000; i++) fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    now = performance.now();
  }
  return ((now - start) * 1000) / n;
}

export function benchIdea(ms: number, cmd: Buffer): IdeaResult {
  const idea = new Idea(KEY);
  const buf = crypto.randomBytes(BUF_BYTES);
  const tsEncryptMBs = rate(ms, BUF_BYTES, () => {
    for (let o = 0; o < BUF_BYTES; o += 8) idea.encryptBlock(buf, o, buf, o);
  });
  const tsDecryptMBs = rate(ms, BUF_BYTES, () => {
    for (let o = 0; o < BUF_BYTES; o += 8) idea.decryptBlock(buf, o, buf, o);
  });
  const enc = crypto.createCipheriv('idea-ecb', KEY, null).setAutoPadding(false);
  const dec = crypto.createDecipheriv('idea-ecb', KEY, null).setAutoPadding(false);
  const opensslEncryptMBs = rate(ms, BUF_BYTES, () => {
    enc.update(buf);
  });
  const opensslDecryptMBs = rate(ms, BUF_BYTES, () => {
    dec.update(buf);
  });
  const codecUs = perCallUs(ms / 2, () => {
    encodeEncryptedRequest(cmd, idea);
  });
  const opensslCodecUs = perCallUs(ms / 2, () => {
    encodeEnc(KEY, cmd);
  });
  return { tsEncryptMBs, tsDecryptMBs, opensslEncryptMBs, opensslDecryptMBs, codecUs, opensslCodecUs };
}
