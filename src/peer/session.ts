import * as net from 'node:net';
import { Idea } from '../crypto/idea';
import { LineReader, stripCR } from '../protocol/framing';
import { decodeEncAnswer, encodeEncryptedRequest, isEncAnswer, isEncryptRequest, EncAnswerError } from '../protocol/codec';
import { writeLine } from '../protocol/write-line';
import type { ByteBudget } from '../util/budget';
import type { Clock } from '../util/clock';
import { LineDialogue } from './dialogue';
import { HandshakeError, insecureHandshake } from './handshake';
import { InboundRouter, localHandshake, PeerNameCheck, RawChannel, sslHandshake, TlsMaterial } from './keymode';

/** How a session gets its key, decided per peer from gatewaycKeyMode (see keymode/resolve). */
export type SessionKeyMode =
  | { mode: 'insecure' }
  | { mode: 'ssl'; material: TlsMaterial; version: string; peerName: PeerNameCheck }
  | { mode: 'local'; dir: string }
  | { error: string };

export interface SessionOptions {
  peerId: string;
  hostId: string;
  address: string;
  port: number;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  maxAnswerBytes: number;
  keyMode: SessionKeyMode;
  clock: Clock;
  /** Answer bytes being read are charged here; over it, only one session reads on. */
  budget?: ByteBudget;
  warn(message: string): void;
}

/** Why a session ended: the one event a session's owner gets about its end. */
export interface SessionClosed {
  reason: string;
  /** Closed by us on purpose (idle, close_connection_exit, reload, stop): no fault of the peer's. */
  deliberate: boolean;
  /** Whether the handshake had finished. */
  wasReady: boolean;
  /** Milliseconds from the end of the handshake to the close (0 if it never finished). */
  livedMs: number;
  /** The peer said refused/rejected during the handshake (it does not know us). */
  refused: boolean;
}

export interface SessionEvents {
  /** The handshake finished; the session takes requests from now on. */
  ready(handshakeMs: number): void;
  /** An answer has been handed over and the session takes the next request. */
  available(): void;
  /** Exactly once, whatever ended the session. */
  closed(info: SessionClosed): void;
}

/** What became of one request: lond's answer (decoded), or why it was lost. */
export type RequestOutcome = { answer: Buffer } | { lost: string };

/** What the peer's pool needs of a session; a test gives the pool a fake one. */
export interface SessionHandle {
  open(): void;
  /** Only while available; `done` is called once, never before request() returns. */
  request(line: Buffer, timeoutMs: number, done: (outcome: RequestOutcome) => void): void;
  /** Deliberate close: `exit` to lond when it is between requests. */
  close(reason: string): void;
}

export type SessionFactory = (opts: SessionOptions, events: SessionEvents) => SessionHandle;

/** Why a session failed, in words fit for `gatewayctl status` and the journal. */
class SessionError extends Error {
  constructor(
    message: string,
    readonly refused = false,
  ) {
    super(message);
  }
}

const EXIT = Buffer.from('exit\n');
/**
 * Longest line a peer may send during the handshake: challenges, build keys and the
 * init answers are a few dozen bytes; a peer sending megabytes there is not a lond.
 */
const MAX_HANDSHAKE_LINE = 8192;
/** How long lond gets to close its side after our `exit`. */
const EXIT_GRACE_MS = 2000;

type State = 'opening' | 'idle' | 'busy' | 'settling' | 'closed';

/**
 * One TCP session to lond: connect, handshake, then strictly one request at a time. A
 * session that times out or sees a protocol violation is destroyed: a late answer would
 * otherwise be taken for the answer to the next request.
 *
 * After an answer the session takes the next request only once the rest of that read has
 * been parsed, so that a second line lond sent for the same request (in the same read,
 * which includes everything already waiting in the socket) is seen as the violation it
 * is instead of being handed to the next request, which may be another client's.
 */
export class Session implements SessionHandle {
  private state: State = 'opening';
  private readyAt = 0;
  private sock: net.Socket | undefined;
  private cipher: Idea | undefined;
  private readonly reader: LineReader;
  private readonly dialogue: LineDialogue;
  /** Socket bytes go to the line reader, or for a while (TLS key exchange) to a raw phase. */
  private readonly router: InboundRouter;
  /** Answer bytes read and charged to the budget, not yet a whole line. */
  private charged = 0;
  private readonly roomWaiter = { resume: () => this.sock?.resume() };

  constructor(
    private readonly opts: SessionOptions,
    private readonly events: SessionEvents,
  ) {
    this.dialogue = new LineDialogue({
      write: (line) => {
        if (this.sock) writeLine(this.sock, line);
      },
      clock: opts.clock,
      onFault: (err) => this.fail(new SessionError(err.message)),
    });
    this.reader = new LineReader({
      maxLineBytes: MAX_HANDSHAKE_LINE,
      onLine: (line) => this.dialogue.receive(stripCR(line)),
      onOverflow: () =>
        this.fail(
          new SessionError(this.state === 'opening' ? `peer sent a line longer than ${MAX_HANDSHAKE_LINE} bytes during the handshake` : `peer sent a line longer than gatewaycMaxAnswerBytes (${opts.maxAnswerBytes} bytes)`),
        ),
    });
    this.router = new InboundRouter((chunk) => this.reader.push(chunk));
  }

  open(): void {
    void this.handshake();
  }

  request(line: Buffer, timeoutMs: number, done: (outcome: RequestOutcome) => void): void {
    if (this.state !== 'idle') {
      const reason = `session is ${this.state}`;
      process.nextTick(() => done({ lost: reason }));
      return;
    }
    const cipher = this.cipher as Idea;
    const wire = isEncryptRequest(line) ? encodeEncryptedRequest(line.subarray(8), cipher) : line;
    this.state = 'busy';
    this.dialogue.ask(wire, timeoutMs, 'request', (err, answer) => {
      if (err) {
        done({ lost: err.message });
        return;
      }
      const outcome = this.decode(answer, cipher);
      if ('lost' in outcome) {
        this.fail(new SessionError(outcome.lost));
        done(outcome);
        return;
      }
      // The rest of this read is parsed first: a stray line in it closes the session
      // before the session can take another request (which may be another client's).
      // The answer still goes to the one who asked; the session is offered again first,
      // so that a client's next request finds it free.
      this.state = 'settling';
      process.nextTick(() => {
        if (this.state === 'settling') {
          this.state = 'idle';
          this.events.available();
        }
        done(outcome);
      });
    });
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    const sock = this.sock;
    if (sock && (this.state === 'idle' || this.state === 'settling') && sock.writable) {
      // Let `exit` reach lond: destroying now could drop it from the write queue. lond
      // closes its side on exit; the timer covers one that does not.
      sock.end(EXIT);
      this.opts.clock.after(EXIT_GRACE_MS, () => sock.destroy());
      this.sock = undefined;
    }
    this.fail(new SessionError(reason), true);
  }

  private decode(answer: Buffer, cipher: Idea): RequestOutcome {
    if (!isEncAnswer(answer)) return { answer };
    let plain: Buffer;
    try {
      plain = decodeEncAnswer(answer, cipher);
    } catch (err) {
      if (err instanceof EncAnswerError) return { lost: `peer sent a malformed enc: answer: ${err.message}` };
      throw err;
    }
    // A line break inside would reach the client as two answer lines.
    if (plain.includes(10)) return { lost: 'peer sent an enc: answer whose plaintext holds a line break' };
    return { answer: plain };
  }

  private async handshake(): Promise<void> {
    const started = this.opts.clock.now();
    const km = this.opts.keyMode;
    if ('error' in km) {
      // Let the owner finish what it is doing before it hears that the session is gone.
      await Promise.resolve();
      this.fail(new SessionError(km.error));
      return;
    }
    try {
      await this.connect();
      const channel: RawChannel = {
        ask: async (step, line) => (await this.dialogue.askAsync(typeof line === 'string' ? Buffer.from(line, 'latin1') : line, this.opts.handshakeTimeoutMs, `${step} step`)).toString('latin1'),
        warn: (m) => this.opts.warn(m),
        startRaw: (handlers) => this.router.startRaw(handlers, (chunk) => void this.sock?.write(chunk)),
      };
      const key =
        km.mode === 'ssl'
          ? await sslHandshake(channel, { peerId: this.opts.peerId, version: km.version, material: km.material, peerName: km.peerName, timeoutMs: this.opts.handshakeTimeoutMs })
          : km.mode === 'local'
            ? await localHandshake(channel, { dir: km.dir })
            : await insecureHandshake(channel, this.opts.peerId, this.opts.hostId);
      if (this.state !== 'opening') {
        key.fill(0);
        return;
      }
      this.cipher = new Idea(key);
      key.fill(0);
    } catch (err) {
      const e = err instanceof HandshakeError ? new SessionError(`handshake failed (${km.mode} key mode): ${err.message}`, err.refused) : err instanceof SessionError ? err : new SessionError((err as Error).message);
      this.fail(e);
      return;
    }
    this.readyAt = this.opts.clock.now();
    this.reader.setMaxLineBytes(this.opts.maxAnswerBytes);
    this.state = 'idle';
    this.events.ready(this.readyAt - started);
  }

  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const { address, port } = this.opts;
      const sock = net.connect({ host: address, port });
      this.sock = sock;
      sock.setNoDelay(true);
      let connected = false;
      const timer = this.opts.clock.after(this.opts.connectTimeoutMs, () => {
        const e = new SessionError(`connect to ${address}:${port} timed out after ${this.opts.connectTimeoutMs / 1000} s`);
        this.fail(e);
        reject(e);
      });
      const lost = (e: SessionError): void => {
        timer.cancel();
        if (connected && this.state === 'opening') {
          // The handshake step under way fails with this and says which step it was
          // (e.g. "TLS key exchange … failed during the TLS handshake"): that is the
          // more useful reason, so the handshake reports the failure, not this handler.
          this.dialogue.close(e);
          this.router.close(e);
        } else {
          this.fail(e);
        }
        reject(e);
      };
      sock.once('connect', () => {
        connected = true;
        timer.cancel();
        resolve();
      });
      sock.on('data', (chunk: Buffer) => this.onData(chunk));
      sock.on('error', (err: NodeJS.ErrnoException) => lost(new SessionError(describeSocketError(err, address, port))));
      sock.on('close', () => lost(new SessionError(this.state === 'opening' ? 'peer closed the connection during the handshake' : 'peer closed the connection')));
    });
  }

  /**
   * Socket bytes to the line reader, charging the part of an answer read so far to the
   * budget. While the budget is full, a session with half an answer goes on only if it
   * holds the one overrun slot; the others stop reading (lond waits, TCP holds the rest).
   */
  private onData(chunk: Buffer): void {
    if (this.state === 'idle' && !this.router.inRawPhase) {
      // Nobody asked: whatever it is, it would be taken for the answer to the next
      // request, and a peer streaming it would hold memory. Not a line's worth: at once.
      this.fail(new SessionError(`peer sent ${chunk.length} bytes nobody asked for`));
      return;
    }
    this.router.push(chunk);
    const budget = this.opts.budget;
    if (!budget) return;
    const held = this.reader.pendingBytes;
    const delta = held - this.charged;
    this.charged = held;
    if (delta > 0) budget.chargeAnswer(delta);
    else if (delta < 0) {
      // A whole answer left the reader: it stays charged until its client has charged the
      // write of it (the answer goes out on the next tick, this after it), so the budget
      // never looks free for the instant in between.
      process.nextTick(() => budget.chargeAnswer(delta));
    }
    if (held === 0) {
      budget.endOverrun(this);
      return;
    }
    if (budget.full && !budget.mayOverrun(this)) {
      this.sock?.pause();
      budget.waitForSlot(this.roomWaiter);
    }
  }

  private fail(err: Error, deliberate = false): void {
    if (this.state === 'closed') return;
    if (this.opts.budget) {
      this.opts.budget.chargeAnswer(-this.charged);
      this.charged = 0;
      this.opts.budget.cancelWait(this.roomWaiter);
      this.opts.budget.endOverrun(this);
    }
    const wasReady = this.state !== 'opening';
    this.state = 'closed';
    this.cipher = undefined;
    this.router.close(err);
    this.dialogue.close(err);
    this.sock?.destroy();
    this.events.closed({
      reason: err.message,
      deliberate,
      wasReady,
      livedMs: wasReady ? this.opts.clock.now() - this.readyAt : 0,
      refused: err instanceof SessionError && err.refused,
    });
  }
}

function describeSocketError(err: NodeJS.ErrnoException, address: string, port: number): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return `connection refused by ${address}:${port} (is lond running?)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve host name ${address} (${err.code})`;
    case 'ECONNRESET':
      return `connection reset by ${address}:${port}`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${address}:${port} is unreachable (${err.code})`;
    case 'ETIMEDOUT':
      return `connection to ${address}:${port} timed out`;
    case 'EPIPE':
      return `connection to ${address}:${port} broke while sending`;
    default:
      return `${err.code ?? 'error'}: ${err.message}`;
  }
}

export const createSession: SessionFactory = (opts, events) => new Session(opts, events);
