import type { Logger } from '../log';
import { backoffDelay } from './backoff';
import { Deque } from './queue';
import { Answer, Session, SessionError, SessionKeyMode } from './session';
import { LatencyRing } from './stats';
import { ThrottledWarning } from './throttle';

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
export function keyModeName(k: SessionKeyMode): string {
  return 'error' in k ? 'none' : k.mode;
}

export type PeerState = 'connecting' | 'up' | 'down' | 'stopped';

/** The spool as a peer sees it: its own files, oldest first. */
export interface DelayedSource {
  next(peerId: string, after?: string): string | undefined;
  read(name: string): Promise<Buffer | undefined>;
  remove(name: string): Promise<void>;
}

/** A request in the peer's queue; `done` is called exactly once. */
export class PeerRequest {
  cancelled = false;
  /** Written to a session: from then on only the session's own timeout applies. */
  sent = false;
  timer: NodeJS.Timeout | undefined;
  readonly arrivedAt = Date.now();
  finished = false;
  constructor(
    readonly line: Buffer,
    private readonly cb: (answer: Answer) => void,
  ) {}

  finish(answer: Answer): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.cb(answer);
  }
}

/** Baseline of the reconnect backoff; the cap is gatewaycRetryMax. */
const BACKOFF_BASE_MS = 1000;
/** A session that dies sooner than this after its handshake counts as a failed attempt. */
const SHORT_LIVED_MS = 2000;

/** Warnings that can repeat per request come at most this often per peer. */
const WARN_INTERVAL_MS = 10_000;

const ERROR_TOKENS = /^(refused|rejected|unknown_cmd|error:)/;

/**
 * One remote server: a small pool of sessions, the queue of requests waiting for a free
 * one, the reconnect policy and delayed-message delivery. Everything here runs on the
 * event loop; the only timers are per request (its deadline), per extra idle session and
 * one reconnect timer while the peer is not up — none fire while nothing happens.
 */
export class Peer {
  state: PeerState = 'connecting';
  failures = 0;
  lastError = '';
  lastErrorAt: number | undefined;
  nextAttemptAt: number | undefined;
  lastHandshakeMs: number | undefined;
  upSince: number | undefined;
  requests = 0;
  conLost = 0;
  delivered = 0;
  readonly latency = new LatencyRing();

  /** Called when the peer goes up or down (the daemon refreshes systemd's STATUS=). */
  onStateChange: () => void = () => undefined;

  private sessions = new Set<Session>();
  private queue = new Deque<PeerRequest>();
  private retryTimer: NodeJS.Timeout | undefined;
  private delivering = false;
  private retire = new Set<Session>();
  private stopping = false;
  private readonly queueFull = new ThrottledWarning(WARN_INTERVAL_MS, (more) =>
    this.log.warn({ peer: this.id }, `queue full (gatewaycMaxQueue ${this.settings.maxQueue}): answering con_lost${more}`),
  );
  private readonly queueTimeout = new ThrottledWarning(WARN_INTERVAL_MS, (more) =>
    this.log.warn({ peer: this.id }, `request timed out after ${this.settings.requestTimeoutMs / 1000} s in the queue (peer ${this.state})${more}`),
  );

  constructor(
    readonly id: string,
    public settings: PeerSettings,
    private readonly log: Logger,
    private readonly delayed: DelayedSource | undefined,
  ) {}

  start(): void {
    this.log.debug({ peer: this.id }, `connecting to ${this.settings.address}:${this.settings.port}`);
    this.openSession();
  }

  /** Queues one request line; the callback gets the answer or undefined (`con_lost`). */
  request(line: Buffer, cb: (answer: Answer) => void): PeerRequest {
    const req = new PeerRequest(line, cb);
    this.requests++;
    if (this.state === 'down' || this.state === 'stopped') {
      this.lose(req);
      return req;
    }
    if (this.queue.length >= this.settings.maxQueue) {
      this.queueFull.hit();
      this.lose(req);
      return req;
    }
    req.timer = setTimeout(() => this.expire(req), this.settings.requestTimeoutMs);
    this.queue.push(req);
    this.dispatch();
    return req;
  }


  /** `close_connection_exit`: end every session (busy ones after their request), then reconnect. */
  closeSessions(): void {
    this.log.info({ peer: this.id }, 'closing sessions on request (close_connection_exit)');
    // A snapshot: closing the last session opens a new one, which must not be closed too.
    for (const s of [...this.sessions]) {
      if (s.state === 'busy') this.retire.add(s);
      else s.close('closed by close_connection_exit');
    }
  }

  /** USR1 / `gatewayctl retry`: forget past failures and try now if not up. */
  retry(): void {
    this.failures = 0;
    if (this.state === 'stopped') return;
    if (this.state !== 'up' && !this.hasOpening()) {
      if (this.state === 'down') this.state = 'connecting';
      this.clearRetryTimer();
      this.openSession();
    }
  }

  /** Reload: new settings; a changed address or port reconnects, others apply in place. */
  update(next: PeerSettings): boolean {
    const reconnect =
      next.address !== this.settings.address || next.port !== this.settings.port || next.hostId !== this.settings.hostId || !sameKeyMode(next.keyMode, this.settings.keyMode);
    this.settings = next;
    if (reconnect) {
      this.log.info({ peer: this.id }, `address or key mode changed (now ${next.address}:${next.port}, ${keyModeName(next.keyMode)}): reconnecting`);
      for (const s of [...this.sessions]) {
        if (s.state === 'busy') this.retire.add(s);
        else s.close('address changed');
      }
      this.failures = 0;
      if (this.state === 'down') this.state = 'connecting';
      this.clearRetryTimer();
      if (this.sessions.size === 0) this.openSession();
    }
    return reconnect;
  }

  /** The spool has (new) files for this peer. */
  delayedAvailable(): void {
    if (this.state === 'up') void this.deliverDelayed();
  }

  /**
   * Stop: answer everything queued with con_lost, let in-flight requests finish within
   * `graceMs`, send `exit` on every session and close.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.state === 'stopped') return;
    this.stopping = true;
    this.state = 'stopped';
    this.clearRetryTimer();
    this.queue.drain((r) => this.lose(r));
    const deadline = Date.now() + graceMs;
    while ([...this.sessions].some((s) => s.state === 'busy') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const s of [...this.sessions]) s.close('gatewayc is stopping');
  }

  /** Sessions by state, for status. */
  sessionCounts(): { open: number; busy: number; opening: number } {
    let open = 0;
    let busy = 0;
    let opening = 0;
    for (const s of this.sessions) {
      if (s.state === 'opening') opening++;
      else if (s.state === 'busy') busy++;
      else if (s.state === 'idle') open++;
    }
    return { open: open + busy, busy, opening };
  }

  get queued(): number {
    return this.queue.length;
  }

  private hasOpening(): boolean {
    for (const s of this.sessions) if (s.state === 'opening') return true;
    return false;
  }

  private dispatch(): void {
    if (this.queue.length === 0) return;
    for (const s of this.sessions) {
      if (s.state !== 'idle' || this.retire.has(s)) continue;
      const req = this.nextLive();
      if (!req) return;
      this.run(s, req);
    }
    if (this.queue.length > 0) this.grow();
  }

  private nextLive(): PeerRequest | undefined {
    for (let r = this.queue.shift(); r; r = this.queue.shift()) {
      if (!r.cancelled && !r.finished) return r;
      r.finish(undefined);
    }
    return undefined;
  }

  /** Opens another session while requests wait and the pool is below its limit. */
  private grow(): void {
    if (this.state !== 'up') return; // while connecting, the one attempt in progress decides
    let opening = 0;
    for (const s of this.sessions) if (s.state === 'opening') opening++;
    if (this.sessions.size < this.settings.maxSessions && this.queue.length > opening) this.openSession();
  }

  private run(s: Session, req: PeerRequest): void {
    if (s.idleTimer) {
      clearTimeout(s.idleTimer);
      s.idleTimer = undefined;
    }
    req.sent = true;
    const started = Date.now();
    const remaining = Math.max(1, this.settings.requestTimeoutMs - (started - req.arrivedAt));
    s.request(req.line, remaining).then(
      (answer) => {
        this.latency.add(Date.now() - started);
        req.finish(answer);
        this.afterRequest(s);
      },
      (err: Error) => {
        // The line was written: it is not sent again (at most once).
        this.log.warn({ peer: this.id }, `request lost: ${err.message}`);
        this.lose(req);
        this.afterRequest(s);
      },
    );
  }

  private afterRequest(s: Session): void {
    if (this.retire.has(s)) {
      this.retire.delete(s);
      s.close('closed by close_connection_exit');
      return;
    }
    if (s.state !== 'idle') return;
    if (this.queue.length > 0) {
      const next = this.nextLive();
      if (next) {
        this.run(s, next);
        return;
      }
    }
    this.armIdle(s);
  }

  /** Extra sessions beyond the first close after gatewaycIdleTimeout without work. */
  private armIdle(s: Session): void {
    if (this.sessions.size <= 1 || s.idleTimer) return;
    s.idleTimer = setTimeout(() => {
      s.idleTimer = undefined;
      if (s.state === 'idle' && this.sessions.size > 1) s.close('idle');
    }, this.settings.idleTimeoutMs);
    s.idleTimer.unref();
  }

  private openSession(): void {
    if (this.stopping) return;
    this.nextAttemptAt = undefined;
    const s = new Session({
      peerId: this.id,
      hostId: this.settings.hostId,
      address: this.settings.address,
      port: this.settings.port,
      connectTimeoutMs: this.settings.connectTimeoutMs,
      handshakeTimeoutMs: this.settings.handshakeTimeoutMs,
      maxAnswerBytes: this.settings.maxAnswerBytes,
      keyMode: this.settings.keyMode,
      warn: (m) => this.log.warn({ peer: this.id }, m),
    });
    this.sessions.add(s);
    s.onClose = () => this.sessionClosed(s);
    s.open().then(
      () => this.sessionReady(s),
      (err: Error) => this.sessionFailed(s, err),
    );
  }

  private sessionReady(s: Session): void {
    if (s.state !== 'idle') return;
    this.lastHandshakeMs = s.handshakeMs;
    this.failures = 0;
    if (this.state !== 'up') {
      const was = this.state;
      this.state = 'up';
      this.onStateChange();
      this.upSince = Date.now();
      this.clearRetryTimer();
      this.log.info({ peer: this.id }, `up (handshake ${s.handshakeMs} ms)${was === 'down' ? ' after being down' : ''}`);
    }
    void this.deliverDelayed();
    this.dispatch();
    this.afterRequest(s);
  }

  private sessionFailed(s: Session, err: Error): void {
    this.sessions.delete(s);
    if (this.stopping || s.deliberate) return;
    this.failures++;
    this.lastError = err.message;
    this.lastErrorAt = Date.now();
    if (this.readyCount() > 0) {
      // An extra session could not be opened; the peer is still served by the others.
      this.log.warn({ peer: this.id }, `could not open an extra session: ${err.message}`);
      return;
    }
    this.noSession(err.message);
  }

  private sessionClosed(s: Session): void {
    if (!this.sessions.delete(s) || !s.ready || this.stopping) return;
    this.retire.delete(s);
    if (this.readyCount() > 0 || this.hasOpening()) return;
    if (!s.deliberate) {
      this.lastError = s.closeReason;
      this.lastErrorAt = Date.now();
      if (Date.now() - s.openedAt - s.handshakeMs < SHORT_LIVED_MS) this.failures++;
      this.log.warn({ peer: this.id }, `session lost: ${s.closeReason}`);
    }
    if (this.state === 'up') this.state = 'connecting';
    if (this.failures === 0) this.openSession();
    else this.noSession(s.closeReason);
  }

  /** No usable session: decide between another attempt soon, or *down*. */
  private noSession(reason: string): void {
    if (this.state === 'up') this.state = 'connecting';
    if (this.hasOpening()) return; // an attempt is already under way (e.g. after a reload)
    if (this.failures >= this.settings.maxAttempts && this.state !== 'down') {
      this.state = 'down';
      this.onStateChange();
      this.upSince = undefined;
      this.log.warn({ peer: this.id }, `down after ${this.failures} failed attempts: ${reason}`);
      this.queue.drain((r) => this.lose(r));
    } else if (this.state === 'connecting') {
      this.log.info({ peer: this.id }, `attempt ${this.failures} of ${this.settings.maxAttempts} failed: ${reason}`);
    }
    const delay = this.state === 'down' ? this.settings.retryMaxMs : backoffDelay(this.failures, { baseMs: BACKOFF_BASE_MS, maxMs: this.settings.retryMaxMs });
    this.scheduleRetry(delay);
  }

  private scheduleRetry(delayMs: number): void {
    this.clearRetryTimer();
    this.nextAttemptAt = Date.now() + delayMs;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.openSession();
    }, delayMs);
    this.retryTimer.unref();
  }

  private clearRetryTimer(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.nextAttemptAt = undefined;
  }

  private readyCount(): number {
    let n = 0;
    for (const s of this.sessions) if (s.state === 'idle' || s.state === 'busy') n++;
    return n;
  }

  private expire(req: PeerRequest): void {
    req.timer = undefined;
    if (req.finished || req.sent) return;
    // Still queued: it was never sent. In flight: the session times it out itself.
    req.cancelled = true;
    this.queueTimeout.hit();
    this.lose(req);
  }

  private lose(req: PeerRequest): void {
    if (req.finished) return;
    this.conLost++;
    req.finish(undefined);
  }

  /**
   * Delayed messages go out one at a time, oldest first, ahead of queued live requests.
   * A file is removed only after lond answered; on loss it stays for the next session.
   */
  private async deliverDelayed(): Promise<void> {
    if (this.delivering || !this.delayed) return;
    this.delivering = true;
    try {
      let after: string | undefined;
      while (this.state === 'up') {
        const name = this.delayed.next(this.id, after);
        if (!name) break;
        after = name;
        const line = await this.delayed.read(name);
        if (!line) continue; // vanished or empty: nothing to deliver
        const answer = await new Promise<Answer>((resolve) => {
          const req = new PeerRequest(line, resolve);
          req.timer = setTimeout(() => this.expire(req), this.settings.requestTimeoutMs);
          this.queue.unshift(req);
          this.dispatch();
        });
        if (answer === undefined || answer.length === 0) {
          this.log.warn({ peer: this.id, file: name }, 'delayed message not delivered: kept for the next session');
          break;
        }
        await this.delayed.remove(name);
        this.delivered++;
        const token = answer.subarray(0, 40).toString('latin1');
        if (ERROR_TOKENS.test(token)) {
          this.log.warn({ peer: this.id, file: name }, `delayed message delivered but peer answered ${JSON.stringify(token.split(':', 1)[0])}`);
        } else {
          this.log.info({ peer: this.id, file: name, msgid: 'gatewayc-delayed-delivered' }, 'delayed message delivered');
        }
      }
    } catch (err) {
      this.log.error({ peer: this.id }, `delayed delivery stopped: ${(err as Error).message}`);
    } finally {
      this.delivering = false;
    }
  }
}

export { SessionError };
