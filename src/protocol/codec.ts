// The `encrypt:` → `enc:<L>:<hex>` codec of PROTOCOL.md "Encrypted requests". Hot path:
// hex is written to and read from preallocated Buffers directly, without strings.
// Error messages describe the shape of a bad answer, never its content.

export interface BlockCipher {
  encryptBlock(src: Uint8Array, so: number, dst: Uint8Array, d: number): void;
  decryptBlock(src: Uint8Array, so: number, dst: Uint8Array, d: number): void;
}

export const ENCRYPT_PREFIX: Buffer = Buffer.from('encrypt:', 'latin1');
const ENC_PREFIX = Buffer.from('enc:', 'latin1');

const SPACE = 0x20;
const COLON = 0x3a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
// Lengths beyond this many digits cannot fit any answer we accept, and stay exact as numbers.
const MAX_LENGTH_DIGITS = 15;

const HEX_OUT = Buffer.from('0123456789abcdef', 'latin1');
// Byte → nibble value, or -1 for a byte that is not a hex digit. Upper case is accepted
// from the peer; we always send lower case.
const HEX_IN = new Int8Array(256).fill(-1);
for (let c = 0; c < 16; c++) {
  HEX_IN['0123456789abcdef'.charCodeAt(c)] = c;
  HEX_IN['0123456789ABCDEF'.charCodeAt(c)] = c;
}

function hasPrefix(line: Buffer, prefix: Buffer): boolean {
  return line.length >= prefix.length && line.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

export function isEncryptRequest(line: Buffer): boolean {
  return hasPrefix(line, ENCRYPT_PREFIX);
}

export function isEncAnswer(line: Buffer): boolean {
  return hasPrefix(line, ENC_PREFIX);
}

// One block of scratch space; the codec is synchronous, so it is never shared mid-use.
const block = new Uint8Array(8);

/**
 * `cmd` = the bytes after `encrypt:`. Returns `enc:<L>:<hex>` without a line ending:
 * L = cmd's byte length, cmd padded with spaces to exactly floor(L/8)+1 blocks.
 */
export function encodeEncryptedRequest(cmd: Buffer, cipher: BlockCipher): Buffer {
  const len = cmd.length;
  const blocks = (len >>> 3) + 1;
  const header = `enc:${len}:`;
  const out = Buffer.allocUnsafe(header.length + blocks * 16);
  let o = out.write(header, 0, 'latin1');
  for (let b = 0; b < blocks; b++) {
    const from = b * 8;
    const n = Math.min(8, len - from);
    for (let i = 0; i < n; i++) block[i] = cmd[from + i];
    for (let i = n; i < 8; i++) block[i] = SPACE;
    cipher.encryptBlock(block, 0, block, 0);
    for (let i = 0; i < 8; i++) {
      const v = block[i];
      out[o++] = HEX_OUT[v >>> 4];
      out[o++] = HEX_OUT[v & 15];
    }
  }
  block.fill(0); // leave no plaintext behind in the module's scratch space
  return out;
}

export class EncAnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncAnswerError';
  }
}

/** Decodes `enc:<L>:<hex>` (as isEncAnswer recognised it) to the first L plaintext bytes. */
export function decodeEncAnswer(line: Buffer, cipher: BlockCipher): Buffer {
  if (!isEncAnswer(line)) throw new EncAnswerError('enc: answer does not start with "enc:"');
  let p = ENC_PREFIX.length;
  const digitsStart = p;
  let len = 0;
  while (p < line.length && line[p] >= DIGIT_0 && line[p] <= DIGIT_9) {
    len = len * 10 + (line[p] - DIGIT_0);
    p++;
  }
  const digits = p - digitsStart;
  if (digits === 0) throw new EncAnswerError('enc: answer has a non-numeric length');
  if (p >= line.length || line[p] !== COLON) {
    throw new EncAnswerError('enc: answer has no ":" after its length');
  }
  p++;
  const hexLen = line.length - p;
  if (hexLen % 16 !== 0) {
    throw new EncAnswerError(`enc: answer hex length ${hexLen} is not a multiple of 16`);
  }
  const bytes = hexLen / 2;
  if (digits > MAX_LENGTH_DIGITS || len > bytes) {
    const shown = digits > MAX_LENGTH_DIGITS ? `a ${digits}-digit length` : `length ${len}`;
    throw new EncAnswerError(`enc: answer has ${shown} but only ${bytes / 8} blocks (${bytes} bytes)`);
  }
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) {
    const hi = HEX_IN[line[p + 2 * i]];
    const lo = HEX_IN[line[p + 2 * i + 1]];
    if ((hi | lo) < 0) {
      const at = p + 2 * i + (hi < 0 ? 0 : 1);
      throw new EncAnswerError(`enc: answer has a non-hex character at offset ${at}`);
    }
    out[i] = (hi << 4) | lo;
  }
  for (let b = 0; b < bytes; b += 8) cipher.decryptBlock(out, b, out, b);
  return out.subarray(0, len);
}
