// The soak's invariants as a pure state machine. The I/O parts report what happened
// (a request written on a client connection, an answer line, a closed connection, a fault
// starting and ending, a delayed message written or seen by a lond) with a timestamp; the
// checker decides, as each event arrives, whether a promise of gatewayc was broken. It
// does no I/O and reads no clock, so hand-made event sequences test it (test/soak/).
import { Samples } from '../bench/stats';

export interface CheckerConfig {
  /** gatewaycRequestTimeout in ms: no answer may take longer (plus the margin). */
  requestTimeoutMs: number;
  marginMs: number;
  /**
   * A fault touches its peer from its start until a request sent after its end got its own
   * answer (the peer recovered), but at most this long after its end.
   */
  recoverLimitMs: number;
}

export type ViolationKind =
  | 'wrong-answer'
  | 'unexpected-answer'
  | 'late'
  | 'no-answer'
  | 'con-lost-untouched'
  | 'not-recovered'
  | 'cut'
  | 'extra-answer'
  | 'connect-failed'
  | 'delayed-lost'
  | 'delayed-unknown'
  | 'delayed-wrong-peer'
  | 'sent-twice'
  | 'plaintext'
  | 'sessions'
  | 'malformed'
  | 'daemon-exit';

export interface Violation {
  kind: ViolationKind;
  /** The request id (token), delayed message token, or what else names the case. */
  id: string;
  peer: string;
  /** Milliseconds since the start of the run. */
  atMs: number;
  detail: string;
}

/** What the answer must be: `head` exactly, or `head` followed by filler up to `length` bytes. */
export interface Expect {
  head: Buffer;
  length: number;
}

export type AnswerKind = 'ok' | 'con_lost' | 'cut' | 'wrong' | 'unexpected' | 'none';

/** Fault kinds whose effect may close a client's connection without an answer. */
const CUTTING = new Set(['daemon-kill', 'daemon-exit', 'reload-remove']);
/** Fault kinds during which a peer socket may be missing or refuse connections. */
const UNREACHABLE = CUTTING;

interface Pending {
  id: string;
  peer: string;
  sentAt: number;
  expect: Expect;
  lateFlagged: boolean;
}

interface Conn {
  peer: string;
  queue: Pending[];
  head: number;
  /** When the previous answer arrived: requests of one connection are carried one after the other. */
  lastAnswerAt: number;
}

interface PeerWindow {
  fault: number;
  kind: string;
  start: number;
  end: number;
  recoveredAt: number;
  reportedUnrecovered: boolean;
}

interface DelayedRecord {
  peer: string;
  writtenAt: number;
  deliveries: number;
}

const CON_LOST = Buffer.from('con_lost');
const OK_TOKEN = /^ok:([a-z][0-9a-z]*)/;

export class Checker {
  readonly violations: Violation[] = [];
  onViolation: (v: Violation) => void = () => undefined;
  readonly answers: Record<AnswerKind, number> = { ok: 0, con_lost: 0, cut: 0, wrong: 0, unexpected: 0, none: 0 };
  requests = 0;
  conLostExcused = 0;
  cutExcused = 0;
  /** Excused con_lost and cut answers by the kind of fault that excused them. */
  readonly conLostBy: Record<string, number> = {};
  readonly cutBy: Record<string, number> = {};
  connectFailures = 0;
  connectFailuresExcused = 0;
  /** Answers later than the timeout counted from the write, but in time counted from their turn (pipelined). */
  pipelinedOverTimeout = 0;
  /** Latency (ms, from the request's turn to its answer) of correct answers on untouched peers, and of all correct answers. */
  readonly latencyUntouched = new Samples();
  readonly latencyAll = new Samples();
  delayedWritten = 0;
  delayedDelivered = 0;
  delayedDuplicates = 0;
  delayedLost = 0;
  /** Milliseconds from writing a delayed message to its first delivery. */
  readonly delayedLatency = new Samples();
  private readonly conns = new Map<string, Conn>();
  private readonly windows = new Map<string, PeerWindow[]>();
  private readonly faults = new Map<number, PeerWindow[]>();
  private readonly delayed = new Map<string, DelayedRecord>();
  private nextFault = 1;

  constructor(readonly cfg: CheckerConfig) {}

  get limitMs(): number {
    return this.cfg.requestTimeoutMs + this.cfg.marginMs;
  }

  violation(kind: ViolationKind, id: string, peer: string, atMs: number, detail: string): void {
    const v = { kind, id, peer, atMs, detail };
    this.violations.push(v);
    this.onViolation(v);
  }

  // Faults

  /** A fault touching `peers` begins (at `t`, or earlier: `startAt` for one noticed late). */
  openFault(kind: string, peers: readonly string[], t: number, startAt = t): number {
    const id = this.nextFault++;
    const list: PeerWindow[] = [];
    for (const peer of new Set(peers)) {
      const w: PeerWindow = { fault: id, kind, start: startAt, end: Infinity, recoveredAt: Infinity, reportedUnrecovered: false };
      list.push(w);
      let ws = this.windows.get(peer);
      if (!ws) this.windows.set(peer, (ws = []));
      ws.push(w);
    }
    this.faults.set(id, list);
    return id;
  }

  closeFault(id: number, t: number): void {
    for (const w of this.faults.get(id) ?? []) if (w.end === Infinity) w.end = t;
    this.faults.delete(id);
  }

  /** The window that excuses trouble of a request on `peer` between `from` and `to`, if any. */
  touching(peer: string, from: number, to: number, kinds?: ReadonlySet<string>): PeerWindow | undefined {
    for (const w of this.windows.get(peer) ?? []) {
      if (kinds && !kinds.has(w.kind)) continue;
      if (w.start <= to && from < Math.min(w.recoveredAt, w.end + this.cfg.recoverLimitMs)) return w;
    }
    return undefined;
  }

  /** A fault that ended long ago on this peer and was never followed by a good answer. */
  private unrecovered(peer: string, sentAt: number): PeerWindow | undefined {
    for (const w of this.windows.get(peer) ?? []) {
      if (w.recoveredAt === Infinity && Number.isFinite(w.end) && w.end + this.cfg.recoverLimitMs <= sentAt) return w;
    }
    return undefined;
  }

  private recovered(peer: string, sentAt: number): void {
    for (const w of this.windows.get(peer) ?? []) {
      if (w.recoveredAt === Infinity && w.end < sentAt) w.recoveredAt = sentAt;
    }
  }

  // Live requests

  /** A request line was written on client connection `conn` (to `peer`). */
  sent(conn: string, peer: string, id: string, expect: Expect, t: number): void {
    let c = this.conns.get(conn);
    if (!c) this.conns.set(conn, (c = { peer, queue: [], head: 0, lastAnswerAt: -Infinity }));
    c.queue.push({ id, peer, sentAt: t, expect, lateFlagged: false });
    this.requests++;
  }

  /** An answer line (without its '\n') arrived on `conn`. */
  line(conn: string, line: Buffer, t: number): void {
    const c = this.conns.get(conn);
    const r = c ? c.queue[c.head] : undefined;
    if (!c || !r) {
      this.violation('extra-answer', conn, c?.peer ?? '?', t, `an answer line nobody asked for: ${preview(line)}`);
      return;
    }
    c.queue[c.head++] = undefined as unknown as Pending;
    if (c.head === c.queue.length) {
      c.queue.length = 0;
      c.head = 0;
    }
    const due = Math.max(r.sentAt, c.lastAnswerAt);
    c.lastAnswerAt = t;
    if (t - due > this.limitMs && !r.lateFlagged) {
      r.lateFlagged = true;
      this.violation('late', r.id, r.peer, t, `answered ${((t - due) / 1000).toFixed(1)} s after its turn (limit ${this.limitMs / 1000} s)`);
    } else if (t - r.sentAt > this.limitMs) {
      this.pipelinedOverTimeout++;
    }
    if (matches(line, r.expect)) {
      this.answers.ok++;
      this.latencyAll.push(t - due);
      if (!this.touching(r.peer, r.sentAt, t)) this.latencyUntouched.push(t - due);
      this.recovered(r.peer, r.sentAt);
      return;
    }
    if (line.equals(CON_LOST)) {
      this.answers.con_lost++;
      const by = this.touching(r.peer, r.sentAt, t);
      if (by) {
        this.conLostExcused++;
        this.conLostBy[by.kind] = (this.conLostBy[by.kind] ?? 0) + 1;
        return;
      }
      const w = this.unrecovered(r.peer, r.sentAt);
      if (w) {
        const first = !w.reportedUnrecovered;
        w.reportedUnrecovered = true;
        this.violation('not-recovered', r.id, r.peer, t, `con_lost ${((r.sentAt - w.end) / 1000).toFixed(1)} s after a ${w.kind} fault ended, with no good answer since${first ? '' : ' (again)'}`);
      } else {
        this.violation('con-lost-untouched', r.id, r.peer, t, 'con_lost while no fault touched this peer or the daemon');
      }
      return;
    }
    const other = OK_TOKEN.exec(line.subarray(0, 64).toString('latin1'));
    if (other && other[1] !== r.id) {
      this.answers.wrong++;
      this.violation('wrong-answer', r.id, r.peer, t, `got the answer of request ${other[1]} (${line.length} bytes)`);
      return;
    }
    this.answers.unexpected++;
    this.violation('unexpected-answer', r.id, r.peer, t, `got ${preview(line)} (${line.length} bytes, expected ${r.expect.length})`);
  }

  /**
   * The connection closed. Requests still waiting were cut — or, when `abandoned`, the
   * client gave up on them after waiting well past the limit.
   */
  closed(conn: string, t: number, abandoned = false): void {
    const c = this.conns.get(conn);
    if (!c) return;
    this.conns.delete(conn);
    for (let i = c.head; i < c.queue.length; i++) {
      const r = c.queue[i] as Pending;
      if (abandoned) {
        this.answers.none++;
        if (!r.lateFlagged) this.violation('no-answer', r.id, r.peer, t, 'no answer; the client gave up');
        continue;
      }
      this.answers.cut++;
      const by = this.touching(r.peer, r.sentAt, t, CUTTING);
      if (by) {
        this.cutExcused++;
        this.cutBy[by.kind] = (this.cutBy[by.kind] ?? 0) + 1;
      } else {
        this.violation('cut', r.id, r.peer, t, 'the connection closed without an answer, and the daemon was neither killed nor told to remove the peer');
      }
    }
  }

  /** A client could not connect to a peer socket the daemon should be serving. */
  connectFailed(peer: string, id: string, t: number, why: string): void {
    this.connectFailures++;
    if (this.touching(peer, t, t, UNREACHABLE)) {
      this.connectFailuresExcused++;
      return;
    }
    this.violation('connect-failed', id, peer, t, `cannot connect to the peer socket: ${why}`);
  }

  /** Periodically: a request waiting past the limit is reported now, not when (if) it is answered. */
  tick(t: number): void {
    for (const c of this.conns.values()) {
      const r = c.queue[c.head];
      if (!r || r.lateFlagged) continue;
      const due = Math.max(r.sentAt, c.lastAnswerAt);
      if (t - due > this.limitMs) {
        r.lateFlagged = true;
        this.violation('late', r.id, r.peer, t, `no answer ${((t - due) / 1000).toFixed(1)} s after its turn (limit ${this.limitMs / 1000} s)`);
      }
    }
  }

  /** Requests still waiting for an answer. */
  get outstanding(): number {
    let n = 0;
    for (const c of this.conns.values()) n += c.queue.length - c.head;
    return n;
  }

  // Delayed messages

  delayedWrittenAt(token: string, peer: string, t: number): void {
    this.delayed.set(token, { peer, writtenAt: t, deliveries: 0 });
    this.delayedWritten++;
  }

  delayedDeliveredAt(token: string, peer: string, t: number): void {
    const d = this.delayed.get(token);
    if (!d) {
      this.violation('delayed-unknown', token, peer, t, 'a lond received a delayed message that was never written');
      return;
    }
    if (d.peer !== peer) this.violation('delayed-wrong-peer', token, peer, t, `written for ${d.peer}, delivered to ${peer}`);
    d.deliveries++;
    if (d.deliveries === 1) {
      this.delayedDelivered++;
      this.delayedLatency.push(t - d.writtenAt);
    } else {
      this.delayedDuplicates++;
    }
  }

  /** Delayed messages written and not delivered yet. */
  get delayedWaiting(): number {
    return this.delayedWritten - this.delayedDelivered;
  }

  // The end

  /** Everything still open is final now: unanswered requests, undelivered delayed messages. */
  finish(t: number): void {
    for (const [id, c] of this.conns) {
      for (let i = c.head; i < c.queue.length; i++) {
        const r = c.queue[i] as Pending;
        this.answers.none++;
        if (!r.lateFlagged) this.violation('no-answer', r.id, r.peer, t, 'never answered');
      }
      this.conns.delete(id);
    }
    for (const [token, d] of this.delayed) {
      if (d.deliveries > 0) continue;
      this.delayedLost++;
      this.violation('delayed-lost', token, d.peer, t, `written ${((t - d.writtenAt) / 1000).toFixed(1)} s before the end, never delivered`);
    }
  }

  violationsByKind(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const v of this.violations) out[v.kind] = (out[v.kind] ?? 0) + 1;
    return out;
  }
}

export function matches(line: Buffer, e: Expect): boolean {
  if (line.length !== e.length) return false;
  if (e.head.length === e.length) return line.equals(e.head);
  return line.subarray(0, e.head.length).equals(e.head);
}

function preview(line: Buffer): string {
  const s = line.subarray(0, 48).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
  return JSON.stringify(line.length > 48 ? `${s}...` : s);
}
