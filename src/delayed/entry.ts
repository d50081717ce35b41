import * as fs from 'node:fs';

/** The part of the daemon-wide byte budget the spool needs: a message read is charged to it. */
export interface SpoolBudget {
  readonly full: boolean;
  charge(n: number): void;
}

/** What one spool entry turned out to be. */
export type EntryRead =
  /** A message: its first line, charged to the budget until the caller releases it. */
  | { line: Buffer }
  /** Nothing to deliver now: gone, still being written, or no memory for it. */
  | { skip: 'vanished' | 'incomplete' | 'no-room' }
  /** Could not be read this time (the error code): tried again later. */
  | { unreadable: string }
  /** Not a message, and never will be: why. */
  | { reject: string };

/** A file without its newline that was written this recently may still be being written. */
const FRESH_MS = 2000;

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;

/**
 * Reads one spool entry the way Postfix's pickup(8) reads its maildrop, since any process
 * of the web server writes there: opened without following a link and without blocking
 * (a FIFO or a device opens at once, or not at all), it must be a regular file with one
 * link, and at most one line's worth of bytes (`maxBytes` + 1) is read, with the budget
 * charged before the bytes are allocated. Nothing is ever written.
 */
export async function readEntry(file: string, maxBytes: number, budget: SpoolBudget | undefined): Promise<EntryRead> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { skip: 'vanished' };
    if (code === 'ELOOP') return { reject: 'a symbolic link' };
    if (code === 'EACCES' || code === 'EPERM') return { reject: `not readable by gatewayc (${code}): the web server must write group-readable files` };
    if (code === 'ENXIO') return { reject: 'not a regular file (a socket or device)' };
    return { unreadable: code ?? (err as Error).message };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return { reject: `not a regular file (${oddKind(st) ?? 'not a file'})` };
    if (st.nlink > 1) return { reject: `has ${st.nlink} hard links (a message file has one)` };
    const want = Math.min(st.size, maxBytes + 1);
    if (budget?.full) return { skip: 'no-room' };
    budget?.charge(want);
    const buf = Buffer.alloc(want);
    try {
      return await firstLine(handle, buf, maxBytes, st.mtimeMs, budget);
    } finally {
      budget?.charge(-want);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') return { reject: 'not a regular file (a directory)' };
    return { unreadable: code ?? (err as Error).message };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function firstLine(handle: fs.promises.FileHandle, buf: Buffer, maxBytes: number, mtimeMs: number, budget: SpoolBudget | undefined): Promise<EntryRead> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await handle.read(buf, got, buf.length - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  const data = buf.subarray(0, got);
  const nl = data.indexOf(10);
  const line = nl >= 0 ? data.subarray(0, nl) : data;
  if (line.length > maxBytes) return { reject: `its first line is longer than gatewaycMaxRequestBytes (${maxBytes} bytes)` };
  if (nl < 0 && Date.now() - mtimeMs < FRESH_MS) return { skip: 'incomplete' };
  // lonnet writes a file in one go; one that stays empty holds nothing to deliver, and
  // left in place it would take a name's room in memory for good.
  if (line.length === 0) return { reject: 'empty' };
  const copy = Buffer.from(line);
  budget?.charge(copy.length);
  return { line: copy };
}

/** What an entry is, if its type alone (from fstat, or from readdir for free) says it is no message. */
export function oddKind(d: fs.Stats | fs.Dirent): string | undefined {
  if (d.isDirectory()) return 'a directory';
  if (d.isFIFO()) return 'a FIFO';
  if (d.isSocket()) return 'a socket';
  if (d.isCharacterDevice() || d.isBlockDevice()) return 'a device';
  return undefined;
}
