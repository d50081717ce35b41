// The server side of lond's later key modes (PROTOCOL.md, "Later key modes") for the fake
// lond. Like fake-lond.ts it imports nothing from src/: the TLS record framing and the
// switch back to cleartext are written here a second time, independently, so that a bug
// in gatewayc's own record splitter cannot make a test pass.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';

export interface FakeTlsOptions {
  /** The CA client certificates must chain to, and our certificate and key (PEM). */
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
  /** Answer to init:ssl:<version>; default 'ok:ssl'. 'refused' refuses (and closes). */
  answer?: string;
  /** Verify the client's certificate against `ca` and hang up when it fails; default true. */
  requestCert?: boolean;
  /** Send a close_notify after the key line; default true. */
  closeNotify?: boolean;
  /** Keep TLS running until the client's close_notify before going on in the clear; default false. */
  waitForCloseNotify?: boolean;
  /**
   * Hold back our close_notify and send it in the same TCP write as the first cleartext
   * answer: a TLS record arriving after the client already switched to cleartext.
   */
  holdCloseNotify?: boolean;
  /**
   * Unsolicited cleartext sent in the same TCP write as the key record and our
   * close_notify: the byte-boundary case.
   */
  greeting?: string | Buffer;
  /** What goes over TLS instead of `<hex key>\n` (e.g. upper case, CR, spaces, garbage). */
  keyLine?(hexKey: string): string;
  /** The session key to hand out; default 16 random bytes. */
  sessionKey?: Buffer;
  /** Hang up after this many bytes of our TLS output (TLS cut half-way). */
  cutAfterBytes?: number;
  /** Send these bytes instead of speaking TLS (a peer that is not TLS). */
  notTls?: Buffer;
}

export interface FakeLocalOptions {
  /** Answer; default 'ok:local'. 'refused' refuses without reading the file. */
  answer?: string;
  /** Leave the key file in place (lond removes it; gatewayc must not rely on that). */
  keepFile?: boolean;
}

/** Key modes a fake lond offers besides the 2002 exchange. */
export interface FakeKeyModes {
  /** A function gets the lond's id: one certificate per lond of a network. */
  ssl?: FakeTlsOptions | ((londId: string) => FakeTlsOptions);
  local?: FakeLocalOptions | boolean;
}

/** The TCP side the TLS part runs on. */
export interface RawIo {
  write(data: Buffer): void;
  /** Hang up (a lond child exiting). */
  destroy(): void;
}

export interface TlsServerReport {
  /** The client's certificate subject CN, when it sent one. */
  clientCN: string | undefined;
  /** Whether TLS saw the client's close_notify (only when waitForCloseNotify). */
  clientCloseNotify: boolean;
  /** TLS records that arrived after we switched to cleartext and were dropped. */
  droppedRecords: number;
  /** Whether our close_notify went out (as far as we can tell: the TLS socket ended). */
  sentCloseNotify: boolean;
}

// ---------------------------------------------------------------------------------------
// Record framing: 5-byte header (type 0x14-0x17, version 3.x, 16-bit length).

class Records {
  clear = false;
  private head: number[] = [];
  private left = 0;
  private body: Buffer[] = [];
  private keep = false;
  dropped = 0;

  /** Splits `chunk`: whole records go to `sink` (or are dropped when it is null); returns cleartext. */
  split(chunk: Buffer, sink: () => ((rec: Buffer) => void) | null): Buffer {
    if (this.clear) return chunk;
    let i = 0;
    while (i < chunk.length) {
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - i);
        if (this.keep) this.body.push(chunk.subarray(i, i + n));
        this.left -= n;
        i += n;
        if (this.left === 0) this.done(sink);
        continue;
      }
      const byte = chunk[i];
      if (this.head.length === 0 && (byte < 0x14 || byte > 0x17)) {
        this.clear = true;
        return chunk.subarray(i);
      }
      this.head.push(byte);
      i++;
      if (this.head.length < 5) continue;
      this.left = (this.head[3] << 8) | this.head[4];
      this.keep = sink() !== null;
      this.body = this.keep ? [Buffer.from(this.head)] : [];
      this.head = [];
      if (this.left === 0) this.done(sink);
    }
    return Buffer.alloc(0);
  }

  private done(sink: () => ((rec: Buffer) => void) | null): void {
    const s = sink();
    if (this.keep && s) s(Buffer.concat(this.body));
    else this.dropped++;
    this.body = [];
    this.keep = false;
  }
}

// ---------------------------------------------------------------------------------------

/**
 * One connection's TLS part, server side, started right after `ok:ssl` was written: TLS
 * over a Duplex we feed whole records, the key line, the end of TLS (as the switches
 * say), then cleartext. Feed every socket chunk to feed() until `done` settles, then pass
 * chunks through filter() (it drops late TLS records) and answers through wrapAnswer().
 */
export class TlsServerSide {
  readonly done: Promise<{ key: Buffer; leftover: Buffer }>;
  readonly report: TlsServerReport = { clientCN: undefined, clientCloseNotify: false, droppedRecords: 0, sentCloseNotify: false };
  private resolve!: (r: { key: Buffer; leftover: Buffer }) => void;
  private reject!: (e: Error) => void;
  private readonly records = new Records();
  private readonly transport: Duplex;
  private readonly socket: tls.TLSSocket | undefined;
  private readonly key: Buffer;
  private tlsOpen = true;
  private settled = false;
  private written = 0;
  private holding = false;
  private held: Buffer[] = [];
  private pendingClear: Buffer[] = [];
  private heldForAnswer: Buffer | undefined;
  private keySent = false;
  private afterKeyDone = false;

  constructor(private readonly opts: FakeTlsOptions, private readonly io: RawIo) {
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.done.catch(() => undefined);
    this.key = opts.sessionKey ?? crypto.randomBytes(16);
    this.transport = new Duplex({
      read: () => undefined,
      write: (chunk: Buffer, _enc, cb) => {
        this.out(Buffer.from(chunk));
        cb();
      },
      final: (cb) => {
        cb();
        this.report.sentCloseNotify = true;
        this.onOurCloseWritten();
      },
    });
    this.transport.on('error', () => undefined);
    if (opts.notTls) {
      this.socket = undefined;
      return;
    }
    const requestCert = opts.requestCert ?? true;
    const socket = new tls.TLSSocket(this.transport, {
      isServer: true,
      secureContext: tls.createSecureContext({ ca: opts.ca, cert: opts.cert, key: opts.key }),
      requestCert,
      rejectUnauthorized: false,
    });
    this.socket = socket;
    socket.on('secure', () => this.onSecure(socket, requestCert));
    socket.on('end', () => {
      this.report.clientCloseNotify = true;
      if (this.opts.waitForCloseNotify) this.switchToClear();
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => {
      if (!this.settled && this.opts.waitForCloseNotify && this.keySent) this.switchToClear();
    });
  }

  feed(chunk: Buffer): void {
    if (this.opts.notTls) {
      if (!this.settled) {
        this.settled = true;
        this.io.write(this.opts.notTls);
        this.reject(new Error('fake lond: answered TLS with non-TLS bytes (as told)'));
      }
      return;
    }
    if (this.pendingClear.length > 0) {
      this.pendingClear.push(chunk);
      return;
    }
    const clear = this.records.split(chunk, () => (this.tlsOpen && this.socket ? (rec) => this.transport.push(rec) : null));
    if (clear.length > 0) {
      this.pendingClear.push(clear);
      // Cleartext while we wait for the client's close_notify: it is not coming.
      if (this.keySent) this.switchToClear();
    }
  }

  /** True once the cleartext has begun: filter() passes everything through. */
  get inCleartext(): boolean {
    return this.records.clear;
  }

  /** After `done`: drops TLS records still arriving, returns the cleartext. */
  filter(chunk: Buffer): Buffer {
    const before = this.records.dropped;
    const clear = this.records.split(chunk, () => null);
    this.report.droppedRecords += this.records.dropped - before;
    return clear;
  }

  /** After `done`: an answer to write, with a held-back close_notify in front of the first one. */
  wrapAnswer(data: Buffer): Buffer {
    const h = this.heldForAnswer;
    if (!h) return data;
    this.heldForAnswer = undefined;
    return Buffer.concat([h, data]);
  }

  private out(data: Buffer): void {
    if (this.holding) {
      this.held.push(data);
      return;
    }
    const cut = this.opts.cutAfterBytes;
    if (cut !== undefined && this.written + data.length >= cut) {
      this.io.write(data.subarray(0, Math.max(0, cut - this.written)));
      this.written = cut;
      this.fail(new Error('fake lond: cut TLS half-way (as told)'));
      this.io.destroy();
      return;
    }
    this.written += data.length;
    this.io.write(data);
  }

  private onSecure(socket: tls.TLSSocket, requestCert: boolean): void {
    const peer = socket.getPeerCertificate();
    const cn = peer?.subject?.CN as string | string[] | undefined;
    this.report.clientCN = Array.isArray(cn) ? cn[0] : cn;
    const refusal = requestCert ? clientCertProblem(peer, this.opts.ca) : undefined;
    if (refusal) {
      // lond hangs up on a client its CA did not sign.
      this.fail(new Error(`fake lond: client certificate refused: ${refusal}`));
      this.io.destroy();
      return;
    }
    const hex = this.key.toString('hex');
    const line = this.opts.keyLine ? this.opts.keyLine(hex) : `${hex}\n`;
    const closeNotify = this.opts.closeNotify ?? true;
    if (this.opts.greeting !== undefined) this.holding = true;
    socket.write(line, () => {
      this.keySent = true;
      if (this.opts.holdCloseNotify) this.holding = true;
      if (closeNotify) {
        socket.end();
      } else {
        this.afterKey(false);
      }
    });
  }

  // Called once our close_notify has gone to the transport (Node ends it after the alert).
  private onOurCloseWritten(): void {
    if (this.keySent) this.afterKey(true);
  }

  private afterKey(closed: boolean): void {
    if (this.afterKeyDone) return;
    this.afterKeyDone = true;
    if (!closed) this.socket?.destroy(); // abandon TLS: no close_notify
    if (this.opts.greeting !== undefined) {
      const g = typeof this.opts.greeting === 'string' ? Buffer.from(this.opts.greeting, 'latin1') : this.opts.greeting;
      this.holding = false;
      this.io.write(Buffer.concat([...this.held, g]));
      this.held = [];
    } else if (this.opts.holdCloseNotify) {
      this.holding = false;
      this.heldForAnswer = Buffer.concat(this.held);
      this.held = [];
    }
    if (!this.opts.waitForCloseNotify) this.switchToClear();
  }

  private switchToClear(): void {
    if (this.settled) return;
    this.tlsOpen = false;
    this.settled = true;
    this.socket?.destroy();
    const leftover = Buffer.concat(this.pendingClear);
    this.pendingClear = [];
    this.resolve({ key: Buffer.from(this.key), leftover });
  }

  private fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.tlsOpen = false;
    this.socket?.destroy();
    this.reject(err);
  }
}

/**
 * Node leaves `authorized` unset on a server TLSSocket made by hand (only tls.Server sets
 * it), so the client's certificate is checked here: issued and signed by our CA, in its
 * validity period.
 */
function clientCertProblem(peer: tls.PeerCertificate | undefined, caPem: string | Buffer): string | undefined {
  if (!peer || !peer.raw) return 'no certificate';
  const cert = new crypto.X509Certificate(peer.raw);
  const ca = new crypto.X509Certificate(caPem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'not signed by our CA';
  const now = Date.now();
  if (now < Date.parse(cert.validFrom)) return 'not valid yet';
  if (now > Date.parse(cert.validTo)) return 'expired';
  return undefined;
}

// ---------------------------------------------------------------------------------------
// init:local:<file>

/**
 * lond's side of the local key mode: read the key (hex, whitespace tolerated) from the
 * file the client named, remove the file, and hand back the key; null when the file is
 * missing or does not hold a 16-byte hex key.
 */
export async function readLocalKey(file: string, opts: FakeLocalOptions = {}): Promise<Buffer | null> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'latin1');
  } catch {
    return null;
  }
  if (!opts.keepFile) await fs.promises.rm(file, { force: true });
  const hex = text.trim();
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) return null;
  return Buffer.from(hex, 'hex');
}
