import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** Where a listening socket comes from: a path we create, or a descriptor systemd handed over. */
export type SocketSource = { path: string } | { fd: number; path: string };

export interface SocketAccess {
  /** Mode of a socket we create (systemd sets owner and mode of its own). */
  mode: number;
  /** Group of a socket we create; undefined leaves the process's own. */
  gid?: number;
  /** A chown that failed (the unit's syscall filter forbids it): said, not fatal. */
  warn(message: string): void;
}

/**
 * Listens on a UNIX stream socket: the inherited descriptor as it is, or a path made
 * afresh. Owner and mode of the path are its access control, set before anyone can use
 * it... as far as a path can be: the mode is set right after bind, so the directory's
 * permissions must not let strangers in meanwhile (the socket directories are 0755 and
 * owned by us or by systemd).
 */
export async function listenUnix(server: net.Server, source: SocketSource, access: SocketAccess): Promise<MadeSocket | undefined> {
  if ('fd' in source) {
    await listenOn(server, { fd: source.fd });
    return undefined;
  }
  const p = source.path;
  await fs.promises.mkdir(path.dirname(p), { recursive: true, mode: 0o755 });
  await removeStaleSocket(p);
  await listenOn(server, { path: p });
  await fs.promises.chmod(p, access.mode);
  // Under systemd the socket directory is set-group-id with the right group already (and
  // the syscall filter forbids chown): nothing to do, nothing to warn about.
  const st = await fs.promises.stat(p);
  if (access.gid !== undefined && st.gid !== access.gid) {
    await fs.promises.chown(p, -1, access.gid).catch((err: NodeJS.ErrnoException) => {
      access.warn(`cannot give ${p} group ${access.gid}: ${err.code ?? err.message}`);
    });
  }
  return { path: p, ino: st.ino };
}

/** A socket path this process made: removed on close only while it is still this one. */
export interface MadeSocket {
  path: string;
  ino: number;
}

/**
 * Stops accepting at once; the path is removed when `made` names one we made — and only
 * if it is still that socket: a peer removed and re-added by reloads may already have a
 * new socket at the same path. Does not wait for the connections already accepted
 * (server.close()'s callback would): their owners decide when they end.
 */
export async function closeServer(server: net.Server | undefined, made?: MadeSocket): Promise<void> {
  server?.close();
  if (made === undefined) return;
  try {
    if ((await fs.promises.lstat(made.path)).ino === made.ino) await fs.promises.unlink(made.path);
  } catch {
    // gone already
  }
}

function listenOn(server: net.Server, target: { fd: number } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * A socket left by a crashed daemon would make listen() fail with EADDRINUSE. Remove it —
 * but only a socket: a regular file or directory at that path is an admin's mistake we
 * must not destroy.
 */
async function removeStaleSocket(p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fs.promises.lstat(p);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${p} exists and is not a socket`);
  await fs.promises.unlink(p);
}
