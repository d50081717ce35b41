import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveSessionKey, keyPrefix } from '../../src/protocol/key';

// Expected values below are worked out by hand from PROTOCOL.md's rule:
//   k = upper(P+L) with G-P → 0-9 and Q-Z → 0-9; s = first 32 chars of k+b+k+b+k+b;
//   nibble(letter) = (ord + 9) & 15, nibble(other) = ord & 15; two nibbles a byte.

test('worked example of PROTOCOL.md', () => {
  assert.equal(keyPrefix('msul1', 'msul2'), '6245162452');
  assert.equal(deriveSessionKey('msul1', 'msul2', '80516A0BBEF7EB9DBDBCACC727').toString('hex'), '624516245280516a0bbef7eb9dbdbcac');
});

test('keyPrefix: upper case, G-P and Q-Z to digits, A-F, digits and other characters kept', () => {
  assert.equal(keyPrefix('abcdefghijklmnop', 'qrstuvwxyz'), 'ABCDEF01234567890123456789');
  assert.equal(keyPrefix('ABCDEFGHIJKLMNOP', 'QRSTUVWXYZ'), 'ABCDEF01234567890123456789');
  // l→5 o→8 n→7 - c→C a→A p→9 a→A _ 1 . x→7 | Z→9 9
  assert.equal(keyPrefix('lon-capa_1.x', 'Z9'), '587-CA9A_1.799');
  assert.equal(keyPrefix('', ''), '');
  // Only ASCII letters change, as with Perl's tr/a-z/A-Z/ (toUpperCase would make "SS").
  assert.equal(keyPrefix('ß', 'é'), 'ßé');
});

test('ids with "-", "_", ".", digits and mixed case use the pack("H") nibble of each character', () => {
  // P = "a-B", L = "c_d.9": k = "A-BC_D.9" (nothing in G-Z). b = "0123456789ABCDEF".
  // k+b+k+b = "A-BC_D.9" "0123456789ABCDEF" "A-BC_D.9" ... → first 32 characters:
  //   A - B C _ D . 9 0 1 2 3 4 5 6 7 8 9 A B C D E F A - B C _ D . 9
  // nibbles: A→10, '-'(0x2d)→13, B→11, C→12, '_'(0x5f)→15, D→13, '.'(0x2e)→14, 9→9,
  //   digits → themselves, A..F → 10..15.
  const expected = 'adbcfde90123456789abcdefadbcfde9';
  assert.equal(deriveSessionKey('a-B', 'c_d.9', '0123456789ABCDEF').toString('hex'), expected);

  // Lower-case letters after tr/a-z/A-Z/ are already upper case; a lower-case buildkey is
  // used as is, and pack("H") gives letters the same nibble in both cases.
  assert.equal(deriveSessionKey('a-B', 'c_d.9', '0123456789abcdef').toString('hex'), expected);
});

test('letters past F in the buildkey follow (ord + 9) & 15, and other characters ord & 15', () => {
  // P = "1", L = "2": k = "12". b = "GzZ!~ " (not a valid buildkey, but lond would still
  // derive from it): s = "12GzZ!~ 12GzZ!~ 12GzZ!~ " (24 chars) + 8 zero nibbles.
  //   G 0x47 → 0x50 & 15 = 0; z 0x7a → 0x83 & 15 = 3; Z 0x5a → 0x63 & 15 = 3;
  //   ! 0x21 → 1; ~ 0x7e → 14; ' ' 0x20 → 0.
  assert.equal(deriveSessionKey('1', '2', 'GzZ!~ ').toString('hex'), '120331e0' + '120331e0' + '120331e0' + '00000000');
});

test('a short k+b gives fewer than 32 characters: pack pads with zero nibbles', () => {
  // P = "a", L = "b": k = "AB", b = "C": s = "ABCABCABC" (9 characters, odd).
  assert.equal(deriveSessionKey('a', 'b', 'C').toString('hex'), 'abcabcabc' + '0'.repeat(23));
  assert.equal(deriveSessionKey('a', 'b', 'C').length, 16);
  // Empty buildkey: s = "ABABAB".
  assert.equal(deriveSessionKey('a', 'b', '').toString('hex'), 'ababab' + '00'.repeat(13));
  // Nothing at all: the all-zero key.
  assert.equal(deriveSessionKey('', '', '').toString('hex'), '00'.repeat(16));
});

test('len(P+L) + len(b) < 32: the buildkey line ending is not part of s', () => {
  // P = "msul1", L = "msul2": k = "6245162452"; b = "1A2B3C" (16 < 32).
  // s = "62451624521A2B3C" + "62451624521A2B3C" = 32 characters.
  const expected = '62451624521a2b3c62451624521a2b3c';
  assert.equal(deriveSessionKey('msul1', 'msul2', '1A2B3C').toString('hex'), expected);
  assert.equal(deriveSessionKey('msul1', 'msul2', '1A2B3C\n').toString('hex'), expected);
  assert.equal(deriveSessionKey('msul1', 'msul2', '1A2B3C\r\n').toString('hex'), expected);
  assert.equal(deriveSessionKey('msul1', 'msul2', '1A2B3C\r').toString('hex'), expected);
  // What the seed computed with the '\n' kept (its bug): s = "62451624521A2B3C\n6245162452..."
  // — '\n' (0x0a) gives nibble 10, which must not happen here.
  assert.notEqual(deriveSessionKey('msul1', 'msul2', '1A2B3C\n').toString('hex'), '62451624521a2b3ca62451624521a2b3');
});

test('a long buildkey is cut: only the first 32 characters of s count', () => {
  const b = 'F'.repeat(40);
  // k = "6245162452" (10 characters), then the first 22 characters of b.
  assert.equal(deriveSessionKey('msul1', 'msul2', b).toString('hex'), '6245162452' + 'f'.repeat(22));
  assert.equal(deriveSessionKey('msul1', 'msul2', b + 'E').toString('hex'), '6245162452' + 'f'.repeat(22));
});

test('non-ASCII ids count as their UTF-8 bytes, as Perl reads them', () => {
  // "é" is c3 a9 in UTF-8: neither byte is an ASCII letter, so nibbles 3 and 9.
  // P = "é", L = "": k = "é" (bytes c3 a9), b = "1": s bytes = c3 a9 31 c3 a9 31 c3 a9 31.
  assert.equal(deriveSessionKey('é', '', '1').toString('hex'), '391391391' + '0'.repeat(23));
});
