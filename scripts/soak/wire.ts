// What the soak sends and expects, shared by the load generator, the spool writer and the
// fake londs' handler (which runs in another process): request lines that carry a unique
// token the lond echoes back, and the marker that betrays a logged `encrypt:` plaintext.
import type { Expect } from './checker';

/**
 * Part of every `encrypt:` plaintext (live and delayed) and of nothing else: finding it in
 * the daemon's output means the daemon logged a plaintext it must keep to itself.
 */
export const PLAINTEXT_MARK = 'SOAK-PLAINTEXT-q7Zx';

/** A live request: `soak:<token>:<size>`; the lond answers `ok:<token>`, or `ok:<token>:` and `size` filler bytes. */
export function liveRequest(token: string, size: number, encrypt: boolean): { line: Buffer; expect: Expect } {
  const plain = `soak:${token}:${size}`;
  const line = Buffer.from(encrypt ? `encrypt:${plain}:${PLAINTEXT_MARK}` : plain, 'latin1');
  const head = Buffer.from(size > 0 ? `ok:${token}:` : `ok:${token}`, 'latin1');
  return { line, expect: { head, length: head.length + size } };
}

/** A delayed message's file content: `soakd:<token>` (the lond answers `ok`). */
export function delayedContent(token: string, encrypt: boolean): string {
  return encrypt ? `encrypt:soakd:${token}:${PLAINTEXT_MARK}\n` : `soakd:${token}\n`;
}

export type Parsed = { kind: 'live'; token: string; size: number } | { kind: 'delayed'; token: string } | { kind: 'other' };

/** The lond's side: what a (decrypted) request line is. */
export function parseRequest(cmd: Buffer): Parsed {
  const head = cmd.subarray(0, 96).toString('latin1');
  if (head.startsWith('soak:')) {
    const [, token, size] = head.split(':');
    const n = Number(size);
    if (token && Number.isInteger(n) && n >= 0) return { kind: 'live', token, size: n };
  } else if (head.startsWith('soakd:')) {
    const token = head.split(':')[1];
    if (token) return { kind: 'delayed', token };
  }
  return { kind: 'other' };
}

/** The answer to a live request. */
export function liveAnswer(token: string, size: number): Buffer {
  if (size === 0) return Buffer.from(`ok:${token}`, 'latin1');
  const head = Buffer.from(`ok:${token}:`, 'latin1');
  const out = Buffer.alloc(head.length + size, 0x78);
  head.copy(out);
  return out;
}
