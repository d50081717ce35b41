import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Logger } from '../log';
import { ClientConnection, RequestSink } from './client';

export interface ListenerOptions {
  maxRequestBytes: number;
  maxClients: number;
  /** gid for sockets this daemon creates itself (systemd sets owner and mode of its own). */
  gid?: number;
}

/** Where a listener gets its socket: a path it creates, or a descriptor systemd handed over. */
export type SocketSource = { path: string } | { fd: number; path: string };

/**
 * The UNIX socket of one peer. Accepts local clients and hands each to a ClientConnection
 * bound to the peer (the sink). The sink can be swapped on reload without touching the
 * socket, so clients never see it disappear.
 */
export class PeerListener {
  private server: net.Server | undefined;
  private clients = new Set<ClientConnection>();
  private warnedFull = false;
  private oversizeWarnedAt = 0;

  constructor(
    readonly peerId: string,
    readonly source: SocketSource,
    public sink: RequestSink,
    public opts: ListenerOptions,
    private readonly log: Logger,
  ) {}

  get inherited(): boolean {
    return 'fd' in this.source;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  async listen(): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (sock) => this.accept(sock));
    this.server = server;
    if ('fd' in this.source) {
      await listenOn(server, { fd: this.source.fd });
      return;
    }
    const p = this.source.path;
    await fs.promises.mkdir(path.dirname(p), { recursive: true, mode: 0o755 });
    await removeStaleSocket(p);
    await listenOn(server, { path: p });
    // Owner and mode of a socket are its access control: only the web server's group may talk.
    await fs.promises.chmod(p, 0o660);
    if (this.opts.gid !== undefined) {
      // Under the unit's syscall filter chown fails: the socket keeps the directory's
      // group (setgid), which is what gatewaycSocketGroup would have given it anyway.
      await fs.promises.chown(p, -1, this.opts.gid).catch((err: NodeJS.ErrnoException) => {
        this.log.warn({ peer: this.peerId }, `cannot give ${p} group ${this.opts.gid} (gatewaycSocketGroup): ${err.code ?? err.message}`);
      });
    }
  }

  private accept(sock: net.Socket): void {
    if (this.clients.size >= this.opts.maxClients) {
      if (!this.warnedFull) this.log.warn({ peer: this.peerId }, `too many local clients (gatewaycMaxClients ${this.opts.maxClients}): refusing new ones`);
      this.warnedFull = true;
      sock.end('con_lost\n');
      return;
    }
    this.warnedFull = false;
    const client = new ClientConnection(sock, {
      request: (line, cb) => this.sink.request(line, cb),
      closeSessions: () => this.sink.closeSessions(),
    }, this.opts.maxRequestBytes, () => {
      const now = Date.now();
      if (now - this.oversizeWarnedAt > 10_000) {
        this.oversizeWarnedAt = now;
        this.log.warn({ peer: this.peerId }, `refused a request longer than gatewaycMaxRequestBytes (${this.opts.maxRequestBytes} bytes)`);
      }
    });
    this.clients.add(client);
    sock.on('close', () => this.clients.delete(client));
  }

  /** Stops accepting; existing clients keep their connection until `dropClients`. */
  async close(unlink: boolean): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (unlink && !('fd' in this.source)) await fs.promises.rm(this.source.path, { force: true });
  }

  dropClients(): void {
    for (const c of this.clients) c.close();
    this.clients.clear();
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
