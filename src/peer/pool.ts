import type { Clock, Timer } from '../util/clock';
import type { SessionHandle } from './session';

/** Where a session of the pool is. Every move between these goes through SessionPool.move. */
export type PooledState = 'opening' | 'idle' | 'busy';

/**
 * How many sessions to open now: one per waiting request not already covered by a
 * session being opened, up to the limit. Only while the peer is up: while it is
 * connecting, the one attempt in progress decides (no storm of parallel attempts at a
 * peer that may be down).
 */
export function sessionsToOpen(p: { peerUp: boolean; waiting: number; opening: number; total: number; max: number }): number {
  if (!p.peerUp) return 0;
  return Math.max(0, Math.min(p.max - p.total, p.waiting - p.opening));
}

/**
 * The sessions of one peer, kept in one set per state (as pgbouncer keeps its server
 * lists): a state change is a move between sets, and every count is a set's size.
 * Besides the sets, the pool owns the idle timers of extra sessions and the mark on busy
 * sessions that are to close after their request (close_connection_exit, reload).
 */
export class SessionPool {
  private readonly sets: Record<PooledState, Set<SessionHandle>> = { opening: new Set(), idle: new Set(), busy: new Set() };
  private readonly where = new Map<SessionHandle, PooledState>();
  private readonly retiring = new Set<SessionHandle>();
  private readonly idleTimers = new Map<SessionHandle, Timer>();

  constructor(private readonly clock: Clock) {}

  get opening(): number {
    return this.sets.opening.size;
  }

  get idle(): number {
    return this.sets.idle.size;
  }

  get busy(): number {
    return this.sets.busy.size;
  }

  /** Sessions whose handshake has finished. */
  get ready(): number {
    return this.sets.idle.size + this.sets.busy.size;
  }

  get total(): number {
    return this.where.size;
  }

  stateOf(s: SessionHandle): PooledState | undefined {
    return this.where.get(s);
  }

  add(s: SessionHandle): void {
    this.move(s, 'opening');
  }

  /** The handshake finished, or an answer was handed over: the session can take work. */
  release(s: SessionHandle): void {
    if (this.where.has(s)) this.move(s, 'idle');
  }

  /** An idle session for the next request, or none. */
  take(): SessionHandle | undefined {
    for (const s of this.sets.idle) {
      this.move(s, 'busy');
      return s;
    }
    return undefined;
  }

  /** The session is gone (closed for whatever reason). */
  remove(s: SessionHandle): void {
    const state = this.where.get(s);
    if (state === undefined) return;
    this.sets[state].delete(s);
    this.where.delete(s);
    this.retiring.delete(s);
    this.cancelIdleTimer(s);
  }

  /** Marks a busy session to close once its request is answered. */
  retire(s: SessionHandle): void {
    if (this.where.get(s) === 'busy') this.retiring.add(s);
  }

  isRetiring(s: SessionHandle): boolean {
    return this.retiring.has(s);
  }

  /** Snapshot of the sessions in one state (safe to close them while iterating). */
  list(state: PooledState): SessionHandle[] {
    return [...this.sets[state]];
  }

  /** Closes `s` after `ms` unless it has taken work (or closed) by then. */
  armIdleTimer(s: SessionHandle, ms: number, onIdle: (s: SessionHandle) => void): void {
    if (this.idleTimers.has(s) || this.where.get(s) !== 'idle') return;
    this.idleTimers.set(
      s,
      this.clock.after(ms, () => {
        this.idleTimers.delete(s);
        if (this.where.get(s) === 'idle') onIdle(s);
      }),
    );
  }

  private cancelIdleTimer(s: SessionHandle): void {
    this.idleTimers.get(s)?.cancel();
    this.idleTimers.delete(s);
  }

  private move(s: SessionHandle, to: PooledState): void {
    const from = this.where.get(s);
    if (from !== undefined) this.sets[from].delete(s);
    this.sets[to].add(s);
    this.where.set(s, to);
    if (to !== 'idle') this.cancelIdleTimer(s);
  }
}
