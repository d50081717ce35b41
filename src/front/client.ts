import type * as net from 'node:net';
import type { Answer, RequestHandle, RequestOptions } from '../peer/request';
import { classifyClientLine } from '../protocol/client-line';
import { LineReader } from '../protocol/framing';
import { writeLine } from '../protocol/write-line';
import type { ByteBudget, BudgetHolder, BudgetWaiter } from '../util/budget';
import { Deque } from '../util/deque';
import type { Clock } from '../util/clock';

/** What a client connection needs from its peer. */
export interface RequestSink {
  request(line: Buffer, opts: RequestOptions): RequestHandle;
  closeSessions(): void;
}

/** What a client connection tells its listener (which logs it, throttled). */
export interface ClientEvents {
  oversize(): void;
  sessionWord(word: string): void;
  evicted(reason: string): void;
}

export interface ClientOptions {
  maxRequestBytes: number;
  budget: ByteBudget;
  clock: Clock;
}

const CON_LOST = Buffer.from('con_lost\n');
const OK = Buffer.from('ok\n');
const REFUSED = Buffer.from('refused\n');

/** Lines read ahead of the one in flight before the client socket is paused. */
const READ_AHEAD = 64;
/**
 * Bytes of complete lines read ahead before the socket is paused. Counting lines alone let
 * one client park 64 × gatewaycMaxRequestBytes (256 MiB by default) in the daemon.
 */
const READ_AHEAD_BYTES = 1024 * 1024;
/**
 * Answer bytes a client has not read before its next request waits: a client that never
 * reads holds at most this plus one answer, however many requests it pipelines.
 */
const UNSENT_HIGH_WATER = 1024 * 1024;
/** A displaced client gets this long to take its con_lost before its connection is cut. */
const FAREWELL_LINGER_MS = 1000;

type Item = { line: Buffer } | { preset: Buffer };

const itemBytes = (item: Item): number => ('line' in item ? item.line.length : item.preset.length);

/**
 * One local client. Its requests are carried one at a time, in its order, so answers come
 * back in its order and a client's writes keep their order on the peer (a `put` then a
 * `get` behave as sent). Different clients run side by side on the peer's sessions.
 *
 * Every byte it makes the daemon hold — request lines read ahead, the one in flight,
 * answers it has not read — is charged to the daemon-wide budget, and it stops reading
 * and dispatching while its own share or the budget is full.
 */
export class ClientConnection implements BudgetWaiter, BudgetHolder {
  private readonly pending = new Deque<Item>();
  private pendingBytes = 0;
  private inFlight: { handle: RequestHandle; bytes: number } | undefined;
  private unsent = 0;
  private stalledAt: number | undefined;
  private closed = false;
  private paused = false;
  /** The daemon stops: answer what was asked, then end; see drain(). */
  private draining: { graceOver: boolean } | undefined;
  private readonly closedSignal: Promise<void>;
  private resolveClosed!: () => void;
  /** Requests answered on this connection (drain: a client that was served may go). */
  private answeredCount = 0;
  private waitingForRoom = false;
  private readonly reader: LineReader;
  /** Connected, or last byte read from the client or flushed to it. */
  private lastActivity: number;
  /** Answer bytes queued in the socket when idleSince() last looked (see there). */
  private lastQueued = -1;

  constructor(
    private readonly sock: net.Socket,
    private readonly sink: RequestSink,
    private readonly opts: ClientOptions,
    private readonly events: ClientEvents,
  ) {
    const max = opts.maxRequestBytes;
    this.reader = new LineReader({
      maxLineBytes: max,
      onLine: (line) => this.enqueue({ line }),
      onOverflow: () => {
        this.events.oversize();
        this.enqueue({ preset: Buffer.from(`error: request longer than gatewaycMaxRequestBytes (${max} bytes)\n`) });
      },
    });
    this.closedSignal = new Promise((r) => (this.resolveClosed = r));
    this.lastActivity = opts.clock.now();
    opts.budget.addHolder(this);
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', () => this.close());
    sock.on('close', () => this.close());
    // A client that half-closes after its last request still gets its answers.
    sock.on('end', () => this.maybeEnd());
  }

  /**
   * The client left, or the daemon drops it: what was not sent to the peer is dropped.
   * `farewell` is written before the end, for a client that is still reading.
   */
  close(farewell?: Buffer): void {
    if (this.closed) return;
    this.closed = true;
    const budget = this.opts.budget;
    // The request in flight is cancelled if still queued at the peer (it is never sent),
    // or its answer is discarded.
    if (this.inFlight) {
      this.inFlight.handle.cancel();
      budget.charge(-this.inFlight.bytes);
      this.inFlight = undefined;
    }
    budget.charge(-(this.pendingBytes + this.reader.pendingBytes + this.unsent));
    this.pendingBytes = 0;
    this.unsent = 0;
    this.pending.drain(() => undefined);
    this.reader.reset();
    budget.cancelWait(this);
    budget.removeHolder(this);
    if (farewell && this.sock.writable) {
      this.sock.end(farewell);
      setTimeout(() => this.sock.destroy(), FAREWELL_LINGER_MS).unref();
    } else {
      this.sock.destroy();
    }
    this.resolveClosed();
  }

  /**
   * The daemon is stopping (restart, upgrade): no request this connection has sent is left
   * unanswered. Lines already read, or completing within the stop, are carried as usual;
   * once nothing is pending the connection is ended — at once if it was served, after
   * `firstLineGraceMs` if it has sent nothing yet (lonnet writes its line right after
   * connecting, so a connection accepted a moment ago is about to ask). Resolves when the
   * connection is ended or closed; the daemon cuts what is left at gatewaycShutdownTimeout.
   */
  drain(firstLineGraceMs: number, clock: Clock): Promise<void> {
    if (!this.closed && !this.draining) {
      this.draining = { graceOver: false };
      clock.after(firstLineGraceMs, () => {
        if (this.draining) this.draining.graceOver = true;
        this.maybeEnd();
      });
      this.maybeEnd();
    }
    return this.closedSignal;
  }

  /**
   * Since when this connection has had nothing to carry (no request read in full, none in
   * flight): its last byte either way, or its connect. Undefined while it has, or while the
   * daemon stops. When every slot is taken, the listener gives the slot of the one idle
   * longest to a newcomer, so connections that sit, dribble or do not read cannot keep
   * lonnet out. A time-based grace for newcomers would let a loop that reconnects keep every
   * slot young; oldest-first already spares a newcomer until its line is read, unless a
   * whole socket's worth of connections arrives in between.
   */
  idleSince(): number | undefined {
    if (this.closed || this.draining || this.inFlight || this.pending.length > 0) return undefined;
    // A large answer is flushed in one callback at its end: a client reading it steadily
    // shows only as the socket's queue changing between two looks.
    if (this.unsent > 0) {
      const queued = queuedBytes(this.sock);
      if (queued !== this.lastQueued) {
        this.lastQueued = queued;
        this.lastActivity = this.opts.clock.now();
      }
    }
    return this.lastActivity;
  }

  /** Gives up the slot: `con_lost` for a half-sent request or the next one, if it reads. */
  displace(): void {
    this.close(this.unsent === 0 ? CON_LOST : undefined);
  }

  // ---- BudgetWaiter / BudgetHolder ----

  resume(): void {
    this.waitingForRoom = false;
    this.pump();
  }

  unsentBytes(): number {
    return this.unsent;
  }

  stalledSince(): number | undefined {
    return this.stalledAt;
  }

  evict(reason: string): void {
    this.events.evicted(reason);
    this.close();
  }

  // ---- reading ----

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastActivity = this.opts.clock.now();
    const partialBefore = this.reader.pendingBytes;
    this.reader.push(chunk);
    this.opts.budget.charge(this.reader.pendingBytes - partialBefore);
    this.pump();
  }

  private enqueue(item: Item): void {
    if (this.closed) return;
    const n = itemBytes(item);
    this.pending.push(item);
    this.pendingBytes += n;
    this.opts.budget.charge(n);
  }

  /** Pauses the socket while the read-ahead or the budget is full; resumes it after. */
  private steerReading(): void {
    const budgetFull = this.opts.budget.full;
    if (!this.paused && (this.pending.length > READ_AHEAD || this.pendingBytes > READ_AHEAD_BYTES || budgetFull)) {
      this.paused = true;
      this.sock.pause();
    } else if (this.paused && !budgetFull && this.pending.length <= READ_AHEAD / 2 && this.pendingBytes <= READ_AHEAD_BYTES / 2) {
      this.paused = false;
      this.sock.resume();
    }
    if (this.paused && budgetFull) this.waitForRoom();
  }

  // ---- requests ----

  /** Hands the next lines over, one request at a time, while there is room for answers. */
  private pump(): void {
    while (!this.closed && !this.inFlight && this.pending.length > 0) {
      if (this.unsent >= UNSENT_HIGH_WATER) break; // resumed by the write callback
      if (this.opts.budget.full) {
        this.waitForRoom();
        break;
      }
      const item = this.pending.shift() as Item;
      const bytes = itemBytes(item);
      this.pendingBytes -= bytes;
      if ('preset' in item) {
        this.opts.budget.charge(-bytes);
        this.write(item.preset);
        continue;
      }
      const what = classifyClientLine(item.line);
      if (what.kind !== 'request') {
        this.opts.budget.charge(-bytes);
        if (what.kind === 'close-sessions') {
          this.sink.closeSessions();
          this.write(OK);
        } else {
          this.events.sessionWord(what.word);
          this.write(REFUSED);
        }
        continue;
      }
      const handle = this.sink.request(item.line, { onAnswer: (answer) => this.answered(answer) });
      this.inFlight = { handle, bytes };
    }
    if (!this.closed) this.steerReading();
    this.maybeEnd();
  }

  private answered(answer: Answer): void {
    const done = this.inFlight;
    this.inFlight = undefined;
    if (done) this.opts.budget.charge(-done.bytes);
    if (this.closed) return;
    if (answer === undefined) this.write(CON_LOST);
    else this.write(answer, true);
    this.pump();
  }

  private waitForRoom(): void {
    if (this.waitingForRoom) return;
    this.waitingForRoom = true;
    this.opts.budget.waitForRoom(this);
  }

  // ---- writing ----

  /** Writes a whole line (`asLine`: `buf` lacks its '\n'), charging it until it is flushed. */
  private write(buf: Buffer, asLine = false): void {
    this.answeredCount++;
    const n = buf.length + (asLine ? 1 : 0);
    this.unsent += n;
    this.opts.budget.charge(n);
    if (this.stalledAt === undefined) this.stalledAt = this.opts.clock.now();
    const flushed = (err?: Error | null): void => {
      if (this.closed) return;
      if (err) {
        // The client is gone (EPIPE): what it asked after this is never sent.
        this.close();
        return;
      }
      this.unsent -= n;
      this.opts.budget.charge(-n);
      this.lastActivity = this.opts.clock.now();
      this.stalledAt = this.unsent > 0 ? this.lastActivity : undefined;
      if (this.unsent < UNSENT_HIGH_WATER && !this.inFlight && this.pending.length > 0) this.pump();
      else this.maybeEnd();
    };
    if (asLine) writeLine(this.sock, buf, flushed);
    else this.sock.write(buf, flushed);
  }

  /** After a half-close, or while draining: end our side once everything it asked is answered. */
  private maybeEnd(): void {
    if (this.closed || this.inFlight || this.pending.length > 0 || this.sock.writableEnded) return;
    if (this.sock.readableEnded) {
      this.sock.end();
      if (this.draining) this.resolveClosed();
      return;
    }
    const d = this.draining;
    if (!d || this.reader.pendingBytes > 0) return; // half a line: it is on its way
    if (this.answeredCount > 0 || d.graceOver) {
      this.sock.end();
      // Whatever it sends now is not read: its next connection goes to the next daemon.
      this.sock.pause();
      this.resolveClosed();
    }
  }
}

/**
 * Bytes not yet taken by the kernel. Node's own counters (writableLength, bytesWritten)
 * count a write whole until it completes, so only libuv's write queue, which Node keeps on
 * the socket's handle, shows a multi-megabyte answer being read; without it, Node's count.
 */
function queuedBytes(sock: net.Socket): number {
  const handle = (sock as unknown as { _handle?: { writeQueueSize?: unknown } })._handle;
  return typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : sock.writableLength;
}
