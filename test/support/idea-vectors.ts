// Published IDEA test vectors, shared by the tests of gatewayc's cipher (test/crypto) and of
// the test side's own IDEA (test/support/idea-plain.ts). Data only: no implementation here.

// [key, plaintext, ciphertext]. Sources: Lai's thesis (PROTOCOL.md's reference vector);
// NESSIE's verified IDEA vectors (sets 1–8, as republished in several open-source test
// suites); Bouncy Castle's IDEATest. Every row also agrees with OpenSSL (both test files check it).
export const IDEA_VECTORS: readonly (readonly [key: string, plaintext: string, ciphertext: string])[] = [
  ['00010002000300040005000600070008', '0000000100020003', '11fbed2b01986de5'], // Lai / PROTOCOL.md
  ['80000000000000000000000000000000', '0000000000000000', 'b1f5f7f87901370f'], // NESSIE set 1 #0
  ['40000000000000000000000000000000', '0000000000000000', 'b3927dffb6358626'], // NESSIE set 1 #1
  ['20000000000000000000000000000000', '0000000000000000', 'e987e0029fb99785'], // NESSIE set 1 #2
  ['10000000000000000000000000000000', '0000000000000000', '754a03ce08db7daa'], // NESSIE set 1 #3
  ['00010000000000000000000000000000', '0000000000000000', '7c92bc91c48f0084'], // NESSIE set 1 #15
  ['00000000000000000000000000000001', '0000000000000000', 'c57adbde27bc26cf'], // NESSIE set 1 #127
  ['00000000000000000000000000000000', '8000000000000000', '8001000180008000'], // NESSIE set 2 #0
  ['00000000000000000000000000000000', '4000000000000000', 'c00180014000c000'], // NESSIE set 2 #1
  ['00000000000000000000000000000000', '0000000000000000', '0001000100000000'], // NESSIE set 3 #0
  ['01010101010101010101010101010101', '0101010101010101', 'e3f8aff7a3795615'], // NESSIE set 3 #1
  ['000102030405060708090a0b0c0d0e0f', '0011223344556677', 'f526ab9a62c0d258'], // NESSIE set 4 #0
  ['2bd6459f82c5b300952c49104881ff48', 'ea024714ad5c4d84', 'c8fb51d3516627a8'], // NESSIE set 4 #1
  ['80000000000000000000000000000000', '78071ee87f0130e8', '0000000000000000'], // NESSIE set 5 #0
  ['40000000000000000000000000000000', '98aa167965b52792', '0000000000000000'], // NESSIE set 5 #1
  ['01010101010101010101010101010101', '6d33179ce8b3c1fa', '0101010101010101'], // NESSIE set 7 #1
  ['000102030405060708090a0b0c0d0e0f', 'db2d4a92aa68273f', '0011223344556677'], // NESSIE set 8 #0
  ['2bd6459f82c5b300952c49104881ff48', 'f129a6601ef62a47', 'ea024714ad5c4d84'], // NESSIE set 8 #1
  ['00112233445566778899aabbccddeeff', '0001020304050607', 'ed732271a7b39f47'], // Bouncy Castle
  ['00112233445566778899aabbccddeeff', '08090a0b0c0d0e0f', '5b4b2b6719f194bf'], // Bouncy Castle
  ['00112233445566778899aabbccddeeff', 'f0f1f2f3f4f5f6f7', 'b8bc6ed5c899265d'], // Bouncy Castle
  ['00112233445566778899aabbccddeeff', 'f8f9fafbfcfdfeff', '2bcfad1fc6d4287d'], // Bouncy Castle
];

/**
 * Keys and blocks made only of 0x0000 and 0xffff words: the multiplication's edge cases
 * (0 stands for 2^16, 0xffff is 2^16 - 1 ≡ -2). Every block mix, for every `keyStep`-th
 * key mix.
 */
export function* edgeWordCases(keyStep: number): Generator<{ key: Buffer; block: Buffer }> {
  for (let km = 0; km < 256; km += keyStep) {
    const key = Buffer.alloc(16);
    for (let w = 0; w < 8; w++) if (km & (1 << w)) key.writeUInt16BE(0xffff, 2 * w);
    for (let pm = 0; pm < 16; pm++) {
      const block = Buffer.alloc(8);
      for (let w = 0; w < 4; w++) if (pm & (1 << w)) block.writeUInt16BE(0xffff, 2 * w);
      yield { key, block };
    }
  }
}
