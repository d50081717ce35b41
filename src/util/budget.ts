import type { Clock, Timer } from './clock';

/** Something that waits for room in the budget. */
export interface BudgetWaiter {
  resume(): void;
}

/** A client holding answer bytes it has not read: the candidates for eviction. */
export interface BudgetHolder {
  /** Answer bytes written to it that it has not taken yet. */
  unsentBytes(): number;
  /** Since when it has taken none of them (undefined: it holds none, or it is reading). */
  stalledSince(): number | undefined;
  evict(reason: string): void;
}

export interface BudgetOptions {
  limit: number;
  clock: Clock;
  /** A holder that takes none of its answer bytes this long while the budget is full goes. */
  stallMs: number;
  onEvict?(bytes: number): void;
}

/**
 * The daemon-wide budget of request and answer bytes held in memory: request lines read
 * from clients and not yet answered, answer bytes waiting for a client to read them, and
 * answers being read from lond. Over the limit, clients stop reading and dispatching
 * (waitForRoom), and sessions stop reading from lond — all but one: one session at a time
 * may overrun the budget to finish the answer it is reading, so that answers always
 * complete and the budget can drain (no deadlock of half-read answers). When it is done,
 * the next waiting session takes the slot. A client that holds answer bytes and reads
 * none of them for `stallMs` while the budget is full is disconnected, largest first:
 * one client that never reads cannot stall everyone.
 *
 * So the bytes held never exceed limit + gatewaycMaxAnswerBytes (+ one socket read, 64
 * KiB, per connection): the number the README states.
 */
export class ByteBudget {
  private used = 0;
  /** The part of `used` that is half-read answers (sessions). */
  private partial = 0;
  private readonly roomWaiters = new Set<BudgetWaiter>();
  private readonly slotWaiters = new Set<BudgetWaiter>();
  private readonly holders = new Set<BudgetHolder>();
  private overrunBy: unknown;
  private sweepTimer: Timer | undefined;

  constructor(private readonly opts: BudgetOptions) {}

  get limit(): number {
    return this.opts.limit;
  }

  get bytes(): number {
    return this.used;
  }

  get full(): boolean {
    return this.used >= this.opts.limit;
  }

  charge(n: number): void {
    if (n === 0) return;
    this.used += n;
    if (n < 0 && !this.full) this.wakeAll();
    else if (n > 0 && this.full) this.armSweep();
  }

  /** A session's half-read answer grew or shrank by `n` bytes. */
  chargeAnswer(n: number): void {
    this.partial += n;
    this.charge(n);
  }

  /** While full: whether `who` may go on reading the answer it has begun (one at a time). */
  mayOverrun(who: unknown): boolean {
    if (this.overrunBy === undefined) this.overrunBy = who;
    return this.overrunBy === who;
  }

  /**
   * `who` finished (or abandoned) its answer. The slot goes to the next waiting session
   * only if half-read answers alone fill the budget: then nothing else could drain it. In
   * any other case clients reading (or being disconnected) make room first, which keeps
   * the total within limit + one answer.
   */
  endOverrun(who: unknown): void {
    if (this.overrunBy !== who) return;
    this.overrunBy = undefined;
    if (this.partial < this.opts.limit && this.full) return;
    const next = this.slotWaiters.values().next();
    if (!next.done) {
      this.slotWaiters.delete(next.value);
      next.value.resume();
    }
  }

  /** A client: resume() once the budget is below its limit again. */
  waitForRoom(w: BudgetWaiter): void {
    this.roomWaiters.add(w);
  }

  /** A session with half an answer: resume() when the overrun slot is free or there is room. */
  waitForSlot(w: BudgetWaiter): void {
    this.slotWaiters.add(w);
  }

  cancelWait(w: BudgetWaiter): void {
    this.roomWaiters.delete(w);
    this.slotWaiters.delete(w);
  }

  addHolder(h: BudgetHolder): void {
    this.holders.add(h);
  }

  removeHolder(h: BudgetHolder): void {
    this.holders.delete(h);
  }

  private wakeAll(): void {
    for (const set of [this.slotWaiters, this.roomWaiters]) {
      if (set.size === 0) continue;
      const waiting = [...set];
      set.clear();
      for (const w of waiting) w.resume();
    }
  }

  private armSweep(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = this.opts.clock.after(Math.min(1000, this.opts.stallMs), () => {
      this.sweepTimer = undefined;
      if (!this.full) return;
      this.evictStalled();
      if (this.full) this.armSweep();
    });
  }

  private evictStalled(): void {
    const now = this.opts.clock.now();
    const stalled = [...this.holders]
      .filter((h) => {
        const since = h.stalledSince();
        return since !== undefined && now - since >= this.opts.stallMs && h.unsentBytes() > 0;
      })
      .sort((a, b) => b.unsentBytes() - a.unsentBytes());
    for (const h of stalled) {
      if (!this.full) return;
      const bytes = h.unsentBytes();
      h.evict(`it read none of its ${bytes} bytes of answers for ${this.opts.stallMs / 1000} s while gatewaycMaxBufferedBytes was used up`);
      this.opts.onEvict?.(bytes);
    }
  }
}
