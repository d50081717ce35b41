import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface LocalKeyFile {
  /** Absolute path, as sent in `init:local:<file>`. */
  file: string;
  /** The 16-byte IDEA session key written to the file. */
  key: Buffer;
  /** Removes the file; safe to call any number of times, and when lond removed it already. */
  cleanup(): Promise<void>;
}

/**
 * The key file of the local key mode (PROTOCOL.md, later key modes): 16 random bytes as
 * 32 hex digits, in a fresh file (O_EXCL, never following a link) of mode 0640 so that
 * lond's group can read it and nobody else. `dir` must be a directory lond can read and
 * only trusted users can write. The name goes into a `:`-separated request line, so a
 * path with ':' or a line break is refused.
 */
export async function createLocalKeyFile(dir: string, name?: string): Promise<LocalKeyFile> {
  const file = path.resolve(dir, name ?? `gatewayc-key.${process.pid}.${crypto.randomBytes(8).toString('hex')}`);
  if (/[:\r\n]/.test(file)) throw new Error(`local key file path ${JSON.stringify(file)} contains ':' or a line break`);
  const key = crypto.randomBytes(16);
  const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, flags, 0o640);
  } catch (err) {
    key.fill(0);
    const e = err as NodeJS.ErrnoException;
    throw new Error(`cannot create the local key file ${file}: ${e.code ?? e.message}`);
  }
  let removed = false;
  const cleanup = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    await fs.promises.rm(file, { force: true });
  };
  try {
    // The umask may have taken the group bit away; lond reads the file through its group.
    await handle.chmod(0o640);
    await handle.writeFile(key.toString('hex'), 'latin1');
  } catch (err) {
    key.fill(0);
    await handle.close().catch(() => undefined);
    await cleanup();
    throw new Error(`cannot write the local key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  await handle.close();
  return { file, key, cleanup };
}
