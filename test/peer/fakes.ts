/**
 * A fake clock and fake sessions for driving a Peer without sockets or real time: every
 * timer fires only when a test advances the clock, and every session does only what the
 * test tells it to (finish its handshake, answer, die).
 */
import pino from 'pino';
import type { Clock, Timer } from '../../src/util/clock';
import type { RequestOutcome, SessionEvents, SessionHandle, SessionOptions } from '../../src/peer/session';

export class FakeClock implements Clock {
  private t = 1_000_000;
  private timers: { at: number; fn: () => void; seq: number; live: boolean }[] = [];
  private seq = 0;

  now = (): number => this.t;

  after(ms: number, fn: () => void): Timer {
    const timer = { at: this.t + ms, fn, seq: this.seq++, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }

  /** Timers still to fire. */
  get pending(): number {
    return this.timers.filter((t) => t.live).length;
  }

  /** Moves time forward, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      due.live = false;
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
    this.timers = this.timers.filter((t) => t.live);
  }
}

export class FakeSession implements SessionHandle {
  opened = false;
  closedWith: string | undefined;
  /** Lines sent, in order. */
  readonly sent: string[] = [];
  private pending: ((o: RequestOutcome) => void) | undefined;
  private ready = false;

  constructor(
    readonly opts: SessionOptions,
    private readonly events: SessionEvents,
  ) {}

  open(): void {
    this.opened = true;
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  request(line: Buffer, _timeoutMs: number, done: (o: RequestOutcome) => void): void {
    if (!this.ready || this.pending || this.closed) throw new Error(`request on a session that cannot take one (${this.ready ? 'busy or closed' : 'not ready'})`);
    this.sent.push(line.toString('latin1'));
    this.pending = done;
  }

  close(reason: string): void {
    this.end(reason, true);
  }

  // ---- what the test makes happen ----

  handshakeDone(ms = 5): void {
    if (this.ready || this.closed) throw new Error('handshake of a session that is ready or closed');
    this.ready = true;
    this.events.ready(ms);
  }

  answer(line: string): void {
    const done = this.pending;
    if (!done) throw new Error('no request to answer');
    this.pending = undefined;
    this.events.available();
    done({ answer: Buffer.from(line, 'latin1') });
  }

  /** The peer cut the connection (or the handshake failed); `livedMs` since the handshake. */
  die(reason = 'peer closed the connection', o: { refused?: boolean; livedMs?: number } = {}): void {
    this.end(reason, false, o.refused ?? false, o.livedMs ?? 60_000);
  }

  private end(reason: string, deliberate: boolean, refused = false, livedMs = 60_000): void {
    if (this.closed) return;
    this.closedWith = reason;
    const done = this.pending;
    this.pending = undefined;
    done?.({ lost: reason });
    this.events.closed({ reason, deliberate, wasReady: this.ready, livedMs: this.ready ? livedMs : 0, refused });
  }
}

/** A session factory that keeps every session it made, oldest first. */
export function sessionFactory(): { sessions: FakeSession[]; open: (o: SessionOptions, e: SessionEvents) => FakeSession } {
  const sessions: FakeSession[] = [];
  return {
    sessions,
    open: (o, e) => {
      const s = new FakeSession(o, e);
      sessions.push(s);
      return s;
    },
  };
}

/** Log records as objects, for assertions on their `event` field. */
export function memoryLogger(): { log: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug', base: undefined, timestamp: false }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, records };
}

/** Lets queued microtasks and nextTicks run (answers are always asynchronous). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
