import * as net from 'node:net';
import { Idea } from '../crypto/idea';
import { LineReader, stripCR } from '../protocol/framing';
import { decodeEncAnswer, encodeEncryptedRequest, isEncAnswer, isEncryptRequest, EncAnswerError } from '../protocol/codec';
import { writeLine } from '../protocol/write-line';
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
  warn(message: string): void;
}

export type SessionState = 'opening' | 'idle' | 'busy' | 'closed';

/** Why a session failed, in words fit for `gatewayctl status` and the journal. */
export class SessionError extends Error {
  constructor(message: string, readonly refused = false) {
    super(message);
  }
}

/** Outcome of one request: lond's answer (decoded), or undefined when it was lost. */
export type Answer = Buffer | undefined;

const EXIT = Buffer.from('exit\n');

interface Waiter {
  resolve(line: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One TCP session to lond: connect, handshake, then strictly one request at a time
 * (lond serves a connection request/response). A session that times out or sees a
 * protocol violation is destroyed: a late answer would otherwise be taken as the answer
 * to the next request.
 */
export class Session {
  state: SessionState = 'opening';
  /** Milliseconds the handshake took (connect included), once open. */
  handshakeMs = 0;
  readonly openedAt = Date.now();
  idleTimer: NodeJS.Timeout | undefined;
  closeReason = '';
  /** Set once the handshake succeeded. */
  ready = false;
  /** Closed on purpose (idle, close_connection_exit, reload): not a failure of the peer. */
  deliberate = false;
  onClose: (s: Session) => void = () => undefined;

  private sock: net.Socket | undefined;
  private cipher: Idea | undefined;
  private waiter: Waiter | undefined;
  private reader: LineReader;
  /** Socket bytes go to the line reader, or for a while (TLS key exchange) to a raw phase. */
  private router: InboundRouter;

  constructor(private readonly opts: SessionOptions) {
    this.reader = new LineReader({
      maxLineBytes: opts.maxAnswerBytes,
      onLine: (line) => this.onLine(line),
      onOverflow: () => this.fail(new SessionError(`peer sent a line longer than gatewaycMaxAnswerBytes (${opts.maxAnswerBytes} bytes)`)),
    });
    this.router = new InboundRouter((chunk) => this.reader.push(chunk));
  }

  /** Connects and runs the handshake; resolves once requests can be sent. */
  async open(): Promise<void> {
    const started = Date.now();
    const km = this.opts.keyMode;
    if ('error' in km) {
      const e = new SessionError(km.error);
      this.fail(e);
      throw e;
    }
    await this.connect();
    const channel: RawChannel = {
      ask: (step, line) => this.exchange(typeof line === 'string' ? Buffer.from(line, 'latin1') : line, this.opts.handshakeTimeoutMs, `${step} step`).then((b) => b.toString('latin1')),
      warn: (m) => this.opts.warn(m),
      startRaw: (handlers) => this.router.startRaw(handlers, (chunk) => void this.sock?.write(chunk)),
    };
    try {
      const key =
        km.mode === 'ssl'
          ? await sslHandshake(channel, { peerId: this.opts.peerId, version: km.version, material: km.material, peerName: km.peerName, timeoutMs: this.opts.handshakeTimeoutMs })
          : km.mode === 'local'
            ? await localHandshake(channel, { dir: km.dir })
            : await insecureHandshake(channel, this.opts.peerId, this.opts.hostId);
      this.cipher = new Idea(key);
      key.fill(0);
    } catch (err) {
      const e = err instanceof HandshakeError ? new SessionError(`handshake failed (${km.mode} key mode): ${err.message}`, err.refused) : err;
      this.fail(e as Error);
      throw e;
    }
    if (this.state === 'closed') throw new SessionError(this.closeReason || 'session closed during handshake');
    this.handshakeMs = Date.now() - started;
    this.ready = true;
    this.state = 'idle';
  }

  /**
   * Carries one request. `encrypt:` requests are encrypted with this session's key and
   * `enc:` answers decrypted. Rejects (and closes the session) on timeout or loss.
   */
  async request(line: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.state !== 'idle') throw new SessionError(`session is ${this.state}`);
    const cipher = this.cipher as Idea;
    const wire = isEncryptRequest(line) ? encodeEncryptedRequest(line.subarray(8), cipher) : line;
    this.state = 'busy';
    const answer = await this.exchange(wire, timeoutMs, 'request');
    if (this.state === 'busy') this.state = 'idle';
    if (isEncAnswer(answer)) {
      try {
        return decodeEncAnswer(answer, cipher);
      } catch (err) {
        if (err instanceof EncAnswerError) throw new SessionError(`peer sent a malformed enc: answer: ${err.message}`);
        throw err;
      }
    }
    return answer;
  }

  /** Polite close: lond's children end on `exit`. */
  close(reason: string, deliberate = true): void {
    if (this.state === 'closed') return;
    this.deliberate = deliberate;
    const sock = this.sock;
    if (sock && this.state === 'idle' && sock.writable) {
      // Let `exit` reach lond: destroying now could drop it from the write queue. lond
      // closes its side on exit; the timer covers one that does not.
      sock.end(EXIT);
      setTimeout(() => sock.destroy(), 2000).unref();
      this.sock = undefined;
    }
    this.fail(new SessionError(reason));
  }

  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: this.opts.address, port: this.opts.port });
      this.sock = sock;
      sock.setNoDelay(true);
      const timer = setTimeout(() => {
        const e = new SessionError(`connect to ${this.opts.address}:${this.opts.port} timed out after ${this.opts.connectTimeoutMs / 1000} s`);
        this.fail(e);
        reject(e);
      }, this.opts.connectTimeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      sock.on('data', (chunk: Buffer) => this.router.push(chunk));
      sock.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const e = new SessionError(describeSocketError(err, this.opts.address, this.opts.port));
        this.fail(e);
        reject(e);
      });
      sock.on('close', () => {
        clearTimeout(timer);
        const e = new SessionError(this.state === 'opening' ? 'peer closed the connection during the handshake' : 'peer closed the connection');
        this.fail(e);
        reject(e);
      });
    });
  }

  private exchange(line: Buffer, timeoutMs: number, what: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.state === 'closed' || !this.sock) {
        reject(new SessionError(this.closeReason || 'session closed'));
        return;
      }
      const timer = setTimeout(() => {
        this.fail(new SessionError(`no answer to the ${what} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
      writeLine(this.sock, line);
    });
  }

  private onLine(raw: Buffer): void {
    const w = this.waiter;
    if (!w) {
      this.fail(new SessionError('peer sent a line nobody asked for'));
      return;
    }
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.resolve(stripCR(raw));
  }

  private fail(err: Error): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeReason = err.message;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.cipher = undefined;
    this.router.close(err);
    const w = this.waiter;
    this.waiter = undefined;
    if (w) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.sock?.destroy();
    this.onClose(this);
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
