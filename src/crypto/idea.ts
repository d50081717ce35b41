// IDEA block cipher (Lai & Massey), ECB block function only: lond's session cipher.
// Debian's OpenSSL ships without IDEA and no maintained npm package provides it, so it
// lives here. 64-bit blocks, 128-bit key, 8.5 rounds, big-endian 16-bit words.

const ROUNDS = 8;
const SUBKEYS = 6 * ROUNDS + 4; // 52

// Multiplication modulo 2^16+1 where the word 0 stands for 2^16.
// Both operands are < 2^16, so the product is < 2^32: Math.imul returns it exactly as
// the bit pattern of an int32 (no float arithmetic), which `>>> 16` reads as unsigned.
function mul(a: number, b: number): number {
  if (a === 0) return (0x10001 - b) & 0xffff;
  if (b === 0) return (0x10001 - a) & 0xffff;
  const p = Math.imul(a, b);
  const lo = p & 0xffff;
  const hi = p >>> 16;
  // p = hi*2^16 + lo ≡ lo - hi (mod 2^16+1); a negative difference wraps by +2^16+1,
  // which modulo 2^16 is +1.
  return (lo - hi + (lo < hi ? 1 : 0)) & 0xffff;
}

// Multiplicative inverse modulo 2^16+1 (a prime), with 0 meaning 2^16 ≡ -1, its own inverse.
function mulInv(x: number): number {
  if (x <= 1) return x;
  // Fermat: x^(p-2) mod p, p = 65537. Square-and-multiply with exact doubles (< 2^33).
  let result = 1;
  let base = x;
  let e = 0x10001 - 2;
  while (e > 0) {
    if (e & 1) result = (result * base) % 0x10001;
    base = (base * base) % 0x10001;
    e >>>= 1;
  }
  return result & 0xffff;
}

function addInv(x: number): number {
  return (0x10000 - x) & 0xffff;
}

function expandKey(key: Uint8Array): Uint16Array {
  const ek = new Uint16Array(SUBKEYS);
  // The 128-bit key as 8 big-endian words; each next group of 8 subkeys is the key
  // rotated left by 25 bits.
  const w = new Uint16Array(8);
  for (let i = 0; i < 8; i++) w[i] = (key[2 * i] << 8) | key[2 * i + 1];
  for (let i = 0; i < SUBKEYS; i++) {
    ek[i] = w[i & 7];
    if ((i & 7) === 7) {
      // Rotate left by 25 = one whole word (16) plus 9 bits.
      const t0 = w[0];
      for (let j = 0; j < 7; j++) w[j] = w[j + 1];
      w[7] = t0;
      const first = w[0];
      for (let j = 0; j < 7; j++) w[j] = ((w[j] << 9) | (w[j + 1] >>> 7)) & 0xffff;
      w[7] = ((w[7] << 9) | (first >>> 7)) & 0xffff;
    }
  }
  return ek;
}

// Decryption runs the same round function with inverted subkeys in reverse order; the
// additive keys of the inner rounds swap places because each round ends with a swap of
// the middle words.
function invertKey(ek: Uint16Array): Uint16Array {
  const dk = new Uint16Array(SUBKEYS);
  for (let r = 0; r <= ROUNDS; r++) {
    const e = 6 * (ROUNDS - r); // the encryption round whose transformation we undo
    const d = 6 * r;
    const swap = r !== 0 && r !== ROUNDS;
    dk[d] = mulInv(ek[e]);
    dk[d + 1] = addInv(ek[e + (swap ? 2 : 1)]);
    dk[d + 2] = addInv(ek[e + (swap ? 1 : 2)]);
    dk[d + 3] = mulInv(ek[e + 3]);
    if (r < ROUNDS) {
      dk[d + 4] = ek[e - 2];
      dk[d + 5] = ek[e - 1];
    }
  }
  return dk;
}

function crypt(k: Uint16Array, src: Uint8Array, so: number, dst: Uint8Array, d: number): void {
  let x1 = (src[so] << 8) | src[so + 1];
  let x2 = (src[so + 2] << 8) | src[so + 3];
  let x3 = (src[so + 4] << 8) | src[so + 5];
  let x4 = (src[so + 6] << 8) | src[so + 7];
  let i = 0;
  for (let r = 0; r < ROUNDS; r++) {
    x1 = mul(x1, k[i]);
    x2 = (x2 + k[i + 1]) & 0xffff;
    x3 = (x3 + k[i + 2]) & 0xffff;
    x4 = mul(x4, k[i + 3]);
    let t0 = mul(x1 ^ x3, k[i + 4]);
    const t1 = mul((t0 + (x2 ^ x4)) & 0xffff, k[i + 5]);
    t0 = (t0 + t1) & 0xffff;
    x1 ^= t1;
    x4 ^= t0;
    const m = x2 ^ t0;
    x2 = x3 ^ t1;
    x3 = m;
    i += 6;
  }
  // Output transformation; it undoes the last round's swap of the middle words.
  const y1 = mul(x1, k[i]);
  const y2 = (x3 + k[i + 1]) & 0xffff;
  const y3 = (x2 + k[i + 2]) & 0xffff;
  const y4 = mul(x4, k[i + 3]);
  dst[d] = y1 >>> 8;
  dst[d + 1] = y1;
  dst[d + 2] = y2 >>> 8;
  dst[d + 3] = y2;
  dst[d + 4] = y3 >>> 8;
  dst[d + 5] = y3;
  dst[d + 6] = y4 >>> 8;
  dst[d + 7] = y4;
}

export class Idea {
  private readonly ek: Uint16Array;
  private readonly dk: Uint16Array;

  constructor(key: Uint8Array) {
    if (!(key instanceof Uint8Array) || key.length !== 16) {
      throw new RangeError('IDEA key must be 16 bytes');
    }
    this.ek = expandKey(key);
    this.dk = invertKey(this.ek);
  }

  /** Encrypts the 8 bytes at src[srcOff..] into dst[dstOff..]; src and dst may overlap exactly. */
  encryptBlock(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
    crypt(this.ek, src, srcOff, dst, dstOff);
  }

  /** Decrypts the 8 bytes at src[srcOff..] into dst[dstOff..]; src and dst may overlap exactly. */
  decryptBlock(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
    crypt(this.dk, src, srcOff, dst, dstOff);
  }
}
