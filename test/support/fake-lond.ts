// A server-side lond for tests, written from PROTOCOL.md alone. It deliberately imports
// nothing from src/: key derivation, IDEA (OpenSSL's) and framing are computed here
// independently, so that a bug mirrored in gatewayc's own code cannot make a test pass.
import * as crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { FakeKeyModes, FakeLocalOptions, FakeTlsOptions, TlsServerReport, TlsServerSide, readLocalKey } from './fake-lond-tls';

export interface LondFaults {
  refuseInit?: boolean;
  rejectChallenge?: boolean;
  silent?: boolean;
  handshakeDelayMs?: number;
  pongReply?: string;
  buildkey?: string;
  stallRequests?: boolean;
  halfAnswer?: boolean;
  garbage?: Buffer;
  killOnRequest?: boolean;
  resetOnConnect?: boolean;
  closeAfterRequests?: number;
  /** Once the session is ready, stop reading the socket: the client's send buffer fills. */
  stopReading?: boolean;
  /** After each answer, `data` again `afterMs` later, unasked (a lond that babbles while idle). */
  lateData?: { afterMs: number; data: Buffer };
}

export interface RequestInfo {
  session: number;
  encrypted: boolean;
}

export type LondHandler = (cmd: Buffer, info: RequestInfo) => Buffer | string | Promise<Buffer | string>;

export interface FakeLondOptions {
  id: string;
  clientId: string;
  host?: string;
  port?: number;
  /** Delay before each request's answer (handshake answers use faults.handshakeDelayMs). */
  serviceTimeMs?: number;
  encryptAnswers?: boolean;
  handler?: LondHandler;
  faults?: LondFaults;
  /** init:ssl / init:local support (fake-lond-tls.ts); without it both are refused, as before. */
  keyModes?: FakeKeyModes;
}

export interface ReceivedRequest {
  session: number;
  raw: Buffer;
  plain: Buffer;
  encrypted: boolean;
  at: number;
}

export interface LondStats {
  connections: number;
  handshakes: number;
  requests: number;
  exits: number;
  open: number;
  /** `enc:` requests that did not follow the framing rule (answered with an error, not recorded). */
  malformed: number;
}

// ---------------------------------------------------------------------------------------
// Pure protocol pieces

export const IDEA_MISSING_MESSAGE =
  "fake lond: OpenSSL's IDEA (idea-ecb) is not available; run node with --openssl-legacy-provider " +
  '(e.g. NODE_OPTIONS=--openssl-legacy-provider)';

export function requireOpenSslIdea(): void {
  if (!crypto.getCiphers().includes('idea-ecb')) throw new Error(IDEA_MISSING_MESSAGE);
}

const isAsciiLetter = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/**
 * lond's insecure-mode session key. Works on bytes like Perl does (uc and pack's letter
 * test only know ASCII), so ids with '-', '_' or '.' give the same odd nibbles as lond.
 */
export function londKey(P: string, L: string, b: string): Buffer {
  const k = Buffer.from(P + L, 'utf8').map((c) => {
    const u = c >= 0x61 && c <= 0x7a ? c - 0x20 : c;
    // G..P and Q..Z both fold onto the digits 0..9.
    return u >= 0x47 && u <= 0x5a ? 0x30 + ((u - 0x47) % 10) : u;
  });
  const bb = Buffer.from(b, 'utf8');
  const s = Buffer.concat([k, bb, k, bb, k, bb]).subarray(0, 32);
  const key = Buffer.alloc(16); // a short s leaves zero nibbles, as pack("H32") does
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    const nibble = isAsciiLetter(c) ? (c + 9) & 15 : c & 15;
    key[i >> 1] |= i % 2 === 0 ? nibble << 4 : nibble;
  }
  return key;
}

function idea(decrypt: boolean, key: Buffer, data: Buffer): Buffer {
  const c = decrypt ? crypto.createDecipheriv('idea-ecb', key, null) : crypto.createCipheriv('idea-ecb', key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

/** `enc:<L>:<hex>` (no line ending) for `plain`: space padding, floor(L/8)+1 blocks. */
export function encodeEnc(key: Buffer, plain: Buffer): string {
  const padded = Buffer.alloc((Math.floor(plain.length / 8) + 1) * 8, 0x20);
  plain.copy(padded);
  return `enc:${plain.length}:${idea(false, key, padded).toString('hex')}`;
}

/**
 * The plaintext of an `enc:` line, or null when the line breaks the framing rule
 * (block count, lowercase hex, space padding): this lond is strict on purpose, so that
 * a gatewayc that frames wrongly fails loudly instead of being tolerated.
 */
export function decodeEnc(key: Buffer, line: Buffer): Buffer | null {
  const m = /^enc:(0|[1-9][0-9]{0,8}):([0-9a-f]*)$/.exec(line.toString('latin1'));
  if (!m) return null;
  const len = Number(m[1]);
  const blocks = Math.floor(len / 8) + 1;
  if (m[2].length !== blocks * 16) return null;
  const padded = idea(true, key, Buffer.from(m[2], 'hex'));
  if (padded.subarray(len).some((c) => c !== 0x20)) return null;
  return padded.subarray(0, len);
}

/** lond's child pid followed by the epoch seconds; the session number stands in for distinct child pids. */
function makeChallenge(session: number): string {
  return `${process.pid + session}${Math.floor(Date.now() / 1000)}`;
}

function randomBuildkey(): string {
  return crypto.randomBytes(13).toString('hex').toUpperCase();
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function defaultHandler(id: string, cmd: Buffer): Promise<Buffer | string> {
  const text = cmd.toString('latin1');
  if (text === 'ping') return id;
  if (text.startsWith('echo:')) return cmd.subarray(5);
  if (text.startsWith('put:') || text.startsWith('store:')) return 'ok';
  const sleepMs = /^sleep:([0-9]{1,7})$/.exec(text);
  if (sleepMs) {
    await sleep(Number(sleepMs[1]));
    return 'ok';
  }
  const big = /^big:([0-9]{1,9})$/.exec(text);
  if (big) return Buffer.alloc(Number(big[1]), 'x');
  return 'unknown_cmd';
}

function toBody(answer: Buffer | string): Buffer {
  const buf = typeof answer === 'string' ? Buffer.from(answer, 'utf8') : answer;
  return buf.length > 0 && buf[buf.length - 1] === 0x0a ? buf.subarray(0, -1) : buf;
}

function resetSocket(socket: net.Socket): void {
  const s = socket as net.Socket & { resetAndDestroy?: () => net.Socket };
  if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
  else socket.destroy();
}

// ---------------------------------------------------------------------------------------
// One connection = one lond child

type ChildState = 'new' | 'challenged' | 'authed' | 'ready';

interface QueuedLine {
  line: Buffer;
  at: number;
}

class LondChild {
  private state: ChildState = 'new';
  private pending: Buffer = Buffer.alloc(0);
  private readonly queue: QueuedLine[] = [];
  private busy = false;
  private stalled = false;
  private dead = false;
  private challenge = '';
  private key: Buffer | null = null;
  private answered = 0;
  // While set, socket data bypasses line splitting (the TLS part of init:ssl).
  private raw: ((chunk: Buffer) => void) | null = null;
  private tlsSide: TlsServerSide | null = null;

  constructor(
    private readonly lond: FakeLond,
    private readonly opts: FakeLondOptions,
    private readonly socket: net.Socket,
    readonly session: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.dead = true;
    });
  }

  private onData(chunk: Buffer): void {
    if (this.raw) {
      this.raw(chunk);
      return;
    }
    this.takeLines(chunk);
  }

  private takeLines(chunk: Buffer): void {
    if (this.lond.faults.stopReading && this.state === 'ready') {
      // Nothing is read any more, so the kernel buffers fill up and the sender blocks.
      this.stalled = true;
      this.socket.pause();
      return;
    }
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const at = Date.now();
    let nl: number;
    while ((nl = this.pending.indexOf(0x0a)) >= 0) {
      this.queue.push({ line: this.pending.subarray(0, nl), at });
      this.pending = this.pending.subarray(nl + 1);
    }
    this.pump();
  }

  // Strictly one line at a time: pipelined lines wait in the queue, as in a lond child.
  private pump(): void {
    if (this.busy) return;
    this.busy = true;
    void (async () => {
      try {
        while (!this.dead && !this.stalled && this.queue.length > 0) {
          const item = this.queue.shift() as QueuedLine;
          await this.handleLine(item);
        }
      } catch {
        this.socket.destroy();
      } finally {
        this.busy = false;
      }
    })();
  }

  private write(data: Buffer | string): void {
    // A close_notify held back by the ssl mode goes out in front of the first answer.
    if (this.tlsSide) data = this.tlsSide.wrapAnswer(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
    if (!this.dead && !this.socket.destroyed && this.socket.writable) this.socket.write(data);
  }

  private startSsl(opts: FakeTlsOptions): void {
    const answer = opts.answer ?? 'ok:ssl';
    if (!answer.trim().toLowerCase().startsWith('ok')) {
      this.write(`${answer}\n`);
      if (answer === 'refused') this.close();
      return;
    }
    const side = new TlsServerSide(opts, {
      write: (d) => {
        if (!this.socket.destroyed && this.socket.writable) this.socket.write(d);
      },
      destroy: () => {
        this.dead = true;
        this.socket.destroy();
      },
    });
    this.lond.tlsReports[this.session] = side.report;
    this.tlsSide = side;
    const early = this.pending;
    this.pending = Buffer.alloc(0);
    this.raw = (chunk) => side.feed(chunk);
    this.write(`${answer}\n`);
    if (early.length > 0) side.feed(early);
    side.done.then(
      ({ key, leftover }) => {
        this.becomeReady(key);
        this.raw = (chunk) => {
          const clear = side.filter(chunk);
          if (side.inCleartext) this.raw = null;
          if (clear.length > 0) this.takeLines(clear);
        };
        if (leftover.length > 0) {
          this.raw = null;
          this.takeLines(leftover);
        }
      },
      (err: Error) => {
        this.lond.tlsErrors.push(err.message);
        this.lond.emit('tls-error', this.session, err.message);
        // A peer that is not TLS (notTls) keeps the line open: the client must notice by itself.
        if (opts.notTls) return;
        this.dead = true;
        this.socket.destroy();
      },
    );
  }

  private async startLocal(file: string, opts: FakeLocalOptions): Promise<void> {
    this.lond.localKeyFiles.push(file);
    const answer = opts.answer ?? 'ok:local';
    const key = answer === 'refused' ? null : await readLocalKey(file, opts);
    if (!key) {
      this.write('refused\n');
      return;
    }
    this.becomeReady(key);
    this.write(`${answer}\n`);
  }

  private becomeReady(key: Buffer): void {
    this.key = key;
    this.lond.sessionKeys[this.session] = key;
    this.state = 'ready';
    this.lond.stats.handshakes++;
    this.lond.emit('handshake', this.session);
  }

  private close(): void {
    this.dead = true;
    this.socket.end();
  }

  // Faults are read after the delay so a test can flip them while an answer is pending.
  private async handshakeDelay(): Promise<void> {
    const delay = this.lond.faults.handshakeDelayMs;
    if (delay) await sleep(delay);
  }

  private async handleLine({ line, at }: QueuedLine): Promise<void> {
    if (this.lond.faults.silent) return;
    const text = line.toString('latin1');
    if (text === 'exit') {
      this.lond.stats.exits++;
      this.lond.emit('exit', this.session);
      this.close();
      return;
    }
    if (this.state === 'new') {
      await this.handshakeDelay();
      const modes = this.lond.keyModes;
      if (modes.ssl && text.startsWith('init:ssl')) {
        this.startSsl(typeof modes.ssl === 'function' ? modes.ssl(this.lond.id) : modes.ssl);
        return;
      }
      if (modes.local && text.startsWith('init:local:')) {
        await this.startLocal(text.slice('init:local:'.length), modes.local === true ? {} : modes.local);
        return;
      }
      if (text !== 'init') {
        this.write('refused\n');
      } else if (this.lond.faults.refuseInit) {
        this.write('refused\n');
        this.close();
      } else {
        this.state = 'challenged';
        this.challenge = makeChallenge(this.session);
        this.lond.challenges.push(this.challenge);
        this.write(`${this.challenge}\n`);
      }
      return;
    }
    if (this.state === 'challenged') {
      await this.handshakeDelay();
      if (text === this.challenge && !this.lond.faults.rejectChallenge) {
        this.state = 'authed';
        this.write('ok\n');
      } else {
        this.write('refused\n');
        this.close();
      }
      return;
    }
    // lond answers pong and ekey at any time after the challenge; a second ekey re-keys.
    if (text === 'pong') {
      await this.handshakeDelay();
      this.write(`${this.lond.faults.pongReply ?? `${this.lond.id}:${this.opts.clientId}`}\n`);
      return;
    }
    if (text === 'ekey') {
      await this.handshakeDelay();
      const b = this.lond.faults.buildkey ?? randomBuildkey();
      this.lond.buildkeys.push(b);
      this.key = londKey(this.lond.id, this.opts.clientId, b);
      this.lond.sessionKeys[this.session] = this.key;
      this.write(`${b}\n`);
      if (this.state !== 'ready') {
        this.state = 'ready';
        this.lond.stats.handshakes++;
        this.lond.emit('handshake', this.session);
      }
      return;
    }
    if (this.state !== 'ready' || this.key === null) {
      await this.handshakeDelay();
      this.write('refused\n');
      return;
    }
    await this.request(line, at, this.key);
  }

  private async request(line: Buffer, at: number, key: Buffer): Promise<void> {
    let plain = line;
    const encrypted = line.subarray(0, 4).toString('latin1') === 'enc:';
    if (encrypted) {
      const decoded = decodeEnc(key, line);
      if (decoded === null) {
        this.lond.stats.malformed++;
        this.lond.emit('malformed', this.session);
        this.write('error: malformed enc request\n');
        return;
      }
      plain = decoded;
    }
    const rec: ReceivedRequest = { session: this.session, raw: line, plain, encrypted, at };
    this.lond.received.push(rec);
    this.lond.stats.requests++;
    this.lond.emit('request', rec);

    if (this.lond.faults.killOnRequest) {
      this.dead = true;
      this.socket.destroy();
      return;
    }
    if (this.lond.faults.stallRequests) {
      this.stalled = true;
      return;
    }
    const service = this.opts.serviceTimeMs;
    if (service) await sleep(service);

    let body: Buffer;
    try {
      const info = { session: this.session, encrypted };
      body = toBody(await (this.opts.handler ? this.opts.handler(plain, info) : defaultHandler(this.lond.id, plain)));
    } catch (err) {
      body = Buffer.from(`error: ${err instanceof Error ? err.message : String(err)}`, 'utf8');
    }
    if (encrypted && this.opts.encryptAnswers) body = Buffer.from(encodeEnc(key, body), 'latin1');

    const faults = this.lond.faults;
    if (faults.garbage) {
      this.write(faults.garbage);
    } else if (faults.halfAnswer) {
      this.write(body.subarray(0, Math.ceil(body.length / 2)));
      this.stalled = true;
      return;
    } else {
      this.write(Buffer.concat([body, Buffer.from('\n')]));
    }
    this.answered++;
    const late = faults.lateData;
    if (late) setTimeout(() => this.write(late.data), late.afterMs);
    const limit = faults.closeAfterRequests;
    if (limit !== undefined && this.answered >= limit) this.close();
  }
}

// ---------------------------------------------------------------------------------------
// The listener

/**
 * Events: 'connection' (session), 'handshake' (session), 'request' (ReceivedRequest),
 * 'malformed' (session), 'exit' (session), 'close' (session), 'tls-error' (session, message).
 */
export class FakeLond extends EventEmitter {
  readonly id: string;
  readonly host: string;
  faults: LondFaults;
  /** From opts.keyModes; may be replaced while running (read at each init:ssl / init:local). */
  keyModes: FakeKeyModes;
  readonly stats: LondStats = { connections: 0, handshakes: 0, requests: 0, exits: 0, open: 0, malformed: 0 };
  readonly received: ReceivedRequest[] = [];
  readonly sessionKeys: Buffer[] = [];
  /** Per session that ran init:ssl: what its TLS part saw. */
  readonly tlsReports: TlsServerReport[] = [];
  /** Why TLS parts failed (also emitted as 'tls-error' (session, message)). */
  readonly tlsErrors: string[] = [];
  /** Files named by init:local requests, in order. */
  readonly localKeyFiles: string[] = [];
  /** Every challenge and buildkey sent, so a test can search the daemon's output for them. */
  readonly challenges: string[] = [];
  readonly buildkeys: string[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private boundPort = 0;
  private stopped: Promise<void> | null = null;

  private constructor(private readonly opts: FakeLondOptions) {
    super();
    this.id = opts.id;
    this.host = opts.host ?? '127.0.0.1';
    this.faults = opts.faults ?? {};
    this.keyModes = opts.keyModes ?? {};
    this.server = net.createServer((socket) => this.onConnection(socket));
  }

  get port(): number {
    return this.boundPort;
  }

  static async start(opts: FakeLondOptions): Promise<FakeLond> {
    requireOpenSslIdea();
    const lond = new FakeLond(opts);
    await new Promise<void>((resolve, reject) => {
      lond.server.once('error', reject);
      lond.server.listen({ host: lond.host, port: opts.port ?? 0 }, () => {
        lond.server.off('error', reject);
        resolve();
      });
    });
    lond.boundPort = (lond.server.address() as net.AddressInfo).port;
    return lond;
  }

  private onConnection(socket: net.Socket): void {
    const session = this.stats.connections++;
    socket.on('error', () => undefined); // resets by the client are part of the game
    if (this.faults.resetOnConnect) {
      this.emit('connection', session);
      resetSocket(socket);
      return;
    }
    socket.setNoDelay(true);
    this.sockets.add(socket);
    this.stats.open++;
    this.emit('connection', session);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.stats.open--;
      this.emit('close', session);
    });
    new LondChild(this, this.opts, socket, session);
  }

  killAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.killAll();
      });
    }
    return this.stopped;
  }

  async waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() >= deadline) throw new Error(`fake lond ${this.id}: timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(10);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Several londs on one port (gatewayc has one londPort for all peers)

export interface LondNetwork {
  port: number;
  londs: Map<string, FakeLond>;
  addressOf(id: string): string;
  stop(): Promise<void>;
}

export type LondNetworkOptions = Omit<FakeLondOptions, 'id' | 'clientId' | 'host' | 'port'> & { firstAddress?: number };

export async function startLondNetwork(ids: string[], clientId: string, opts: LondNetworkOptions = {}): Promise<LondNetwork> {
  const { firstAddress = 2, ...common } = opts;
  if (new Set(ids).size !== ids.length) throw new Error('startLondNetwork: duplicate ids');
  if (firstAddress < 1 || firstAddress + ids.length - 1 > 254) throw new Error('startLondNetwork: addresses leave 127.0.0.1-254');
  const addresses = new Map(ids.map((id, i) => [id, `127.0.0.${firstAddress + i}`]));
  let lastError: unknown = null;
  for (let attempt = 0; attempt < 20; attempt++) {
    const londs = new Map<string, FakeLond>();
    let port = 0;
    try {
      for (const id of ids) {
        // Each lond gets its own faults object so a test can break one peer only.
        const lond = await FakeLond.start({ ...common, faults: { ...common.faults }, id, clientId, host: addresses.get(id), port });
        londs.set(id, lond);
        port = lond.port;
      }
      return {
        port,
        londs,
        addressOf(id: string): string {
          const a = addresses.get(id);
          if (a === undefined) throw new Error(`startLondNetwork: unknown id ${id}`);
          return a;
        },
        async stop(): Promise<void> {
          await Promise.all([...londs.values()].map((l) => l.stop()));
        },
      };
    } catch (err) {
      await Promise.all([...londs.values()].map((l) => l.stop()));
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      lastError = err;
    }
  }
  throw new Error(`startLondNetwork: no common free port after 20 attempts (${String(lastError)})`);
}
