import * as net from 'node:net';
import type { Logger } from '../log';
import type { ByteBudget } from '../util/budget';
import type { Clock } from '../util/clock';
import { ThrottledWarning } from '../util/throttle';
import { ClientConnection, RequestSink } from './client';
import { closeServer, listenUnix, MadeSocket, SocketSource } from './unix-socket';

export type { SocketSource };

export interface ListenerOptions {
  maxRequestBytes: number;
  maxClients: number;
  /** gid for sockets this daemon creates itself (systemd sets owner and mode of its own). */
  gid?: number;
}

export interface ListenerDeps {
  log: Logger;
  budget: ByteBudget;
  clock: Clock;
}

/** Warnings a client can cause come at most this often per socket. */
const WARN_INTERVAL_MS = 10_000;
/** A refused client gets this long to take its con_lost before its connection is cut. */
const REFUSED_LINGER_MS = 1000;

/**
 * The UNIX socket of one peer. Accepts local clients and hands each to a ClientConnection
 * bound to the peer (the sink). The sink can be swapped on reload without touching the
 * socket, so clients never see it disappear.
 */
export class PeerListener {
  private server: net.Server | undefined;
  private made: MadeSocket | undefined;
  private readonly clients = new Set<ClientConnection>();
  private sink: RequestSink;
  private opts: ListenerOptions;
  private readonly log: Logger;
  private readonly full: ThrottledWarning;
  private readonly oversize: ThrottledWarning;
  private readonly sessionWord: ThrottledWarning;
  private readonly evicted: ThrottledWarning;
  private readonly displaced: ThrottledWarning;
  /** Delegates to whatever the sink is at the time of each request. */
  private readonly delegate: RequestSink = {
    request: (line, o) => this.sink.request(line, o),
    closeSessions: () => this.sink.closeSessions(),
  };

  constructor(
    readonly peerId: string,
    readonly source: SocketSource,
    sink: RequestSink,
    opts: ListenerOptions,
    private readonly deps: ListenerDeps,
  ) {
    this.sink = sink;
    this.opts = opts;
    this.log = deps.log.child({ peer: peerId });
    const now = deps.clock.now;
    this.full = new ThrottledWarning(WARN_INTERVAL_MS, (more) => this.log.warn({ event: 'client.refused', max: this.opts.maxClients }, `too many local clients (gatewaycMaxClients ${this.opts.maxClients}): refusing new ones${more}`), now);
    this.oversize = new ThrottledWarning(WARN_INTERVAL_MS, (more) => this.log.warn({ event: 'client.oversize' }, `refused a request longer than gatewaycMaxRequestBytes (${this.opts.maxRequestBytes} bytes)${more}`), now);
    this.sessionWord = new ThrottledWarning(WARN_INTERVAL_MS, (more) => this.log.warn({ event: 'client.session-word' }, `a local client sent a session word (init, ekey, pong, sethost, exit or enc:): answered refused, not sent to lond${more}`), now);
    this.displaced = new ThrottledWarning(WARN_INTERVAL_MS, (more) => this.log.warn({ event: 'client.displaced', max: this.opts.maxClients }, `all local client slots taken (gatewaycMaxClients ${this.opts.maxClients}): disconnected the client idle longest for a new one${more}`), now);
    this.evicted = new ThrottledWarning(WARN_INTERVAL_MS, (more) => this.log.warn({ event: 'client.evicted' }, `disconnected a local client that does not read its answers${more}`), now);
  }

  get inherited(): boolean {
    return 'fd' in this.source;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** The peer (or a stand-in) that requests on this socket go to from now on. */
  setSink(sink: RequestSink): void {
    this.sink = sink;
  }

  /** Limits for clients that connect from now on. */
  setOptions(opts: ListenerOptions): void {
    this.opts = opts;
  }

  async listen(): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (sock) => this.accept(sock));
    this.server = server;
    this.made = await listenUnix(server, this.source, {
      // Only the web server's group may talk to a peer.
      mode: 0o660,
      ...(this.opts.gid !== undefined ? { gid: this.opts.gid } : {}),
      warn: (m) => this.log.warn({ event: 'socket.chown-failed' }, `${m} (gatewaycSocketGroup)`),
    });
  }

  private accept(sock: net.Socket): void {
    // Whatever the client does from here on (reset, vanish), it must not raise an
    // unhandled 'error' in the daemon.
    sock.on('error', () => sock.destroy());
    if (this.clients.size >= this.opts.maxClients) {
      const idle = this.idlest();
      if (!idle) {
        this.full.hit();
        sock.end('con_lost\n');
        setTimeout(() => sock.destroy(), REFUSED_LINGER_MS).unref();
        return;
      }
      this.clients.delete(idle);
      idle.displace();
      this.displaced.hit();
    }
    const client = new ClientConnection(
      sock,
      this.delegate,
      { maxRequestBytes: this.opts.maxRequestBytes, budget: this.deps.budget, clock: this.deps.clock },
      {
        oversize: () => this.oversize.hit(),
        sessionWord: () => this.sessionWord.hit(),
        evicted: (reason) => {
          this.evicted.hit();
          this.log.debug({ event: 'client.evicted', reason }, `disconnected a client: ${reason}`);
        },
      },
    );
    this.clients.add(client);
    sock.on('close', () => this.clients.delete(client));
  }

  /** The client that has had nothing to carry for longest, if any may give up its slot. */
  private idlest(): ClientConnection | undefined {
    let best: ClientConnection | undefined;
    let bestSince = Infinity;
    for (const c of this.clients) {
      const since = c.idleSince();
      if (since !== undefined && since < bestSince) {
        best = c;
        bestSince = since;
      }
    }
    return best;
  }

  /** Stops accepting; existing clients keep their connection until `dropClients`. */
  async close(unlink: boolean): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await closeServer(server, unlink ? this.made : undefined);
  }

  /** Stop: every client connection finishes what it asked (see ClientConnection.drain). */
  drainClients(firstLineGraceMs: number): Promise<void> {
    return Promise.all([...this.clients].map((c) => c.drain(firstLineGraceMs, this.deps.clock))).then(() => undefined);
  }

  dropClients(): void {
    for (const c of this.clients) c.close();
    this.clients.clear();
  }
}
