// IDEA for the test side, written from the published description of the algorithm (Lai and
// Massey; the round and key-schedule tables as in Schneier, Applied Cryptography, 13.9),
// not from src/crypto: the fake lond uses it where OpenSSL has no IDEA (Debian's OpenSSL is
// built without it). Plain on purpose — each step is the textbook one, speed does not
// matter here — so that it can be trusted as a second, independent reading.
//
// Arithmetic on 16-bit words:
//   ⊙  multiplication modulo 2^16 + 1, where the word 0 stands for 2^16
//   ⊞  addition modulo 2^16
//   ⊕  exclusive or

const MOD_MUL = 0x10001; // 2^16 + 1, a prime
const TWO16 = 0x10000;

/** a ⊙ b: the word 0 means 2^16, and a product of 2^16 is written as the word 0. */
export function mul(a: number, b: number): number {
  const x = a === 0 ? TWO16 : a;
  const y = b === 0 ? TWO16 : b;
  const p = (x * y) % MOD_MUL; // at most 2^32: exact in a double
  return p === TWO16 ? 0 : p;
}

/** a ⊞ b. */
export function add(a: number, b: number): number {
  return (a + b) % TWO16;
}

/** The inverse of a for ⊙ (Fermat: a^(p-2) mod p, p = 2^16 + 1 prime). */
export function mulInverse(a: number): number {
  let base = a === 0 ? TWO16 : a;
  let e = MOD_MUL - 2;
  let r = 1;
  while (e > 0) {
    if (e & 1) r = (r * base) % MOD_MUL;
    base = (base * base) % MOD_MUL;
    e = Math.floor(e / 2);
  }
  return r === TWO16 ? 0 : r;
}

/** The inverse of a for ⊞. */
export function addInverse(a: number): number {
  return (TWO16 - a) % TWO16;
}

/**
 * The 52 encryption subkeys Z1..Z52 (index 0..51): the 128-bit key cut into eight 16-bit
 * words, then the key rotated left by 25 bits and cut again, until 52 words are taken.
 */
export function encryptionSubkeys(key: Uint8Array): number[] {
  if (key.length !== 16) throw new Error(`IDEA key must be 16 bytes, not ${key.length}`);
  const MASK = (1n << 128n) - 1n;
  let k = BigInt(`0x${Buffer.from(key).toString('hex')}`);
  const z: number[] = [];
  while (z.length < 52) {
    for (let i = 0; i < 8 && z.length < 52; i++) z.push(Number((k >> BigInt(112 - 16 * i)) & 0xffffn));
    k = ((k << 25n) | (k >> 103n)) & MASK;
  }
  return z;
}

/**
 * The 52 decryption subkeys, from the encryption subkeys by the published table: round r
 * of decryption uses the inverses of the first four subkeys of encryption round 10 - r
 * (the two additive ones swapped, except in the first round and the output step) and the
 * last two (multiplication-addition) subkeys of encryption round 9 - r unchanged.
 */
export function decryptionSubkeys(z: number[]): number[] {
  const d: number[] = [];
  for (let r = 0; r < 8; r++) {
    const e = 6 * (8 - r); // first subkey of the encryption step this one undoes
    const swap = r === 0 ? 0 : 1;
    d.push(mulInverse(z[e]), addInverse(z[e + 1 + swap]), addInverse(z[e + 2 - swap]), mulInverse(z[e + 3]));
    d.push(z[6 * (7 - r) + 4], z[6 * (7 - r) + 5]);
  }
  d.push(mulInverse(z[0]), addInverse(z[1]), addInverse(z[2]), mulInverse(z[3]));
  return d;
}

/** One 8-byte block through the 8 rounds and the output transformation with subkeys k. */
export function cryptBlock(k: number[], block: Uint8Array): Buffer {
  if (block.length !== 8) throw new Error(`IDEA block must be 8 bytes, not ${block.length}`);
  const b = Buffer.from(block);
  let x1 = b.readUInt16BE(0);
  let x2 = b.readUInt16BE(2);
  let x3 = b.readUInt16BE(4);
  let x4 = b.readUInt16BE(6);
  for (let r = 0; r < 8; r++) {
    const z = k.slice(6 * r, 6 * r + 6);
    const s1 = mul(x1, z[0]); // 1
    const s2 = add(x2, z[1]); // 2
    const s3 = add(x3, z[2]); // 3
    const s4 = mul(x4, z[3]); // 4
    const s5 = s1 ^ s3; // 5
    const s6 = s2 ^ s4; // 6
    const s7 = mul(s5, z[4]); // 7
    const s8 = add(s6, s7); // 8
    const s9 = mul(s8, z[5]); // 9
    const s10 = add(s7, s9); // 10
    const s11 = s1 ^ s9; // 11
    const s12 = s3 ^ s9; // 12
    const s13 = s2 ^ s10; // 13
    const s14 = s4 ^ s10; // 14
    // Steps 11-14 leave the inner words crossed (the second comes from X3, the third
    // from X2): that is the swap between rounds. The last round is not swapped, so its
    // inner words are crossed back before the output transformation.
    [x1, x2, x3, x4] = r < 7 ? [s11, s12, s13, s14] : [s11, s13, s12, s14];
  }
  const out = Buffer.alloc(8);
  out.writeUInt16BE(mul(x1, k[48]), 0);
  out.writeUInt16BE(add(x2, k[49]), 2);
  out.writeUInt16BE(add(x3, k[50]), 4);
  out.writeUInt16BE(mul(x4, k[51]), 6);
  return out;
}

/** IDEA in ECB mode over whole blocks (data.length a multiple of 8), no padding. */
export function ideaEcbPlain(decrypt: boolean, key: Uint8Array, data: Uint8Array): Buffer {
  if (data.length % 8 !== 0) throw new Error(`IDEA ECB data must be whole 8-byte blocks, not ${data.length} bytes`);
  const z = encryptionSubkeys(key);
  const k = decrypt ? decryptionSubkeys(z) : z;
  const blocks: Buffer[] = [];
  for (let o = 0; o < data.length; o += 8) blocks.push(cryptBlock(k, data.subarray(o, o + 8)));
  return Buffer.concat(blocks);
}
