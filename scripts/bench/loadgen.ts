// Closed-loop load generator: N clients, each sending its next request as soon as the
// previous answer arrived, through a set of channels (UNIX connections to gatewayc or to
// an echo server, or TCP sessions straight to a fake lond). Latency runs from the
// moment a client wants to send until its answer arrived, queueing for a channel included.
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeEnc, londKey } from '../../test/support/fake-lond';
import { Samples } from './stats';

const LF = 0x0a;

export interface ClientSpec {
  /** The request line without its '\n'. Direct targets encrypt `encrypt:` lines themselves. */
  request: Buffer;
  /** The answer expected, without '\n'; null accepts anything. */
  expect: Buffer | null;
}

export type Target =
  | { kind: 'unix'; path: string }
  | { kind: 'lond'; host: string; port: number; peerId: string; clientId: string; sessions: number };

export interface LoadOptions {
  target: Target;
  clients: ClientSpec[];
  warmupMs: number;
  durationMs: number;
  /** Keep each latency (for p50/p99); off for long soak runs. */
  latencies?: boolean;
  /** Called at the start and at the end of the measured window (CPU and memory probes). */
  onWindow?: (edge: 'start' | 'end') => void;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers that were not the expected one (con_lost included). */
  wrong: number;
  channels: number;
}

class Client {
  t0 = 0;
  constructor(
    readonly spec: ClientSpec,
    readonly wire: Buffer,
  ) {}
}

interface Channel {
  send(c: Client): void;
  close(): void;
}

/** Reads one answer line at a time from a socket that carries one request at a time. */
export class LineSocket {
  private partial: Buffer | null = null;
  onLine: (line: Buffer) => void = () => undefined;

  constructor(readonly sock: net.Socket) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  private onData(chunk: Buffer): void {
    let data = chunk;
    if (this.partial) {
      data = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    let start = 0;
    for (let nl = data.indexOf(LF); nl >= 0; nl = data.indexOf(LF, start)) {
      const line = data.subarray(start, nl);
      start = nl + 1;
      this.onLine(line);
    }
    if (start < data.length) this.partial = data.subarray(start);
  }
}

export function connect(opts: net.NetConnectOpts): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(opts);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

/** One connection; the pool decides which client it carries next. */
class SocketChannel implements Channel {
  current: Client | null = null;
  private readonly key: Buffer | null;

  constructor(
    private readonly ls: LineSocket,
    private readonly pool: Pool,
    key: Buffer | null,
  ) {
    this.key = key;
    ls.onLine = (line) => {
      const c = this.current as Client;
      this.current = null;
      this.pool.answered(this, c, line);
    };
  }

  send(c: Client): void {
    this.current = c;
    const req = c.spec.request;
    if (this.key !== null && req.length >= 8 && req.toString('latin1', 0, 8) === 'encrypt:') {
      // What a client talking to lond itself would do per request: encrypt with OpenSSL.
      this.ls.sock.write(`${encodeEnc(this.key, req.subarray(8))}\n`, 'latin1');
    } else {
      this.ls.sock.write(c.wire);
    }
  }

  close(): void {
    if (this.key !== null && this.current === null) this.ls.sock.end('exit\n');
    else this.ls.sock.destroy();
  }
}

/** The 2002 handshake of PROTOCOL.md, client side; resolves with the session key. */
export async function londHandshake(ls: LineSocket, peerId: string, clientId: string): Promise<Buffer> {
  const ask = (line: string): Promise<string> =>
    new Promise((resolve) => {
      ls.onLine = (answer) => resolve(answer.toString('latin1'));
      ls.sock.write(`${line}\n`, 'latin1');
    });
  const challenge = await ask('init');
  const ok = await ask(challenge);
  if (ok !== 'ok') throw new Error(`lond did not accept the challenge (${ok.slice(0, 20)})`);
  await ask('pong');
  const buildkey = await ask('ekey');
  return londKey(peerId, clientId, buildkey);
}

class Pool {
  private free: Channel[] = [];
  private waiting: Client[] = [];
  private waitHead = 0;
  readonly lat = new Samples();
  recording = false;
  running = true;
  count = 0;
  wrong = 0;
  outstanding = 0;
  private idle: (() => void) | null = null;

  constructor(private readonly keepLatencies: boolean) {}

  addChannel(ch: Channel): void {
    this.free.push(ch);
  }

  fire(c: Client): void {
    c.t0 = performance.now();
    this.outstanding++;
    const ch = this.free.pop();
    if (ch) ch.send(c);
    else this.waiting.push(c);
  }

  answered(ch: Channel, c: Client, line: Buffer): void {
    const t = performance.now();
    this.outstanding--;
    if (this.recording) {
      this.count++;
      if (this.keepLatencies) this.lat.push(t - c.t0);
      const e = c.spec.expect;
      if (e !== null && !line.equals(e)) this.wrong++;
    }
    if (this.waitHead < this.waiting.length) {
      const next = this.waiting[this.waitHead++] as Client;
      if (this.waitHead === this.waiting.length) {
        this.waiting.length = 0;
        this.waitHead = 0;
      }
      ch.send(next);
    } else {
      this.free.push(ch);
    }
    if (this.running) this.fire(c);
    else if (this.outstanding === 0 && this.idle) this.idle();
  }

  /** Stops re-firing; resolves when every request in flight has its answer (or after maxMs). */
  drain(maxMs: number): Promise<void> {
    this.running = false;
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.idle = null;
        resolve();
      };
      const t = setTimeout(done, maxMs);
      this.idle = done;
    });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function openChannels(target: Target, n: number, pool: Pool): Promise<Channel[]> {
  const channels: Channel[] = [];
  try {
    for (let i = 0; i < n; i++) {
      if (target.kind === 'unix') {
        const sock = await connect({ path: target.path });
        channels.push(new SocketChannel(new LineSocket(sock), pool, null));
      } else {
        const sock = await connect({ host: target.host, port: target.port });
        sock.setNoDelay(true);
        const ls = new LineSocket(sock);
        const key = await londHandshake(ls, target.peerId, target.clientId);
        channels.push(new SocketChannel(ls, pool, key));
      }
    }
  } catch (err) {
    for (const ch of channels) ch.close();
    throw err;
  }
  return channels;
}

/**
 * A closed-loop load whose connections stay open between runs, so that several targets
 * can take turns in short slices: conditions on a shared machine change by the second,
 * and alternating slices expose every target to the same ones. Results accumulate over
 * all runs until read.
 */
export class Load {
  private seconds = 0;
  private constructor(
    private readonly pool: Pool,
    private readonly channels: Channel[],
    private readonly clients: Client[],
  ) {}

  static async open(target: Target, specs: ClientSpec[], latencies = true): Promise<Load> {
    const pool = new Pool(latencies);
    const n = target.kind === 'unix' ? specs.length : Math.min(target.sessions, specs.length);
    const channels = await openChannels(target, n, pool);
    for (const ch of channels) pool.addChannel(ch);
    const clients = specs.map((spec) => new Client(spec, Buffer.concat([spec.request, Buffer.from('\n')])));
    return new Load(pool, channels, clients);
  }

  /** All clients fire for warmupMs unrecorded, then durationMs recorded; then in-flight requests finish. */
  async run(warmupMs: number, durationMs: number, onWindow?: (edge: 'start' | 'end') => void): Promise<void> {
    const pool = this.pool;
    pool.running = true;
    for (const c of this.clients) pool.fire(c);
    await sleep(warmupMs);
    onWindow?.('start');
    pool.recording = true;
    const start = performance.now();
    await sleep(durationMs);
    pool.recording = false;
    this.seconds += (performance.now() - start) / 1000;
    onWindow?.('end');
    await pool.drain(5000);
  }

  result(): LoadResult {
    const p = this.pool;
    return { requests: p.count, seconds: this.seconds, rps: p.count / this.seconds, p50Ms: p.lat.percentile(50), p99Ms: p.lat.percentile(99), wrong: p.wrong, channels: this.channels.length };
  }

  close(): void {
    for (const ch of this.channels) ch.close();
  }
}

/** Runs one closed-loop load and reports what happened in the measured window. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const load = await Load.open(opts.target, opts.clients, opts.latencies ?? true);
  try {
    await load.run(opts.warmupMs, opts.durationMs, opts.onWindow);
    return load.result();
  } finally {
    load.close();
  }
}
