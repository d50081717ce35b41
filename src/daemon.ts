import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, formatDiag } from './config/diag';
import { Loaded, loadAll } from './config/load';
import type { Settings } from './config/settings';
import type { PeerEntry } from './config/hosts';
import { ControlRequest, ControlServer, ReloadResult } from './front/control';
import type { RequestSink } from './front/client';
import { PeerListener } from './front/listener';
import type { Logger } from './log';
import { certificateDiagnostics, certificatesWanted, resolveKeyMode } from './peer/keymode';
import { keyModeName, Peer, PeerSettings } from './peer/peer';
import { checkPki, PkiCheck } from './pki/check';
import { Spool } from './peer/spool';
import type { Notifier } from './systemd/notify';
import { groupId } from './util/group';
import { VERSION } from './version';

export interface DaemonOptions {
  configFiles: string[];
  defaultHostId?: string;
  log: Logger;
  notifier: Notifier;
  /** Sockets handed over by systemd, by name (peer id, or `control`). */
  inherited: Map<string, number[]>;
}


/** Answers every request `con_lost`: for a socket systemd gave us for an id hosts.tab lacks. */
const CON_LOST_SINK: RequestSink = {
  request(_line, cb) {
    cb(undefined);
    return { cancelled: false };
  },
  closeSessions() {},
};

/** Loads config + hosts.tab, honouring --default-host-id (the unit passes the host name). */
export function loadConfiguration(files: string[], defaultHostId: string | undefined): Loaded {
  const loaded = loadAll(files, { requireHostId: defaultHostId === undefined });
  if (!loaded.settings.lonHostID && defaultHostId !== undefined) {
    loaded.settings.lonHostID = defaultHostId;
    loaded.peers = loaded.peers.filter((p) => p.id !== defaultHostId);
  }
  return loaded;
}

/**
 * The network's certificates, checked once per start/reload where ssl may be used, and
 * what is said about them (the policy lives in keymode/resolve, shared with gatewayctl check).
 */
export function checkCertificates(s: Settings, peers: readonly PeerEntry[], log: Logger): PkiCheck | undefined {
  const pki = certificatesWanted(s) ? checkPki({ ca: s.caFile, cert: s.certFile, key: s.keyFile }, new Date(), { hostId: s.lonHostID }) : undefined;
  for (const d of certificateDiagnostics(s, peers, pki)) {
    const line = d.file === '' ? d.message : `certificates: ${d.file}: ${d.message}`;
    if (d.severity === 'error') log.error(line);
    else if (d.severity === 'warning') log.warn(line);
    else log.info(line);
  }
  return pki;
}

function peerSettings(s: Settings, p: PeerEntry, pki: PkiCheck | undefined): PeerSettings {
  return {
    keyMode: resolveKeyMode(s, p, pki),
    hostId: s.lonHostID,
    address: p.address,
    port: s.londPort,
    maxSessions: s.maxSessions,
    connectTimeoutMs: s.connectTimeoutMs,
    handshakeTimeoutMs: s.handshakeTimeoutMs,
    requestTimeoutMs: s.requestTimeoutMs,
    idleTimeoutMs: s.idleTimeoutMs,
    maxAttempts: s.maxAttempts,
    retryMaxMs: s.retryMaxMs,
    maxQueue: s.maxQueuePerPeer,
    maxAnswerBytes: s.maxAnswerBytes,
  };
}

/**
 * The whole service: peers, their sockets, the spool and the control socket, with
 * reload, retry and stop. Startup errors throw (ConfigError → exit 78).
 */
export class Daemon {
  settings!: Settings;
  private loaded!: Loaded;
  private peers = new Map<string, Peer>();
  private listeners = new Map<string, PeerListener>();
  private spool!: Spool;
  private control: ControlServer | undefined;
  private controlPath: string | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private reloadChain: Promise<ReloadResult> | undefined;
  private reloadAgain = false;
  private stopping: Promise<void> | undefined;
  readonly startedAt = Date.now();
  private lastRequests = 0;
  private lastStatusAt = Date.now();
  private statusQueued = false;

  constructor(private readonly opts: DaemonOptions) {}

  private get log(): Logger {
    return this.opts.log;
  }

  async start(): Promise<void> {
    this.loaded = loadConfiguration(this.opts.configFiles, this.opts.defaultHostId);
    this.settings = this.loaded.settings;
    this.log.level = this.settings.logLevel;
    for (const w of this.loaded.warnings) this.log.warn(formatDiag(w));

    this.spool = new Spool(this.settings.delayedDir, this.log, this.settings.rescanIntervalMs);
    this.spool.onFiles = (id) => this.peers.get(id)?.delayedAvailable();
    await this.ensureSpool();

    await this.startControl();
    // Sockets systemd handed over for ids not (or no longer) in hosts.tab still get
    // served: a client connecting there gets con_lost instead of hanging.
    for (const [name, fds] of this.opts.inherited) {
      if (name === 'control') continue;
      if (fds.length > 1) this.log.warn({ peer: name }, `systemd passed ${fds.length} sockets for one name; using the first`);
      const listener = new PeerListener(name, { fd: fds[0] as number, path: path.join(this.settings.lonSockDir, name) }, CON_LOST_SINK, this.listenerOpts(), this.log);
      await listener.listen();
      this.listeners.set(name, listener);
    }
    await this.applyPeers(this.loaded.peers, []);
    for (const name of this.listeners.keys()) {
      if (!this.peers.has(name)) this.log.warn({ peer: name }, 'systemd passed a socket for an id that is not in hosts.tab: it answers con_lost');
    }
    this.spool.setPeers(this.peers.keys());
    this.spool.start();

    this.opts.notifier.ready();
    this.updateStatus();
    this.statusTimer = setInterval(() => this.updateStatus(), 5000);
    this.statusTimer.unref();
    this.opts.notifier.startWatchdog(() => !this.stopping);
    this.log.info(`gatewayc ${VERSION} ready: ${this.peers.size} peers, host id ${this.settings.lonHostID}, config ${this.loaded.files.join(', ')}`);
    if (this.peers.size === 0) this.log.warn(`no peers configured: add them to ${this.loaded.hostsFile} and reload`);
  }

  private listenerOpts(): { maxRequestBytes: number; maxClients: number; gid?: number } {
    const gid = this.settings.socketGroup ? groupId(this.settings.socketGroup) : undefined;
    return { maxRequestBytes: this.settings.maxRequestBytes, maxClients: this.settings.maxClientsPerPeer, ...(gid !== undefined ? { gid } : {}) };
  }

  private async ensureSpool(): Promise<void> {
    try {
      // No setgid bit here: RestrictSUIDSGID= forbids it even on an existing directory; the
      // package creates the spool 2770 so files written by the web server keep its group.
      await fs.promises.mkdir(this.settings.delayedDir, { recursive: true, mode: 0o770 });
    } catch (err) {
      this.log.error(`cannot create the delayed-message directory ${this.settings.delayedDir}: ${(err as Error).message}`);
    }
  }

  private async startControl(): Promise<void> {
    const control = new ControlServer((req) => this.onControl(req), this.log);
    const fds = this.opts.inherited.get('control');
    if (fds && fds.length > 0) {
      await control.listen({ fd: fds[0] as number });
    } else {
      const gid = this.settings.socketGroup ? groupId(this.settings.socketGroup) : undefined;
      try {
        await control.listen({ path: this.settings.controlSocket, ...(gid !== undefined ? { gid } : {}) });
        this.controlPath = this.settings.controlSocket;
      } catch (err) {
        this.log.error(`cannot open the control socket ${this.settings.controlSocket}: ${(err as Error).message} (gatewayctl will not reach this daemon)`);
        return;
      }
    }
    this.control = control;
  }

  /** Starts added peers, stops removed ones, updates the rest in place. */
  private async applyPeers(entries: PeerEntry[], warnings: string[]): Promise<Omit<ReloadResult, 'ok' | 'warnings'>> {
    const pki = checkCertificates(this.settings, entries, this.log);
    const wanted = new Map(entries.map((e) => [e.id, e]));
    const added: string[] = [];
    const removed: string[] = [];
    const reconnected: string[] = [];

    for (const [id, peer] of this.peers) {
      if (wanted.has(id)) continue;
      removed.push(id);
      this.peers.delete(id);
      this.log.info({ peer: id }, 'removed from hosts.tab: stopping');
      const listener = this.listeners.get(id);
      void peer.stop(this.settings.shutdownTimeoutMs).then(async () => {
        // Added back by a reload while it was stopping: the new peer owns the listener now.
        if (!listener || this.peers.has(id)) return;
        if (listener.inherited) {
          listener.sink = CON_LOST_SINK; // systemd owns the socket until the next restart
        } else {
          this.listeners.delete(id);
          await listener.close(true);
          listener.dropClients();
        }
      });
    }

    const lopts = this.listenerOpts();
    for (const l of this.listeners.values()) l.opts = lopts;

    // New peers' sockets are bound side by side: one at a time, a thousand peers took most
    // of the 2 s budget for READY (bench: 1000-peer READY 1.6–1.9 s → 0.85 s).
    const starting: Promise<void>[] = [];
    for (const [id, entry] of wanted) {
      const ps = peerSettings(this.settings, entry, pki);
      const existing = this.peers.get(id);
      if (existing) {
        if (existing.update(ps)) reconnected.push(id);
        continue;
      }
      const peer = new Peer(id, ps, this.log, this.spool);
      peer.onStateChange = () => this.statusSoon();
      this.peers.set(id, peer);
      added.push(id);
      const listener = this.listeners.get(id);
      if (listener) {
        listener.sink = peer;
        peer.start();
        continue;
      }
      starting.push(this.listenFor(peer, lopts, warnings));
    }
    await Promise.all(starting);
    return { added, removed, reconnected };
  }

  /** Binds a new peer's socket, then starts the peer (its first session). */
  private async listenFor(peer: Peer, lopts: ReturnType<Daemon['listenerOpts']>, warnings: string[]): Promise<void> {
    const socketPath = path.join(this.settings.lonSockDir, peer.id);
    const listener = new PeerListener(peer.id, { path: socketPath }, peer, lopts, this.log);
    try {
      await listener.listen();
      this.listeners.set(peer.id, listener);
    } catch (err) {
      const msg = `cannot listen on ${socketPath}: ${(err as Error).message}`;
      this.log.error({ peer: peer.id }, msg);
      warnings.push(`${peer.id}: ${msg}`);
    }
    peer.start();
  }

  /** SIGHUP / `gatewayctl reload`. Storms coalesce: at most one reload runs, one more follows. */
  reload(): Promise<ReloadResult> {
    if (this.reloadChain) {
      this.reloadAgain = true;
      return this.reloadChain;
    }
    this.reloadChain = this.doReload().finally(() => {
      this.reloadChain = undefined;
      if (this.reloadAgain) {
        this.reloadAgain = false;
        void this.reload();
      }
    });
    return this.reloadChain;
  }

  private async doReload(): Promise<ReloadResult> {
    this.opts.notifier.reloading();
    const empty = { added: [], removed: [], reconnected: [], warnings: [] };
    try {
      let loaded: Loaded;
      try {
        loaded = loadConfiguration(this.opts.configFiles, this.opts.defaultHostId);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        this.log.error(`reload refused, the running configuration stays: ${err.message}`);
        return { ok: false, error: err.message, ...empty };
      }
      const warnings = loaded.warnings.map(formatDiag);
      for (const w of warnings) this.log.warn(w);
      const old = this.settings;
      for (const key of ['lonSockDir', 'controlSocket'] as const) {
        if (loaded.settings[key] !== old[key]) {
          const w = `${key} changed: takes effect when gatewayc restarts`;
          this.log.warn(w);
          warnings.push(w);
          loaded.settings[key] = old[key];
        }
      }
      this.loaded = loaded;
      this.settings = loaded.settings;
      this.log.level = this.settings.logLevel;
      this.spool.reconfigure(this.settings.delayedDir, this.settings.rescanIntervalMs);
      const diff = await this.applyPeers(loaded.peers, warnings);
      this.spool.setPeers(this.peers.keys());
      this.log.info(`reloaded: ${this.peers.size} peers (added ${diff.added.length}, removed ${diff.removed.length}, reconnected ${diff.reconnected.length})`);
      this.updateStatus();
      return { ok: true, ...diff, warnings };
    } finally {
      this.opts.notifier.ready();
    }
  }

  /** SIGUSR1 / `gatewayctl retry`: reset counters, reconnect down peers now, log each peer. */
  retry(ids?: string[]): string[] {
    const targets = ids && ids.length > 0 ? ids : [...this.peers.keys()];
    const unknown = targets.filter((id) => !this.peers.has(id));
    if (unknown.length > 0) throw new Error(`unknown peer${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
    for (const id of targets) {
      const p = this.peers.get(id) as Peer;
      p.retry();
      const c = p.sessionCounts();
      this.log.info({ peer: id }, `retry: state ${p.state}, ${c.open} sessions open, ${p.queued} queued, ${this.spool.backlog(id)} delayed`);
    }
    return targets;
  }

  status(): Record<string, unknown> {
    const peers = [...this.peers.values()].map((p) => {
      const c = p.sessionCounts();
      const listener = this.listeners.get(p.id);
      return {
        id: p.id,
        address: p.settings.address,
        port: p.settings.port,
        state: p.state,
        keyMode: keyModeName(p.settings.keyMode),
        sessions: { open: c.open, busy: c.busy, opening: c.opening, max: p.settings.maxSessions },
        queued: p.queued,
        failures: p.failures,
        maxAttempts: p.settings.maxAttempts,
        nextAttemptAt: p.nextAttemptAt ?? null,
        lastError: p.lastError || null,
        lastErrorAt: p.lastErrorAt ?? null,
        upSince: p.upSince ?? null,
        handshakeMs: p.lastHandshakeMs ?? null,
        p50Ms: p.latency.percentile(50) ?? null,
        p99Ms: p.latency.percentile(99) ?? null,
        delayed: this.spool.backlog(p.id),
        delivered: p.delivered,
        requests: p.requests,
        conLost: p.conLost,
        clients: listener?.clientCount ?? 0,
        socket: listener ? listener.source.path : null,
        socketFromSystemd: listener?.inherited ?? false,
      };
    });
    return {
      version: VERSION,
      pid: process.pid,
      hostId: this.settings.lonHostID,
      startedAt: this.startedAt,
      uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
      configFiles: this.loaded.files,
      hostsFile: this.loaded.hostsFile,
      delayedDir: this.settings.delayedDir,
      peers,
    };
  }

  /** Coalesces many peers changing state at once (start, a network blip) into one update. */
  private statusSoon(): void {
    if (this.statusQueued) return;
    this.statusQueued = true;
    setImmediate(() => {
      this.statusQueued = false;
      this.updateStatus();
    });
  }

  /** One line for systemd's STATUS=. */
  private updateStatus(): void {
    if (this.peers.size === 0) {
      this.opts.notifier.status(`No peers configured: add servers to ${this.loaded.hostsFile}, then systemctl reload gatewayc`);
      return;
    }
    let up = 0;
    let sessions = 0;
    let queued = 0;
    let delayed = 0;
    let requests = 0;
    for (const p of this.peers.values()) {
      if (p.state === 'up') up++;
      sessions += p.sessionCounts().open;
      queued += p.queued;
      delayed += this.spool.backlog(p.id);
      requests += p.requests;
    }
    const now = Date.now();
    const rate = ((requests - this.lastRequests) * 1000) / Math.max(1, now - this.lastStatusAt);
    this.lastRequests = requests;
    this.lastStatusAt = now;
    this.opts.notifier.status(`${up}/${this.peers.size} peers up, ${sessions} sessions, ${queued} queued, ${rate.toFixed(1)} req/s, ${delayed} delayed waiting`);
  }

  private async onControl(req: ControlRequest): Promise<Record<string, unknown>> {
    switch (req.op) {
      case 'status':
        return { ok: true, ...this.status() };
      case 'reload': {
        const r = await this.reload();
        return { ...r };
      }
      case 'retry': {
        const ids = Array.isArray(req.peers) ? req.peers.map(String) : [];
        return { ok: true, peers: this.retry(ids) };
      }
      case 'delayed': {
        const peer = typeof req.peer === 'string' ? req.peer : undefined;
        const files = await Promise.all(
          this.spool.list(peer).map(async (f) => {
            try {
              const st = await fs.promises.stat(path.join(this.settings.delayedDir, f.name));
              return { ...f, size: st.size, mtime: st.mtimeMs };
            } catch {
              return { ...f, size: null, mtime: null };
            }
          }),
        );
        return { ok: true, dir: this.settings.delayedDir, files };
      }
      default:
        return { ok: false, error: `unknown control operation ${JSON.stringify(req.op)}` };
    }
  }

  /** SIGTERM: stop accepting, answer or con_lost every request, send exit, close. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.opts.notifier.stopping();
    this.log.info('stopping: answering pending requests and closing sessions');
    if (this.statusTimer) clearInterval(this.statusTimer);
    // Peers first (synchronously they stop reconnecting and answer their queues), so a
    // lond that goes away at the same moment is not reported as a lost session.
    const peersStopped = Promise.all([...this.peers.values()].map((p) => p.stop(this.settings.shutdownTimeoutMs)));
    await Promise.all([...this.listeners.values()].map((l) => l.close(true)));
    await peersStopped;
    // Let the last answers reach the clients' sockets before they are closed.
    await new Promise((r) => setImmediate(r));
    for (const l of this.listeners.values()) l.dropClients();
    this.spool.stop();
    await this.control?.close(this.controlPath);
    this.opts.notifier.close();
    this.log.info('stopped');
  }
}
