import * as path from 'node:path';
import type { PeerEntry } from '../config/hosts';
import type { PeerStatus } from '../control/protocol';
import type { Spool } from '../delayed/spool';
import { DelayedDelivery } from '../delayed/delivery';
import type { RequestSink } from '../front/client';
import { ListenerOptions, PeerListener } from '../front/listener';
import type { Logger } from '../log';
import { Peer, PeerSettings, PeerStateChange } from '../peer/peer';
import type { SessionFactory } from '../peer/session';
import type { ByteBudget } from '../util/budget';
import type { LinePeer } from './status';
import type { Clock } from '../util/clock';

/** Answers every request `con_lost`: for a socket whose id hosts.tab lacks (or no longer has). */
const CON_LOST_SINK: RequestSink = {
  request(_line, opts) {
    const handle = { cancelled: false, cancel: () => void (handle.cancelled = true) };
    queueMicrotask(() => {
      if (!handle.cancelled) opts.onAnswer(undefined);
    });
    return handle;
  },
  closeSessions() {},
};

export interface PeerSetDeps {
  log: Logger;
  clock: Clock;
  budget: ByteBudget;
  spool: Spool;
  openSession: SessionFactory;
  /** Any peer changed state. */
  onStateChange(change: PeerStateChange): void;
}

export interface PeerChanges {
  added: string[];
  removed: string[];
  reconnected: string[];
}

/** One peer as the daemon runs it: the peer itself and its delayed-message delivery. */
interface Running {
  peer: Peer;
  delivery: DelayedDelivery;
}

/**
 * The peers of hosts.tab and their sockets: adds, removes and updates them on start and
 * reload, and hands a socket over between an old and a new peer of the same id (or to a
 * stand-in answering con_lost) so that a socket never disappears under its clients.
 */
export class PeerSet {
  private readonly running = new Map<string, Running>();
  private readonly listeners = new Map<string, PeerListener>();

  constructor(private readonly deps: PeerSetDeps) {
    deps.spool.filesFor.on((id) => this.running.get(id)?.delivery.kick());
  }

  get size(): number {
    return this.running.size;
  }

  ids(): string[] {
    return [...this.running.keys()];
  }

  has(id: string): boolean {
    return this.running.has(id);
  }

  peers(): Peer[] {
    return [...this.running.values()].map((r) => r.peer);
  }

  /**
   * Sockets systemd handed over, by name: served from the start, so that a client that
   * connects to an id hosts.tab lacks gets con_lost instead of hanging.
   */
  async adopt(inherited: Map<string, number[]>, sockDir: string, lopts: ListenerOptions): Promise<void> {
    for (const [name, fds] of inherited) {
      if (name === 'control') continue;
      if (fds.length > 1) this.deps.log.warn({ peer: name, event: 'socket.duplicate' }, `systemd passed ${fds.length} sockets for one name; using the first`);
      const listener = this.newListener(name, { fd: fds[0] as number, path: path.join(sockDir, name) }, CON_LOST_SINK, lopts);
      await listener.listen();
      this.listeners.set(name, listener);
    }
  }

  /** Sockets systemd passed for ids that are not peers. */
  strangers(): string[] {
    return [...this.listeners.keys()].filter((id) => !this.running.has(id));
  }

  /** Starts added peers, stops removed ones, updates the rest in place. */
  async apply(wanted: Map<string, { entry: PeerEntry; settings: PeerSettings }>, sockDir: string, lopts: ListenerOptions, stopGraceMs: number, warnings: string[]): Promise<PeerChanges> {
    const changes: PeerChanges = { added: [], removed: [], reconnected: [] };
    for (const [id, r] of [...this.running]) {
      if (wanted.has(id)) continue;
      changes.removed.push(id);
      this.running.delete(id);
      this.deps.log.info({ peer: id, event: 'peer.removed' }, 'removed from hosts.tab: stopping');
      void this.retire(id, r, stopGraceMs);
    }
    for (const l of this.listeners.values()) l.setOptions(lopts);

    // New peers' sockets are bound side by side: one at a time, a thousand peers took most
    // of the 2 s budget for READY (bench: 1000-peer READY 1.6–1.9 s → 0.85 s).
    const starting: Promise<void>[] = [];
    for (const [id, w] of wanted) {
      const existing = this.running.get(id);
      if (existing) {
        if (existing.peer.update(w.settings)) changes.reconnected.push(id);
        continue;
      }
      const r = this.create(id, w.settings);
      changes.added.push(id);
      const listener = this.listeners.get(id);
      if (listener) {
        listener.setSink(r.peer);
        r.peer.start();
        continue;
      }
      starting.push(this.listenFor(r.peer, path.join(sockDir, id), lopts, warnings));
    }
    await Promise.all(starting);
    return changes;
  }

  retry(ids: string[]): void {
    for (const id of ids) this.running.get(id)?.peer.retry();
  }

  /** Everything status shows per peer. */
  status(id: string): PeerStatus | undefined {
    const r = this.running.get(id);
    if (!r) return undefined;
    const listener = this.listeners.get(id);
    const settings = r.peer.currentSettings;
    return {
      id,
      address: settings.address,
      port: settings.port,
      ...r.peer.snapshot(),
      delayed: this.deps.spool.backlog(id),
      delivered: r.delivery.delivered,
      clients: listener?.clientCount ?? 0,
      socket: listener ? listener.source.path : null,
      socketFromSystemd: listener?.inherited ?? false,
    };
  }

  /** The counters of every peer for systemd's STATUS= line. */
  counters(): LinePeer[] {
    return [...this.running].map(([id, r]) => ({ ...r.peer.counters(), delayed: this.deps.spool.backlog(id) }));
  }

  /**
   * Stop: no new clients on any socket. A socket systemd handed over stays open in systemd,
   * so clients that connect from now on wait in its queue for the next daemon.
   */
  async closeSockets(): Promise<void> {
    await Promise.all([...this.listeners.values()].map((l) => l.close(true)));
  }

  /** Stop: the clients already connected finish what they asked; resolves when all are gone. */
  drainClients(firstLineGraceMs: number): Promise<void> {
    return Promise.all([...this.listeners.values()].map((l) => l.drainClients(firstLineGraceMs))).then(() => undefined);
  }

  /** Stop: no delayed message is started any more; resolves when the one in flight is settled. */
  stopDeliveries(): Promise<void> {
    return Promise.all([...this.running.values()].map((r) => r.delivery.stop())).then(() => undefined);
  }

  /** Stop: delayed delivery ends at a message boundary, then every peer stops. */
  async stopPeers(graceMs: number): Promise<void> {
    const all = [...this.running.values()];
    // The message in flight is answered (or lost) as the peer stops; none follows it.
    const deliveries = all.map((r) => r.delivery.stop());
    await Promise.all(all.map((r) => r.peer.stop(graceMs)));
    await Promise.all(deliveries);
  }

  dropClients(): void {
    for (const l of this.listeners.values()) l.dropClients();
  }

  private create(id: string, settings: PeerSettings): Running {
    const peer = new Peer(id, settings, { log: this.deps.log, clock: this.deps.clock, openSession: this.deps.openSession, budget: this.deps.budget });
    peer.stateChanged.on((c) => this.deps.onStateChange(c));
    const delivery = new DelayedDelivery(peer, this.deps.spool, this.deps.log, this.deps.clock, this.deps.budget);
    const r = { peer, delivery };
    this.running.set(id, r);
    return r;
  }

  /** A removed peer: its clients get con_lost from now on; its socket goes unless systemd owns it. */
  private async retire(id: string, r: Running, graceMs: number): Promise<void> {
    const listener = this.listeners.get(id);
    const delivery = r.delivery.stop();
    await r.peer.stop(graceMs);
    await delivery;
    // Added back by a reload while it was stopping: the new peer owns the listener now.
    if (!listener || this.running.has(id)) return;
    if (listener.inherited) {
      listener.setSink(CON_LOST_SINK); // systemd owns the socket until the next restart
      return;
    }
    this.listeners.delete(id);
    await listener.close(true);
    listener.dropClients();
  }

  /** Binds a new peer's socket, then starts the peer (its first session). */
  private async listenFor(peer: Peer, socketPath: string, lopts: ListenerOptions, warnings: string[]): Promise<void> {
    const listener = this.newListener(peer.id, { path: socketPath }, peer, lopts);
    try {
      await listener.listen();
      this.listeners.set(peer.id, listener);
    } catch (err) {
      const msg = `cannot listen on ${socketPath}: ${(err as Error).message}`;
      this.deps.log.error({ peer: peer.id, event: 'socket.failed' }, msg);
      warnings.push(`${peer.id}: ${msg}`);
    }
    peer.start();
  }

  private newListener(id: string, source: { path: string } | { fd: number; path: string }, sink: RequestSink, lopts: ListenerOptions): PeerListener {
    return new PeerListener(id, source, sink, lopts, { log: this.deps.log, budget: this.deps.budget, clock: this.deps.clock });
  }
}
