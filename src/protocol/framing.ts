// Line framing of PROTOCOL.md "Framing": bytes up to each '\n', with a hard cap on the
// length of one line so that a peer or client that never sends '\n' cannot grow memory.

const LF = 0x0a;
const CR = 0x0d;

export interface LineReaderOptions {
  /** Longest accepted line, in bytes before the '\n'. */
  maxLineBytes: number;
  /** Each complete line, without its '\n'. It may share memory with the pushed chunk. */
  onLine(line: Buffer): void;
  /** Called once per over-long line, as soon as it exceeds maxLineBytes. */
  onOverflow?(): void;
}

/**
 * Splits a byte stream into lines. Held bytes never exceed maxLineBytes; an over-long line
 * is dropped up to and including its '\n', and reading continues with the next line.
 * Callbacks may call reset(), which also ends the delivery of the current chunk's lines;
 * they must not call push().
 */
export class LineReader {
  private max: number;
  private readonly onLine: (line: Buffer) => void;
  private readonly onOverflow: (() => void) | undefined;
  // Pieces of the incomplete line. Buffers, not copies: at most one of them is a tail
  // subarray of a bigger chunk, so memory held is bounded by maxLineBytes + one chunk.
  private chunks: Buffer[] = [];
  private pending = 0;
  private discarding = false;
  // Changes on reset(), so that push() can tell a callback reset the reader.
  private generation = 0;

  constructor(opts: LineReaderOptions) {
    if (!Number.isInteger(opts.maxLineBytes) || opts.maxLineBytes < 0) {
      throw new RangeError('maxLineBytes must be a non-negative integer');
    }
    this.max = opts.maxLineBytes;
    this.onLine = opts.onLine;
    this.onOverflow = opts.onOverflow;
  }

  get pendingBytes(): number {
    return this.pending;
  }

  /** A new limit for the lines from now on (e.g. wider once a handshake is over). */
  setMaxLineBytes(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError('maxLineBytes must be a non-negative integer');
    this.max = n;
  }

  reset(): void {
    this.chunks = [];
    this.pending = 0;
    this.discarding = false;
    this.generation++;
  }

  push(chunk: Buffer): void {
    const gen = this.generation;
    const end = chunk.length;
    let start = 0;
    while (start < end) {
      const nl = chunk.indexOf(LF, start);
      if (this.discarding) {
        if (nl === -1) return;
        this.discarding = false;
        start = nl + 1;
        continue;
      }
      const len = (nl === -1 ? end : nl) - start;
      if (this.pending + len > this.max) {
        this.chunks = [];
        this.pending = 0;
        // Without its '\n' in this chunk, the rest of the line comes later and is dropped then.
        this.discarding = nl === -1;
        this.onOverflow?.();
        if (nl === -1 || gen !== this.generation) return;
        start = nl + 1;
        continue;
      }
      if (nl === -1) {
        this.chunks.push(start === 0 ? chunk : chunk.subarray(start));
        this.pending += len;
        return;
      }
      let line: Buffer;
      if (this.pending === 0) {
        line = chunk.subarray(start, nl);
      } else {
        this.chunks.push(chunk.subarray(start, nl));
        line = Buffer.concat(this.chunks, this.pending + len);
        this.chunks = [];
        this.pending = 0;
      }
      start = nl + 1;
      this.onLine(line);
      if (gen !== this.generation) return;
    }
  }
}

/** Drops one trailing '\r' (lond's answers may end in "\r\n"); shares memory with `line`. */
export function stripCR(line: Buffer): Buffer {
  const n = line.length;
  return n > 0 && line[n - 1] === CR ? line.subarray(0, n - 1) : line;
}
