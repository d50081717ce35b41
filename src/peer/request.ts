import type { Timer } from '../util/clock';
import { Deque } from '../util/deque';

/** lond's answer to a request, or undefined when it could not be carried (`con_lost`). */
export type Answer = Buffer | undefined;

/** Delayed messages go ahead of live requests (PROTOCOL.md: "delayed messages go first"). */
export type Priority = 'live' | 'delayed';

export interface RequestOptions {
  priority?: Priority;
  /** Called once, never before request() has returned; not at all after cancel(). */
  onAnswer(answer: Answer): void;
}

/** What the asker holds of a request: the way to say it no longer wants the answer. */
export interface RequestHandle {
  /** Still queued: it is never sent. Already sent: the answer is dropped when it comes. */
  cancel(): void;
}

type RequestState = 'waiting' | 'out' | 'done';

/** A request inside a peer; only the peer and its queue see this side of it. */
export class PeerRequest implements RequestHandle {
  private state: RequestState = 'waiting';
  deadline: Timer | undefined;

  constructor(
    readonly line: Buffer,
    readonly priority: Priority,
    readonly arrivedAt: number,
    private readonly onAnswer: (answer: Answer) => void,
    /** It left the queue other than by being taken from it (cancelled, or answered con_lost). */
    private readonly onLeaveQueue: (req: PeerRequest) => void,
  ) {}

  /** Still in the queue. */
  get waiting(): boolean {
    return this.state === 'waiting';
  }

  get done(): boolean {
    return this.state === 'done';
  }

  /** Taken from the queue (to be sent, or to be answered con_lost). */
  taken(): void {
    if (this.state === 'waiting') this.state = 'out';
  }

  /** Written to a session: from now on only the session's own deadline applies. */
  markSent(): void {
    this.taken();
    this.deadline?.cancel();
    this.deadline = undefined;
  }

  cancel(): void {
    this.end();
  }

  /** Hands over the answer unless the request is done already; says whether it did. */
  finish(answer: Answer): boolean {
    if (!this.end()) return false;
    this.onAnswer(answer);
    return true;
  }

  private end(): boolean {
    if (this.state === 'done') return false;
    const wasWaiting = this.state === 'waiting';
    this.state = 'done';
    this.deadline?.cancel();
    if (wasWaiting) this.onLeaveQueue(this);
    return true;
  }
}

/**
 * Requests waiting for a free session: delayed ones first, then live ones, each in
 * arrival order. A cancelled request stays in place as a tombstone until dispatch reaches
 * it (removal from the middle of a deque is O(n)); `size` counts only live entries, and
 * the deques are rebuilt when tombstones outnumber them.
 */
export class RequestQueue {
  private readonly delayed = new Deque<PeerRequest>();
  private readonly live = new Deque<PeerRequest>();
  private waiting = 0;
  private waitingLive = 0;

  /** Requests that still wait (cancelled ones not counted). */
  get size(): number {
    return this.waiting;
  }

  /** Live requests that still wait: what gatewaycMaxQueue limits. */
  get liveSize(): number {
    return this.waitingLive;
  }

  push(req: PeerRequest): void {
    (req.priority === 'delayed' ? this.delayed : this.live).push(req);
    this.waiting++;
    if (req.priority === 'live') this.waitingLive++;
  }

  /** The next request still waiting, delayed ones first. */
  shift(): PeerRequest | undefined {
    for (const q of [this.delayed, this.live]) {
      for (let r = q.shift(); r; r = q.shift()) {
        if (!r.waiting) continue;
        this.forget(r);
        r.taken();
        return r;
      }
    }
    return undefined;
  }

  /** A waiting request left the queue (cancelled, or lost): it no longer counts. */
  left(req: PeerRequest): void {
    this.forget(req);
    const tombstones = this.delayed.length + this.live.length - this.waiting;
    if (tombstones > 64 && tombstones > this.waiting) {
      for (const q of [this.delayed, this.live]) q.retain((r) => r.waiting);
    }
  }

  /** Empties the queue, handing each waiting request to `fn` in order. */
  drain(fn: (req: PeerRequest) => void): void {
    for (let r = this.shift(); r; r = this.shift()) fn(r);
  }

  private forget(req: PeerRequest): void {
    this.waiting--;
    if (req.priority === 'live') this.waitingLive--;
  }
}
