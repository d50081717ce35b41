import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import type { TlsMaterial } from '../../pki/material';
import { RecordSplitter } from './records';

export type { TlsMaterial };

/**
 * Whom the peer's certificate must name (gatewaycTlsPeerName). Our CA's signature says a
 * certificate belongs to some host of the network; only its name says which one. Without
 * this check any host holding a network certificate could pose as any peer.
 */
export interface PeerNameCheck {
  /** Names the certificate may carry as CN or DNS/IP subject alternative name (any case). */
  names: readonly string[];
  /** strict: one of `names` is required. ca-only: any certificate of our CA (with a warning). */
  policy: 'strict' | 'ca-only';
}

export interface SslExchangeOptions {
  peerId: string;
  material: TlsMaterial;
  /** Default: the peer id, strictly. */
  peerName?: PeerNameCheck;
  /** For the whole exchange: TLS handshake, key line and our close_notify. */
  timeoutMs: number;
  /** Raw bytes to the TCP socket. */
  write(chunk: Buffer): void;
  warn(message: string): void;
  /**
   * Whether to end TLS with a close_notify (PROTOCOL.md says to; default true). Off, TLS is
   * just abandoned: for a lond that would read our close_notify as the start of a line.
   */
  closeNotify?: boolean;
}

/**
 * What follows the key in the socket's byte stream. A TLS record may still be on its way
 * (the peer's close_notify, session tickets): route socket data through `filter` until
 * `done`; it drops records and returns the cleartext, and once the cleartext has begun it
 * returns its input unchanged, so routing can stop.
 */
export interface TlsTail {
  readonly done: boolean;
  filter(chunk: Buffer): Buffer;
}

export interface SslExchangeResult {
  /** The 16-byte IDEA session key. */
  key: Buffer;
  /** Cleartext bytes already received after the TLS part (usually none). */
  leftover: Buffer;
  tail: TlsTail;
}

export class SslExchangeError extends Error {}

type Phase = 'handshake' | 'key' | 'closing' | 'done';

const PHASE_WORDS: Record<Phase, string> = {
  handshake: 'during the TLS handshake',
  key: 'while waiting for the key line',
  closing: 'while closing TLS',
  done: 'after the exchange',
};

/** Longest key line we wait for, and the most cleartext held while TLS still runs. */
const MAX_KEY_LINE = 1024;
const MAX_HELD_CLEARTEXT = 65536;

/**
 * The client side of the ssl key mode's TLS part, on a TCP connection the caller owns.
 * Node's TLS runs over a Duplex whose readable side gets only whole TLS records (split
 * here, see records.ts), so OpenSSL never reads a byte past the TLS part: the cleartext
 * after it is found at the exact byte, even when it shares a TCP segment with TLS.
 *
 * Feed every received chunk to feed() until `result` settles; then route data through
 * `result.tail` (or back to the line reader once tail.done). Call abort() when the
 * connection fails. The key is never logged nor put in an error message.
 */
export class SslKeyExchange {
  readonly result: Promise<SslExchangeResult>;
  private resolveResult!: (r: SslExchangeResult) => void;
  private rejectResult!: (e: Error) => void;
  private phase: Phase = 'handshake';
  private settled = false;
  private readonly splitter = new RecordSplitter();
  private readonly transport: Duplex;
  private socket: tls.TLSSocket | undefined;
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private lineParts: Buffer[] = [];
  private lineBytes = 0;
  /** Set once the certificate's name was checked: no key line is taken before. */
  private peerNamed = false;
  private key: Buffer | undefined;
  private writesOpen = true;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: SslExchangeOptions) {
    this.result = new Promise<SslExchangeResult>((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    // An unobserved rejection must not crash the daemon; callers still see it via `result`.
    this.result.catch(() => undefined);
    this.splitter.onRecord = (record) => this.transport.push(record);

    this.transport = new Duplex({
      read: () => undefined,
      write: (chunk: Buffer, _enc, cb) => {
        // Copied: the session's socket may hold on to it after OpenSSL reuses its buffer.
        if (this.writesOpen) this.opts.write(Buffer.from(chunk));
        cb();
      },
      // Node ends the transport right after writing our close_notify (after the last TLS write).
      final: (cb) => {
        cb();
        if (this.phase === 'closing') this.finish();
      },
    });
    this.transport.on('error', () => undefined);

    this.timer = setTimeout(() => this.fail(`timed out after ${opts.timeoutMs / 1000} s`), opts.timeoutMs);
    let socket: tls.TLSSocket;
    try {
      socket = tls.connect({
        socket: this.transport,
        ca: opts.material.ca,
        cert: opts.material.cert,
        key: opts.material.key,
        rejectUnauthorized: true,
        // Called by node only once the chain verified against our CA; an error returned
        // here ends the handshake (the socket is destroyed with it) before any data.
        checkServerIdentity: (_host, cert) => this.checkPeerName(cert),
      });
    } catch (err) {
      // Bad PEM or a key that does not match: checkPki() should have said so at start.
      this.fail(`cannot use our certificate and key: ${(err as Error).message}`);
      return;
    }
    this.socket = socket;
    socket.on('secureConnect', () => {
      if (this.phase === 'handshake') this.phase = 'key';
    });
    socket.on('data', (data: Buffer) => this.onTlsData(data));
    socket.on('end', () => this.onTlsEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.onTlsError(err));
    socket.on('close', () => {
      if (this.phase === 'closing') this.finish();
      else this.fail('the TLS connection closed');
    });
  }

  /** Raw bytes received from the TCP socket while the exchange runs. */
  feed(chunk: Buffer): void {
    if (this.settled) return;
    if (this.heldBytes > 0) {
      this.hold(chunk);
      return;
    }
    const clear = this.splitter.push(chunk);
    if (clear.length > 0) this.hold(clear);
  }

  /** The connection failed (closed, reset, timed out by the caller). */
  abort(reason: Error): void {
    this.fail(reason.message);
  }

  private hold(clear: Buffer): void {
    const first = this.heldBytes === 0;
    this.held.push(clear);
    this.heldBytes += clear.length;
    if (this.phase === 'done' || this.phase === 'closing' || this.key) return;
    if (this.heldBytes > MAX_HELD_CLEARTEXT) {
      this.fail(`peer sent more than ${MAX_HELD_CLEARTEXT} bytes of non-TLS data`);
      return;
    }
    if (!first) return;
    // Cleartext before the key line. Every record that came before it has been handed to
    // OpenSSL already; give it two turns of the event loop to deliver a key line it holds
    // (it normally does so synchronously), else the peer is not speaking TLS.
    setImmediate(() =>
      setImmediate(() => {
        if (!this.key && !this.settled) {
          this.fail(`peer sent data that is not TLS: ${describeBytes(Buffer.concat(this.held))}`);
        }
      }),
    );
  }

  private onTlsData(data: Buffer): void {
    if (this.key || this.settled) {
      if (data.length > 0) this.opts.warn(`peer ${this.opts.peerId} sent ${data.length} more bytes over TLS after the key line; ignored`);
      return;
    }
    const nl = data.indexOf(0x0a);
    if (nl < 0) {
      this.lineParts.push(data);
      this.lineBytes += data.length;
      if (this.lineBytes > MAX_KEY_LINE) this.fail(`the key line is longer than ${MAX_KEY_LINE} bytes`);
      return;
    }
    this.lineParts.push(data.subarray(0, nl));
    const extra = data.length - nl - 1;
    if (extra > 0) this.opts.warn(`peer ${this.opts.peerId} sent ${extra} more bytes over TLS after the key line; ignored`);
    this.onKeyLine(Buffer.concat(this.lineParts));
  }

  // A peer that ends TLS right after the key may leave out the newline (recon): take what came.
  private onTlsEnd(): void {
    if (this.key || this.settled) return;
    if (this.lineBytes === 0) {
      this.fail('peer closed TLS without sending the key line');
      return;
    }
    this.opts.warn(`peer ${this.opts.peerId} ended TLS after a key line without a newline`);
    this.onKeyLine(Buffer.concat(this.lineParts));
  }

  private onKeyLine(line: Buffer): void {
    this.lineParts = [];
    if (!this.peerNamed) {
      // Unreachable as node calls checkServerIdentity before any data; kept so that a
      // change there can never let an unchecked peer hand us a key.
      line.fill(0);
      this.fail("the key line came before the peer's certificate was checked");
      return;
    }
    const parsed = parseKeyLine(line);
    line.fill(0);
    if (typeof parsed === 'string') {
      this.fail(parsed);
      return;
    }
    this.key = parsed;
    this.phase = 'closing';
    // From here on, records are dropped: OpenSSL must not see anything more.
    this.splitter.onRecord = undefined;
    if (this.opts.closeNotify === false) {
      this.finish();
      return;
    }
    // end() sends our close_notify; we do not wait for the peer's (PROTOCOL.md).
    this.socket?.end();
  }

  private onTlsError(err: NodeJS.ErrnoException): void {
    if (this.settled) return;
    if (this.phase === 'closing') {
      // The key is in hand; a failure while saying goodbye does not matter.
      this.finish();
      return;
    }
    this.fail(err instanceof PeerNameError ? err.message : describeTlsError(err));
  }

  private finish(): void {
    if (this.settled || !this.key) return;
    this.settled = true;
    this.phase = 'done';
    clearTimeout(this.timer);
    this.writesOpen = false;
    this.socket?.destroy();
    const leftover = Buffer.concat(this.held);
    this.held.length = 0;
    const splitter = this.splitter;
    const tail: TlsTail = {
      get done() {
        return splitter.inCleartext;
      },
      filter: (chunk) => splitter.push(chunk),
    };
    this.resolveResult({ key: this.key, leftover, tail });
  }

  private fail(message: string): void {
    if (this.settled) return;
    this.settled = true;
    const phase = this.phase;
    this.phase = 'done';
    clearTimeout(this.timer);
    this.writesOpen = false;
    this.splitter.onRecord = undefined;
    this.key?.fill(0);
    this.key = undefined;
    this.socket?.destroy();
    this.rejectResult(new SslExchangeError(`TLS key exchange with ${this.opts.peerId} failed ${PHASE_WORDS[phase]}: ${message}`));
  }

  /**
   * LON-CAPA's host certificates carry the host id (lonHostID) as their CN, not a DNS
   * name, so node's host name check (against the address we connect to) would fail on
   * every network. The certificate must name the peer instead: its host id or its host
   * name from hosts.tab, as CN or subject alternative name. Returns the error that ends
   * the handshake, or undefined.
   */
  private checkPeerName(cert: tls.PeerCertificate): Error | undefined {
    const check = this.opts.peerName ?? { names: [this.opts.peerId], policy: 'strict' };
    const names = certificateNames(cert);
    const wanted = check.names.filter((n) => n !== '');
    const lower = new Set(wanted.map((n) => n.toLowerCase()));
    if (names.some((n) => lower.has(n.toLowerCase()))) {
      this.peerNamed = true;
      return undefined;
    }
    const shown = names.length > 0 ? names.slice(0, 4).join(', ') + (names.length > 4 ? ', …' : '') : 'no CN and no DNS or IP subject alternative name';
    const expected = describeExpected(this.opts.peerId, wanted);
    if (check.policy === 'ca-only') {
      this.peerNamed = true;
      this.opts.warn(`peer ${this.opts.peerId} presented a certificate for ${shown}, not for ${expected}; accepted since our CA signed it (gatewaycTlsPeerName ca-only)`);
      return undefined;
    }
    return new PeerNameError(
      `the peer's certificate is for ${shown}, not for ${expected}: it belongs to another host of the network (gatewaycTlsPeerName ca-only would accept it)`,
    );
  }
}

/** A certificate that names another host: said as it is, not as a TLS error code. */
class PeerNameError extends Error {}

/** "msul1 (its host id) or msul1.example.edu (its host name in hosts.tab)". */
function describeExpected(peerId: string, names: readonly string[]): string {
  const words = names.map((n) => (n === peerId ? `${n} (its host id)` : `${n} (its host name in hosts.tab)`));
  return words.length > 0 ? words.join(' or ') : peerId;
}

/**
 * The names a peer certificate gives its host: CN(s), DNS and IP subject alternative
 * names. (URI and email names name something else; wildcards are not expanded: a
 * LON-CAPA host certificate names one host.)
 */
export function certificateNames(cert: tls.PeerCertificate): string[] {
  const names: string[] = [];
  const cn = cert.subject?.CN as string | string[] | undefined;
  if (Array.isArray(cn)) names.push(...cn);
  else if (cn) names.push(cn);
  for (const entry of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*(?:DNS|IP Address):(.*)$/.exec(entry);
    if (m) names.push(m[1].trim());
  }
  return names;
}

/**
 * The key line sent over TLS: 32 hex digits (recon: case, surrounding whitespace and a
 * CR are tolerated). Returns the key, or what was wrong — described without the key.
 */
export function parseKeyLine(line: Buffer): Buffer | string {
  const text = line.toString('latin1').trim();
  if (text === '') return 'peer sent an empty key line';
  if (text.length !== 32 || !/^[0-9A-Fa-f]+$/.test(text)) {
    const bad = [...text].filter((c) => !/[0-9A-Fa-f]/.test(c)).length;
    return `the key line is not 32 hex digits (${text.length} characters, ${bad} of them not hex)`;
  }
  return Buffer.from(text, 'hex');
}

/** Bytes a peer sent, fit for a log line: printable text quoted, else a hex prefix. */
export function describeBytes(bytes: Buffer): string {
  const head = bytes.subarray(0, 40);
  const more = bytes.length > head.length ? '…' : '';
  const printable = head.every((c) => (c >= 0x20 && c < 0x7f) || c === 0x0a || c === 0x0d || c === 0x09);
  if (printable) return `${JSON.stringify(head.toString('latin1'))}${more} (${bytes.length} bytes)`;
  return `bytes ${head.toString('hex')}${more} (${bytes.length} bytes)`;
}

const NOT_OUR_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

/** What a TLS failure means for a LON-CAPA administrator. */
export function describeTlsError(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  if (NOT_OUR_CA.has(code)) return `the peer's certificate is not signed by our CA (lonnetCertificateAuthority) (${code})`;
  if (code === 'CERT_HAS_EXPIRED') return `the peer's certificate has expired (${code})`;
  if (code === 'CERT_NOT_YET_VALID') return `the peer's certificate is not valid yet (${code})`;
  if (code === 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' || code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' || code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return `the peer rejected our certificate (${code}): is lonnetCertificate signed by the network's CA?`;
  }
  if (code === 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED') return `the peer says our certificate has expired (${code})`;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || code === 'ERR_SSL_RECORD_LAYER_FAILURE') {
    return `the peer does not speak TLS (${code})`;
  }
  return code ? `${err.message} (${code})` : err.message;
}
