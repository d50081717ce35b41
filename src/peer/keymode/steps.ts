import { HandshakeChannel, HandshakeError, describeReply } from '../handshake';
import { createLocalKeyFile } from './local';
import { describeBytes, PeerNameCheck, SslKeyExchange, TlsMaterial } from './ssl';

/**
 * What the ssl key mode needs from a session besides `ask`: for a while, the socket's
 * raw bytes instead of lines. startRaw() is called right after the `ok:ssl` line was
 * answered; from then on the session hands every received chunk to `handlers.data`
 * instead of its line reader, and calls `handlers.closed` once if the connection fails
 * meanwhile. `finish(leftover)` ends that: the session pushes `leftover` into its line
 * reader and sends later chunks there again. `ask()` must keep working while the raw
 * phase lasts (it may outlive the handshake, see sslHandshake). InboundRouter below
 * implements all of it.
 */
export interface RawHandlers {
  data(chunk: Buffer): void;
  closed(err: Error): void;
}

export interface RawPhase {
  /** Bytes to the socket as they are: no line ending added. */
  write(chunk: Buffer): void;
  finish(leftover: Buffer): void;
}

export interface RawChannel extends HandshakeChannel {
  startRaw(handlers: RawHandlers): RawPhase;
}

/**
 * Where a session's received bytes go: its line reader, or a raw phase. A session needs
 * three lines to use it: socket 'data' → router.push(chunk); its failure path →
 * router.close(err); and in the channel, startRaw: (h) => router.startRaw(h, writeRaw).
 */
export class InboundRouter {
  private raw: RawHandlers | undefined;

  constructor(private readonly toLines: (chunk: Buffer) => void) {}

  get inRawPhase(): boolean {
    return this.raw !== undefined;
  }

  push(chunk: Buffer): void {
    if (this.raw) this.raw.data(chunk);
    else this.toLines(chunk);
  }

  close(err: Error): void {
    const raw = this.raw;
    this.raw = undefined;
    raw?.closed(err);
  }

  startRaw(handlers: RawHandlers, write: (chunk: Buffer) => void): RawPhase {
    if (this.raw) throw new Error('a raw phase is already running');
    this.raw = handlers;
    let finished = false;
    return {
      write,
      finish: (leftover) => {
        if (finished) return;
        finished = true;
        if (this.raw === handlers) this.raw = undefined;
        if (leftover.length > 0) this.toLines(leftover);
      },
    };
  }
}

/** Tolerant reading of an answer line (recon): case, surrounding whitespace. */
function normalized(reply: string): string {
  return reply.trim().toLowerCase();
}

function checkInitAnswer(ch: HandshakeChannel, step: string, reply: string, expected: string): void {
  const r = normalized(reply);
  if (r === expected) return;
  if (r === 'ok') {
    ch.warn(`peer answered ${describeReply(reply)} to ${step}, not ${expected}; going on`);
    return;
  }
  if (r === 'refused' || r === 'rejected') {
    throw new HandshakeError(`peer answered ${r} to ${step} (does its hosts.tab know this server?)`, true);
  }
  if (r === 'unknown_cmd') throw new HandshakeError(`peer does not know ${step} (unknown_cmd): set gatewaycKeyMode for it`);
  // A 2002 lond takes any init… line for init and answers its challenge.
  if (/^[0-9]+$/.test(r)) throw new HandshakeError(`peer answered ${step} with a challenge: it only knows the 2002 exchange (gatewaycKeyMode insecure)`);
  throw new HandshakeError(`peer answered ${step} with ${describeReply(reply)}, not ${expected}`);
}

export interface SslHandshakeOptions {
  peerId: string;
  /** Sent as init:ssl:<version>. */
  version: string;
  material: TlsMaterial;
  /** Whom the certificate must name; default the peer id, strictly (see PeerNameCheck). */
  peerName?: PeerNameCheck;
  timeoutMs: number;
  /** See SslExchangeOptions.closeNotify (default true). */
  closeNotify?: boolean;
}

/**
 * The ssl key mode (PROTOCOL.md, later key modes): `init:ssl:<version>` → `ok:ssl`, TLS on
 * the same connection, the key line, our close_notify; returns the 16-byte IDEA key.
 *
 * When it returns, the session goes on with ask() as usual. The raw phase may still be
 * running: a TLS record (the peer's close_notify) can arrive after we switched, so bytes
 * keep going through a filter that drops records until the first cleartext byte, which
 * ends the raw phase (normally: the first answer's first byte).
 */
export async function sslHandshake(ch: RawChannel, opts: SslHandshakeOptions): Promise<Buffer> {
  const step = `init:ssl:${opts.version}`;
  checkInitAnswer(ch, 'init:ssl', await ch.ask('init:ssl', step), 'ok:ssl');

  let sink: RawHandlers = { data: () => undefined, closed: () => undefined };
  const raw = ch.startRaw({ data: (c) => sink.data(c), closed: (e) => sink.closed(e) });
  let exchange: SslKeyExchange;
  try {
    exchange = new SslKeyExchange({
      peerId: opts.peerId,
      material: opts.material,
      peerName: opts.peerName,
      timeoutMs: opts.timeoutMs,
      write: (c) => raw.write(c),
      warn: (m) => ch.warn(m),
      closeNotify: opts.closeNotify,
    });
  } catch (err) {
    raw.finish(Buffer.alloc(0));
    throw err;
  }
  sink = { data: (c) => exchange.feed(c), closed: (e) => exchange.abort(e) };

  let result;
  try {
    result = await exchange.result;
  } catch (err) {
    raw.finish(Buffer.alloc(0));
    throw new HandshakeError((err as Error).message);
  }
  const { key, leftover, tail } = result;
  if (tail.done) {
    // Cleartext nobody asked for yet: the session's line reader decides what it means.
    ch.warn(`peer sent ${describeBytes(leftover)} in the clear right after the TLS part`);
    raw.finish(leftover);
    return key;
  }
  sink = {
    data: (c) => {
      const clear = tail.filter(c);
      if (tail.done) raw.finish(clear);
    },
    closed: () => undefined,
  };
  return key;
}

export interface LocalHandshakeOptions {
  /** Directory for the key file: lond's group must be able to read it. */
  dir: string;
}

/**
 * The local key mode: write a random key to a file lond can read, send
 * `init:local:<file>`, expect `ok:local`. The file is removed whatever happens (lond
 * normally removes it first). Returns the 16-byte IDEA key.
 */
export async function localHandshake(ch: HandshakeChannel, opts: LocalHandshakeOptions): Promise<Buffer> {
  const keyFile = await createLocalKeyFile(opts.dir);
  try {
    checkInitAnswer(ch, 'init:local', await ch.ask('init:local', `init:local:${keyFile.file}`), 'ok:local');
    return Buffer.from(keyFile.key);
  } finally {
    keyFile.key.fill(0);
    await keyFile.cleanup().catch((err: Error) => ch.warn(`cannot remove the local key file ${keyFile.file}: ${err.message}`));
  }
}
