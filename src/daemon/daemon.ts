import * as fs from 'node:fs';
import { ConfigError, formatDiag } from '../config/diag';
import type { Loaded } from '../config/load';
import type { Settings } from '../config/settings';
import type { ControlRequest, DaemonStatus, DelayedReply, ReloadResult } from '../control/protocol';
import { Spool } from '../delayed/spool';
import { ControlServer } from '../front/control';
import type { ListenerOptions } from '../front/listener';
import type { Logger } from '../log';
import type { PeerSettings } from '../peer/peer';
import { createSession, SessionFactory } from '../peer/session';
import type { Notifier } from '../systemd/notify';
import { ByteBudget } from '../util/budget';
import { Clock, systemClock, Timer } from '../util/clock';
import { groupId } from '../util/group';
import { VERSION } from '../version';
import { checkCertificates, loadConfiguration, peerSettingsFor } from './configuration';
import { PeerSet } from './peers';
import { buildStatus, StatusLine } from './status';
import type { PeerEntry } from '../config/hosts';

export interface DaemonOptions {
  configFiles: string[];
  defaultHostId?: string;
  log: Logger;
  notifier: Notifier;
  /** Sockets handed over by systemd, by name (peer id, or `control`). */
  inherited: Map<string, number[]>;
  clock?: Clock;
  openSession?: SessionFactory;
}

/** How long a client that does not read its answers may hold them while memory is short. */
const CLIENT_STALL_MS = 10_000;
const STATUS_EVERY_MS = 5000;
/**
 * On stop, a client connection accepted but silent gets this long to send its line: lonnet
 * writes right after connecting, so such a connection is a request on its way.
 */
const FIRST_LINE_GRACE_MS = 1000;

/**
 * The whole service, wired together: configuration (daemon/configuration), peers and
 * their sockets (daemon/peers), the spool, the control socket and systemd's notifications.
 * Startup errors throw (ConfigError → exit 78).
 */
export class Daemon {
  private settings!: Settings;
  private loaded!: Loaded;
  private peers!: PeerSet;
  private spool!: Spool;
  private budget!: ByteBudget;
  private control: ControlServer | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private statusQueued = false;
  private statusLine!: StatusLine;
  private reloading: Promise<ReloadResult> | undefined;
  private reloadAgain = false;
  private stopping: Promise<void> | undefined;
  private readonly clock: Clock;
  readonly startedAt: number;

  constructor(private readonly opts: DaemonOptions) {
    this.clock = opts.clock ?? systemClock;
    this.startedAt = this.clock.now();
  }

  private get log(): Logger {
    return this.opts.log;
  }

  async start(): Promise<void> {
    this.loaded = loadConfiguration(this.opts.configFiles, this.opts.defaultHostId);
    this.settings = this.loaded.settings;
    this.log.level = this.settings.logLevel;
    for (const w of this.loaded.warnings) this.log.warn({ event: 'config.warning', configFile: w.file, configLine: w.line }, formatDiag(w));

    this.budget = new ByteBudget({
      limit: this.settings.maxBufferedBytes,
      clock: this.clock,
      stallMs: CLIENT_STALL_MS,
    });
    this.spool = new Spool(this.spoolOptions(), this.log, this.budget);
    await this.ensureSpool();
    this.peers = new PeerSet({
      log: this.log,
      clock: this.clock,
      budget: this.budget,
      spool: this.spool,
      openSession: this.opts.openSession ?? createSession,
      onStateChange: () => this.statusSoon(),
    });
    this.statusLine = new StatusLine(this.clock.now());

    await this.startControl();
    await this.peers.adopt(this.opts.inherited, this.settings.lonSockDir, this.listenerOptions());
    await this.peers.apply(this.wantedPeers(this.loaded.peers), this.settings.lonSockDir, this.listenerOptions(), this.settings.shutdownTimeoutMs, []);
    for (const id of this.peers.strangers()) {
      this.log.warn({ peer: id, event: 'socket.stranger' }, 'systemd passed a socket for an id that is not in hosts.tab: it answers con_lost');
    }
    this.spool.setPeers(this.peers.ids());
    this.spool.start();

    this.opts.notifier.ready();
    this.updateStatus();
    this.statusTimer = setInterval(() => this.updateStatus(), STATUS_EVERY_MS);
    this.statusTimer.unref();
    this.opts.notifier.startWatchdog(() => !this.stopping);
    this.log.info({ event: 'daemon.ready', peers: this.peers.size }, `gatewayc ${VERSION} ready: ${this.peers.size} peers, host id ${this.settings.lonHostID}, config ${this.loaded.files.join(', ')}`);
    if (this.peers.size === 0) this.log.warn({ event: 'daemon.no-peers' }, `no peers configured: add them to ${this.loaded.hostsFile} and reload`);
  }

  /** SIGHUP / `gatewayctl reload`. Storms coalesce: at most one reload runs, one more follows. */
  reload(): Promise<ReloadResult> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = this.doReload().finally(() => {
      this.reloading = undefined;
      if (this.reloadAgain) {
        this.reloadAgain = false;
        void this.reload();
      }
    });
    return this.reloading;
  }

  /** SIGUSR1 / `gatewayctl retry`: reset counters, reconnect down peers now, log each peer. */
  retry(ids?: string[]): string[] {
    const targets = ids && ids.length > 0 ? ids : this.peers.ids();
    const unknown = targets.filter((id) => !this.peers.has(id));
    if (unknown.length > 0) throw new Error(`unknown peer${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
    this.peers.retry(targets);
    for (const id of targets) {
      const p = this.peers.status(id);
      if (p) this.log.info({ peer: id, event: 'peer.retry', state: p.state }, `retry: state ${p.state}, ${p.sessions.open} sessions open, ${p.queued} queued, ${p.delayed} delayed`);
    }
    return targets;
  }

  status(): DaemonStatus {
    return buildStatus({
      loaded: this.loaded,
      startedAt: this.startedAt,
      now: this.clock.now(),
      buffered: { bytes: this.budget.bytes, limit: this.budget.limit },
      peers: this.peers.ids().flatMap((id) => this.peers.status(id) ?? []),
    });
  }

  /** SIGTERM: stop accepting, answer or con_lost every request, send exit, close. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  // ---- start and reload ----

  private spoolOptions(): { dir: string; rescanMs: number; maxMessageBytes: number } {
    return { dir: this.settings.delayedDir, rescanMs: this.settings.rescanIntervalMs, maxMessageBytes: this.settings.maxRequestBytes };
  }

  private listenerOptions(): ListenerOptions {
    const gid = this.settings.socketGroup ? groupId(this.settings.socketGroup) : undefined;
    return { maxRequestBytes: this.settings.maxRequestBytes, maxClients: this.settings.maxClientsPerPeer, ...(gid !== undefined ? { gid } : {}) };
  }

  /** What every peer of hosts.tab runs with; logs what is wrong with the certificates. */
  private wantedPeers(entries: PeerEntry[]): Map<string, { entry: PeerEntry; settings: PeerSettings }> {
    const certs = checkCertificates(this.settings, entries, new Date(this.clock.now()));
    if (certs.note) this.log.info({ event: 'certificates.none' }, certs.note);
    for (const d of certs.diags) this.log[d.severity === 'error' ? 'error' : 'warn']({ event: 'certificates.problem', configFile: d.file }, `certificates: ${formatDiag(d)}`);
    return new Map(entries.map((entry) => [entry.id, { entry, settings: peerSettingsFor(this.settings, entry, certs.pki) }]));
  }

  private async ensureSpool(): Promise<void> {
    try {
      // No setgid bit here: RestrictSUIDSGID= forbids it even on an existing directory; the
      // package creates the spool 2770 so files written by the web server keep its group.
      await fs.promises.mkdir(this.settings.delayedDir, { recursive: true, mode: 0o770 });
    } catch (err) {
      this.log.error({ event: 'spool.create-failed' }, `cannot create the delayed-message directory ${this.settings.delayedDir}: ${(err as Error).message}`);
    }
  }

  private async startControl(): Promise<void> {
    const control = new ControlServer((req) => this.onControl(req), this.log);
    const fds = this.opts.inherited.get('control');
    try {
      await control.listen(fds && fds.length > 0 ? { fd: fds[0] as number, path: this.settings.controlSocket } : { path: this.settings.controlSocket });
    } catch (err) {
      this.log.error({ event: 'control.failed' }, `cannot open the control socket ${this.settings.controlSocket}: ${(err as Error).message} (gatewayctl will not reach this daemon)`);
      return;
    }
    this.control = control;
  }

  private async doReload(): Promise<ReloadResult> {
    this.opts.notifier.reloading();
    const refused = (error: string): ReloadResult => ({ ok: false, error, added: [], removed: [], reconnected: [], warnings: [] });
    try {
      let loaded: Loaded;
      try {
        loaded = loadConfiguration(this.opts.configFiles, this.opts.defaultHostId);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        this.log.error({ event: 'reload.refused', reason: err.message }, `reload refused, the running configuration stays: ${err.message}`);
        return refused(err.message);
      }
      const warnings = loaded.warnings.map(formatDiag);
      for (const w of loaded.warnings) this.log.warn({ event: 'config.warning', configFile: w.file, configLine: w.line }, formatDiag(w));
      for (const key of ['lonSockDir', 'controlSocket', 'maxBufferedBytes'] as const) {
        if (loaded.settings[key] !== this.settings[key]) {
          const w = `${key === 'controlSocket' ? 'gatewaycControlSocket' : key === 'maxBufferedBytes' ? 'gatewaycMaxBufferedBytes' : key} changed: takes effect when gatewayc restarts`;
          this.log.warn({ event: 'reload.needs-restart', key }, w);
          warnings.push(w);
          (loaded.settings as unknown as Record<string, unknown>)[key] = this.settings[key];
        }
      }
      this.loaded = loaded;
      this.settings = loaded.settings;
      this.log.level = this.settings.logLevel;
      this.spool.reconfigure(this.spoolOptions());
      const diff = await this.peers.apply(this.wantedPeers(loaded.peers), this.settings.lonSockDir, this.listenerOptions(), this.settings.shutdownTimeoutMs, warnings);
      this.spool.setPeers(this.peers.ids());
      this.log.info(
        { event: 'reload.done', peers: this.peers.size, added: diff.added.length, removed: diff.removed.length, reconnected: diff.reconnected.length },
        `reloaded: ${this.peers.size} peers (added ${diff.added.length}, removed ${diff.removed.length}, reconnected ${diff.reconnected.length})`,
      );
      this.updateStatus();
      return { ok: true, ...diff, warnings };
    } finally {
      this.opts.notifier.ready();
    }
  }

  // ---- status ----

  /** Coalesces many peers changing state at once (start, a network blip) into one update. */
  private statusSoon(): void {
    if (this.statusQueued) return;
    this.statusQueued = true;
    setImmediate(() => {
      this.statusQueued = false;
      this.updateStatus();
    });
  }

  private updateStatus(): void {
    if (this.stopping) return;
    this.opts.notifier.status(this.statusLine.render(this.peers.counters(), this.loaded.hostsFile, this.clock.now()));
  }

  // ---- control ----

  private async onControl(req: ControlRequest): Promise<object> {
    switch (req.op) {
      case 'status':
        return { ok: true, ...this.status() };
      case 'reload':
        return await this.reload();
      case 'retry': {
        const ids = Array.isArray(req.peers) ? req.peers.map(String) : [];
        return { ok: true, peers: this.retry(ids) };
      }
      case 'delayed': {
        const peer = typeof req.peer === 'string' ? req.peer : undefined;
        const { files, notListed } = await this.spool.describe(peer);
        const reply: DelayedReply = { dir: this.spool.dir, files, notListed };
        return { ok: true, ...reply };
      }
      default:
        return { ok: false, error: `unknown control operation ${JSON.stringify(req.op)}` };
    }
  }

  // ---- stop ----

  /**
   * Stop (restart, upgrade, systemctl stop) loses no request it accepted: sockets stop
   * accepting (systemd keeps its own, so new clients queue for the next daemon), clients
   * already connected get every answer they asked for, delayed delivery ends at a message
   * boundary, and only what is still unanswered at gatewaycShutdownTimeout gets con_lost.
   * Then every session says exit.
   */
  private async doStop(): Promise<void> {
    this.opts.notifier.stopping();
    this.log.info({ event: 'daemon.stopping' }, 'stopping: answering pending requests and closing sessions');
    if (this.statusTimer) clearInterval(this.statusTimer);
    const deadline = this.clock.now() + this.settings.shutdownTimeoutMs;
    const deliveries = this.peers.stopDeliveries();
    await this.peers.closeSockets();
    const drained = this.peers.drainClients(Math.min(FIRST_LINE_GRACE_MS, this.settings.shutdownTimeoutMs));
    let timer: Timer | undefined;
    const late = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((r) => (timer = this.clock.after(Math.max(0, deadline - this.clock.now()), () => r(true)))),
    ]);
    timer?.cancel();
    if (late) this.log.warn({ event: 'daemon.stop-timeout' }, `gatewaycShutdownTimeout (${this.settings.shutdownTimeoutMs / 1000} s) ran out: what is still unanswered gets con_lost`);
    // Queued requests get con_lost now; sessions finish what they carry within what is left.
    await this.peers.stopPeers(Math.max(0, deadline - this.clock.now()));
    await deliveries;
    // Let the last answers reach the clients' sockets before they are closed.
    await new Promise((r) => setImmediate(r));
    this.peers.dropClients();
    this.spool.stop();
    await this.control?.close();
    this.opts.notifier.close();
    this.log.info({ event: 'daemon.stopped' }, 'stopped');
  }
}
