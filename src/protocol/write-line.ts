import type { Writable } from 'node:stream';

/** Below this, copying the line once is cheaper than a writev of two buffers. */
const COPY_LIMIT = 16 * 1024;

/**
 * Writes one line and its '\n' as one write: small lines (nearly all of them) are copied
 * into one buffer, large ones go out as a corked writev so a multi-megabyte line is not
 * copied. Either way the kernel sees one write, not two. `flushed` is called once the
 * whole line has left the stream's buffer (or the stream failed).
 */
export function writeLine(out: Writable, line: Buffer, flushed?: (err?: Error | null) => void): void {
  if (line.length < COPY_LIMIT) {
    const buf = Buffer.allocUnsafe(line.length + 1);
    line.copy(buf, 0);
    buf[line.length] = 10;
    out.write(buf, flushed);
    return;
  }
  out.cork();
  out.write(line);
  out.write(NEWLINE, flushed);
  out.uncork();
}

const NEWLINE = Buffer.from('\n');
