// Session key derivation of the insecure (`ekey`) key mode, bit for bit as lond does it
// (PROTOCOL.md "Key derivation"). Everything works on bytes, as Perl does: ids are taken
// as their UTF-8 bytes, and only ASCII letters are ever changed.

const CODE_0 = 0x30;
const CODE_A = 0x41;
const CODE_G = 0x47;
const CODE_P = 0x50;
const CODE_Q = 0x51;
const CODE_Z = 0x5a;
const CODE_a = 0x61;
const CODE_z = 0x7a;

/**
 * Step 1: `upper(P + L)` with G–P and Q–Z then mapped to 0–9. Perl's `tr/a-z/A-Z/` touches
 * ASCII only, so this does not use toUpperCase (which would turn e.g. `ß` into `SS`).
 */
export function keyPrefix(peerId: string, hostId: string): string {
  const s = peerId + hostId;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= CODE_a && c <= CODE_z) c -= 0x20;
    if (c >= CODE_G && c <= CODE_P) c = CODE_0 + (c - CODE_G);
    else if (c >= CODE_Q && c <= CODE_Z) c = CODE_0 + (c - CODE_Q);
    out += String.fromCharCode(c);
  }
  return out;
}

// Perl's pack("H") nibble of any byte: isALPHA (ASCII letters only) gives (c + 9) & 15,
// anything else c & 15. So `-` → 13, `_` → 15, `.` → 14, as lond computes them.
const NIBBLE = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const alpha = (c >= CODE_A && c <= CODE_Z) || (c >= CODE_a && c <= CODE_z);
  NIBBLE[c] = alpha ? (c + 9) & 15 : c & 15;
}

/** The buildkey as lond uses it: without any trailing line ending. */
function stripLineEnding(buildkey: string): string {
  let end = buildkey.length;
  while (end > 0) {
    const c = buildkey.charCodeAt(end - 1);
    if (c !== 0x0a && c !== 0x0d) break;
    end--;
  }
  return end === buildkey.length ? buildkey : buildkey.slice(0, end);
}

/**
 * The 16-byte IDEA session key for a session to `peerId` opened by `hostId` (our own
 * lonHostID), from the buildkey line lond answered to `ekey`.
 */
export function deriveSessionKey(peerId: string, hostId: string, buildkey: string): Buffer {
  const k = keyPrefix(peerId, hostId);
  const b = stripLineEnding(buildkey);
  const s = Buffer.from(k + b + k + b + k + b, 'utf8');
  // Like pack("H32"): at most 32 nibbles, and a shorter string leaves zero nibbles.
  const key = Buffer.alloc(16);
  const n = Math.min(32, s.length);
  for (let i = 0; i < n; i++) {
    key[i >> 1] |= (i & 1) === 0 ? NIBBLE[s[i]] << 4 : NIBBLE[s[i]];
  }
  return key;
}
