import type { Logger } from '../log';
import type { ByteBudget } from '../util/budget';
import type { Clock, Timer } from '../util/clock';
import { Signal } from '../util/signal';
import { ThrottledWarning } from '../util/throttle';
import { backoffDelay } from './backoff';
import { SessionPool, sessionsToOpen } from './pool';
import { PeerRequest, RequestHandle, RequestOptions, RequestQueue } from './request';
import { SessionClosed, SessionFactory, SessionHandle, SessionKeyMode } from './session';
import { LatencyRing } from './stats';

export interface PeerSettings {
  hostId: string;
  address: string;
  port: number;
  maxSessions: number;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxAttempts: number;
  retryMaxMs: number;
  maxQueue: number;
  maxAnswerBytes: number;
  keyMode: SessionKeyMode;
}

/** Whether a reload changed how this peer's sessions get their key (then they reconnect). */
function sameKeyMode(a: SessionKeyMode, b: SessionKeyMode): boolean {
  if ('error' in a || 'error' in b) return 'error' in a && 'error' in b && a.error === b.error;
  if (a.mode !== b.mode) return false;
  if (a.mode === 'ssl' && b.mode === 'ssl') return a.material.ca === b.material.ca && a.material.cert === b.material.cert && a.material.key === b.material.key;
  if (a.mode === 'local' && b.mode === 'local') return a.dir === b.dir;
  return true;
}

/** The key mode's name for status and logs. */
function keyModeName(k: SessionKeyMode): string {
  return 'error' in k ? 'none' : k.mode;
}

/**
 * connecting: no usable session yet, an attempt is under way or scheduled;
 * up: at least one session has finished its handshake;
 * down: gatewaycMaxAttempts attempts failed in a row: requests get con_lost at once,
 *       one attempt every gatewaycRetryMax;
 * stopped: removed from hosts.tab or the daemon stops; final.
 */
export type PeerState = 'connecting' | 'up' | 'down' | 'stopped';

export interface PeerStateChange {
  peer: string;
  from: PeerState;
  to: PeerState;
  reason: string;
}

/** Everything status shows of a peer, read in one go. */
export interface PeerSnapshot {
  state: PeerState;
  keyMode: string;
  sessions: { open: number; busy: number; opening: number; max: number };
  queued: number;
  failures: number;
  maxAttempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  upSince: number | null;
  handshakeMs: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  requests: number;
  conLost: number;
}

export interface PeerDeps {
  log: Logger;
  clock: Clock;
  openSession: SessionFactory;
  budget?: ByteBudget;
}

/** Baseline of the reconnect backoff; the cap is gatewaycRetryMax. */
const BACKOFF_BASE_MS = 1000;
/** A session that dies sooner than this after its handshake counts as a failed attempt. */
const SHORT_LIVED_MS = 2000;
/** Warnings that can repeat per request come at most this often per peer. */
const WARN_INTERVAL_MS = 10_000;
/**
 * close_connection_exit lines closer together than this close the sessions once: every
 * session is new since the first one, and a client repeating the line must not make us
 * open (and the peer accept, with a TLS handshake each) a session per line.
 */
const CLOSE_COALESCE_MS = 1000;

/**
 * One remote server: its state machine (setState is the one place the state changes),
 * its pool of sessions (SessionPool: which sessions exist and in which state), the queue
 * of requests waiting for a free session, and the reconnect policy. Everything runs on
 * the event loop; the timers are one per waiting request (its deadline), one per extra
 * idle session and one reconnect timer while no session exists.
 */
export class Peer {
  /** The peer changed state (the daemon refreshes systemd's STATUS=, delivery starts). */
  readonly stateChanged = new Signal<PeerStateChange>();

  private state: PeerState = 'connecting';
  private readonly pool: SessionPool;
  private readonly queue = new RequestQueue();
  private retryTimer: Timer | undefined;
  private nextAttemptAt: number | undefined;
  private failures = 0;
  private lastError = '';
  private lastErrorAt: number | undefined;
  private lastHandshakeMs: number | undefined;
  private upSince: number | undefined;
  private lastCloseAt = -Infinity;
  /** After an extra session failed, no other is opened before this (the peer is up meanwhile). */
  private growPausedUntil = 0;
  private extraFailures = 0;
  private requests = 0;
  private conLost = 0;
  private readonly latency = new LatencyRing();
  private readonly log: Logger;
  private readonly queueFull: ThrottledWarning;
  private readonly queueTimeout: ThrottledWarning;
  private stopped: { resolve: () => void; promise: Promise<void> } | undefined;

  constructor(
    readonly id: string,
    private settings: PeerSettings,
    private readonly deps: PeerDeps,
  ) {
    this.log = deps.log.child({ peer: id });
    this.pool = new SessionPool(deps.clock);
    this.queueFull = new ThrottledWarning(
      WARN_INTERVAL_MS,
      (more) => this.log.warn({ event: 'request.queue-full' }, `queue full (gatewaycMaxQueue ${this.settings.maxQueue}): answering con_lost${more}`),
      deps.clock.now,
    );
    this.queueTimeout = new ThrottledWarning(
      WARN_INTERVAL_MS,
      (more) => this.log.warn({ event: 'request.queue-timeout' }, `request timed out after ${this.settings.requestTimeoutMs / 1000} s in the queue (peer ${this.state})${more}`),
      deps.clock.now,
    );
  }

  get currentState(): PeerState {
    return this.state;
  }

  get currentSettings(): PeerSettings {
    return this.settings;
  }

  start(): void {
    this.log.debug({ event: 'peer.start' }, `connecting to ${this.settings.address}:${this.settings.port}`);
    this.openSession();
  }

  /** Queues one request line. The answer (undefined: con_lost) always comes asynchronously. */
  request(line: Buffer, opts: RequestOptions): RequestHandle {
    const priority = opts.priority ?? 'live';
    const req = new PeerRequest(line, priority, this.deps.clock.now(), opts.onAnswer, (r) => this.queue.left(r));
    if (priority === 'live') this.requests++;
    if (this.state === 'down' || this.state === 'stopped') return this.loseSoon(req);
    if (priority === 'live' && this.queue.liveSize >= this.settings.maxQueue) {
      this.queueFull.hit();
      return this.loseSoon(req);
    }
    req.deadline = this.deps.clock.after(this.settings.requestTimeoutMs, () => this.expire(req));
    this.queue.push(req);
    this.dispatch();
    return req;
  }

  /**
   * `close_connection_exit`: ends the sessions that exist now (busy ones after their
   * request), so the next request gets a fresh one. Sessions still opening are new
   * already and are left alone; repeats within CLOSE_COALESCE_MS are one close.
   */
  closeSessions(): void {
    if (this.state === 'stopped') return;
    const now = this.deps.clock.now();
    if (now - this.lastCloseAt < CLOSE_COALESCE_MS) {
      this.log.debug({ event: 'peer.close-sessions-coalesced' }, 'close_connection_exit again within a second: sessions are new already');
      return;
    }
    this.lastCloseAt = now;
    this.log.info({ event: 'peer.close-sessions' }, 'closing sessions on request (close_connection_exit)');
    this.retireReady('closed by close_connection_exit');
  }

  /** USR1 / `gatewayctl retry`: forget past failures and try now if not up. */
  retry(): void {
    this.failures = 0;
    if (this.state === 'stopped' || this.state === 'up' || this.pool.opening > 0) return;
    this.clearRetryTimer();
    this.setState('connecting', 'retry requested');
    this.openSession();
  }

  /** Reload: new settings; a changed address, port, host id or key mode reconnects. */
  update(next: PeerSettings): boolean {
    const prev = this.settings;
    const reconnect = next.address !== prev.address || next.port !== prev.port || next.hostId !== prev.hostId || !sameKeyMode(next.keyMode, prev.keyMode);
    this.settings = next;
    if (!reconnect || this.state === 'stopped') return false;
    this.log.info({ event: 'peer.reconnect' }, `address or key mode changed (now ${next.address}:${next.port}, ${keyModeName(next.keyMode)}): reconnecting`);
    this.failures = 0;
    this.clearRetryTimer();
    if (this.state === 'down') this.setState('connecting', 'settings changed');
    for (const s of this.pool.list('opening')) s.close('address changed');
    this.retireReady('address changed');
    this.ensureService('address changed');
    return true;
  }

  /**
   * Stops for good: queued requests get con_lost, idle sessions say `exit` now, busy ones
   * after their answer; whatever is still open after `graceMs` is closed anyway. Resolves
   * once every session is closed.
   */
  stop(graceMs: number): Promise<void> {
    if (this.stopped) return this.stopped.promise;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.stopped = { resolve, promise };
    this.clearRetryTimer();
    this.setState('stopped', 'stopping');
    this.queue.drain((r) => this.lose(r));
    for (const s of this.pool.list('opening')) s.close('gatewayc is stopping');
    this.retireReady('gatewayc is stopping');
    const force = this.deps.clock.after(graceMs, () => {
      for (const s of this.pool.list('busy')) s.close('gatewayc is stopping (shutdown timeout)');
    });
    void promise.then(() => force.cancel());
    this.checkStopped();
    return promise;
  }

  /** The few counters systemd's STATUS= line sums up (no percentiles: read every 5 s). */
  counters(): { state: PeerState; openSessions: number; queued: number; requests: number } {
    return { state: this.state, openSessions: this.pool.ready, queued: this.queue.size, requests: this.requests };
  }

  snapshot(): PeerSnapshot {
    const s = this.settings;
    return {
      state: this.state,
      keyMode: keyModeName(s.keyMode),
      sessions: { open: this.pool.ready, busy: this.pool.busy, opening: this.pool.opening, max: s.maxSessions },
      queued: this.queue.size,
      failures: this.failures,
      maxAttempts: s.maxAttempts,
      nextAttemptAt: this.nextAttemptAt ?? null,
      lastError: this.lastError || null,
      lastErrorAt: this.lastErrorAt ?? null,
      upSince: this.upSince ?? null,
      handshakeMs: this.lastHandshakeMs ?? null,
      p50Ms: this.latency.percentile(50) ?? null,
      p99Ms: this.latency.percentile(99) ?? null,
      requests: this.requests,
      conLost: this.conLost,
    };
  }

  // ---- the state machine ----

  /** The one place the state changes: logs the change and tells the listeners. */
  private setState(to: PeerState, reason: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    const now = this.deps.clock.now();
    if (to === 'up') {
      this.upSince = now;
      this.clearRetryTimer();
      this.log.info({ event: 'peer.up', from, handshakeMs: this.lastHandshakeMs, keyMode: keyModeName(this.settings.keyMode) }, `up (handshake ${this.lastHandshakeMs ?? '?'} ms)${from === 'down' ? ' after being down' : ''}`);
    } else {
      this.upSince = undefined;
      if (to === 'down') {
        this.log.warn({ event: 'peer.down', failures: this.failures, reason }, `down after ${this.failures} failed attempts: ${reason}`);
        this.queue.drain((r) => this.lose(r));
      } else if (to === 'connecting') {
        this.log.info({ event: 'peer.connecting', from, reason }, `connecting (${reason})`);
      } else {
        this.log.debug({ event: 'peer.stopped', from }, 'stopped');
      }
    }
    this.stateChanged.emit({ peer: this.id, from, to, reason });
  }

  /**
   * After any change in the pool: keeps the invariant that a peer that is not stopped
   * always has a session, a session opening, or a reconnect timer — never none of them.
   */
  private ensureService(reason: string): void {
    if (this.state === 'stopped') return;
    if (this.pool.ready > 0) {
      this.grow();
      return;
    }
    if (this.state === 'up') this.setState('connecting', reason);
    if (this.pool.opening > 0 || this.retryTimer) return;
    if (this.failures === 0) {
      this.openSession();
      return;
    }
    if (this.failures >= this.settings.maxAttempts) {
      this.setState('down', reason);
      this.scheduleRetry(this.settings.retryMaxMs);
      return;
    }
    this.log.info({ event: 'peer.attempt-failed', failures: this.failures, reason }, `attempt ${this.failures} of ${this.settings.maxAttempts} failed: ${reason}`);
    this.scheduleRetry(backoffDelay(this.failures, { baseMs: BACKOFF_BASE_MS, maxMs: this.settings.retryMaxMs }));
  }

  // ---- sessions ----

  private openSession(): void {
    if (this.state === 'stopped') return;
    this.nextAttemptAt = undefined;
    const s: SessionHandle = this.deps.openSession(
      {
        peerId: this.id,
        hostId: this.settings.hostId,
        address: this.settings.address,
        port: this.settings.port,
        connectTimeoutMs: this.settings.connectTimeoutMs,
        handshakeTimeoutMs: this.settings.handshakeTimeoutMs,
        maxAnswerBytes: this.settings.maxAnswerBytes,
        keyMode: this.settings.keyMode,
        clock: this.deps.clock,
        ...(this.deps.budget ? { budget: this.deps.budget } : {}),
        warn: (m) => this.log.warn({ event: 'session.warning' }, m),
      },
      {
        ready: (handshakeMs) => this.sessionReady(s, handshakeMs),
        available: () => this.sessionAvailable(s),
        closed: (info) => this.sessionClosed(s, info),
      },
    );
    this.pool.add(s);
    s.open();
  }

  private sessionReady(s: SessionHandle, handshakeMs: number): void {
    this.lastHandshakeMs = handshakeMs;
    this.failures = 0;
    this.extraFailures = 0;
    this.growPausedUntil = 0;
    this.pool.release(s);
    if (this.state === 'stopped') {
      s.close('gatewayc is stopping');
      return;
    }
    this.setState('up', 'handshake done');
    this.dispatch();
    this.idleOrClose(s);
  }

  private sessionAvailable(s: SessionHandle): void {
    if (this.pool.isRetiring(s)) {
      s.close(this.state === 'stopped' ? 'gatewayc is stopping' : 'closed by close_connection_exit');
      return;
    }
    this.pool.release(s);
    this.dispatch();
    this.idleOrClose(s);
  }

  private sessionClosed(s: SessionHandle, info: SessionClosed): void {
    this.pool.remove(s);
    if (this.state === 'stopped') {
      this.checkStopped();
      return;
    }
    if (!info.deliberate) {
      this.lastError = info.reason;
      this.lastErrorAt = this.deps.clock.now();
      if (!info.wasReady || info.livedMs < SHORT_LIVED_MS) this.failures++;
      if (!info.wasReady && this.pool.ready > 0) {
        // An extra session could not be opened; the peer is still served by the others.
        // Wait before the next one: out of descriptors, say, retrying at once would spin.
        this.extraFailures++;
        this.growPausedUntil = this.deps.clock.now() + backoffDelay(this.extraFailures, { baseMs: BACKOFF_BASE_MS, maxMs: this.settings.retryMaxMs });
        this.log.warn({ event: 'session.extra-failed', reason: info.reason }, `could not open an extra session: ${info.reason}`);
      } else if (info.wasReady) {
        const last = this.pool.ready === 0;
        this.log[last ? 'warn' : 'info']({ event: 'session.lost', reason: info.reason, last }, `session lost: ${info.reason}`);
      }
    }
    this.ensureService(info.reason);
  }

  /** A session with nothing to do: extra ones close after gatewaycIdleTimeout. */
  private idleOrClose(s: SessionHandle): void {
    if (this.pool.stateOf(s) !== 'idle' || this.pool.total <= 1) return;
    this.pool.armIdleTimer(s, this.settings.idleTimeoutMs, (idle) => {
      if (this.pool.total > 1) idle.close('idle');
    });
  }

  /** Idle sessions close now, busy ones after their request. */
  private retireReady(reason: string): void {
    for (const s of this.pool.list('idle')) s.close(reason);
    for (const s of this.pool.list('busy')) this.pool.retire(s);
  }

  private checkStopped(): void {
    if (this.stopped && this.pool.total === 0) this.stopped.resolve();
  }

  // ---- requests ----

  private dispatch(): void {
    while (this.queue.size > 0 && this.pool.idle > 0) {
      const s = this.pool.take() as SessionHandle;
      this.run(s, this.queue.shift() as PeerRequest);
    }
    this.grow();
  }

  /** Opens more sessions while requests wait, within gatewaycMaxSessions. */
  private grow(): void {
    if (this.growPausedUntil > 0 && this.deps.clock.now() < this.growPausedUntil) return;
    const n = sessionsToOpen({ peerUp: this.state === 'up', waiting: this.queue.size, opening: this.pool.opening, total: this.pool.total, max: this.settings.maxSessions });
    for (let i = 0; i < n; i++) this.openSession();
  }

  private run(s: SessionHandle, req: PeerRequest): void {
    req.markSent();
    const started = this.deps.clock.now();
    const remaining = Math.max(1, this.settings.requestTimeoutMs - (started - req.arrivedAt));
    s.request(req.line, remaining, (outcome) => {
      if ('answer' in outcome) {
        this.latency.add(this.deps.clock.now() - started);
        req.finish(outcome.answer);
        return;
      }
      // The line was written: it is not sent again (at most once).
      this.log.warn({ event: 'request.lost', reason: outcome.lost }, `request lost: ${outcome.lost}`);
      this.lose(req);
    });
  }

  private expire(req: PeerRequest): void {
    // Still queued: it was never sent. Sent requests are timed by their session.
    if (!req.waiting) return;
    this.queueTimeout.hit();
    this.lose(req);
  }

  /** A request that never enters the queue: con_lost, after request() has returned. */
  private loseSoon(req: PeerRequest): RequestHandle {
    req.taken();
    queueMicrotask(() => this.lose(req));
    return req;
  }

  /** Answers con_lost (unless the request is answered or cancelled already). */
  private lose(req: PeerRequest): void {
    if (req.finish(undefined) && req.priority === 'live') this.conLost++;
  }

  private scheduleRetry(delayMs: number): void {
    this.clearRetryTimer();
    this.nextAttemptAt = this.deps.clock.now() + delayMs;
    this.retryTimer = this.deps.clock.after(delayMs, () => {
      this.retryTimer = undefined;
      if (this.state === 'stopped') return;
      this.openSession();
    });
  }

  private clearRetryTimer(): void {
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.nextAttemptAt = undefined;
  }
}
