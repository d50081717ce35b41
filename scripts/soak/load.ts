// The soak's steady load through the peer sockets: a persistent client per peer, clients
// that pipeline batches, lonnet-style one-shot clients, now and then a large answer — plain
// and `encrypt:` mixed. Every request carries a unique token; every line written and read
// is reported to the checker, which matches answers to requests.
import * as net from 'node:net';
import type { Checker } from './checker';
import type { Rng } from './rng';
import { liveRequest } from './wire';

export interface Targets {
  /** Peers in hosts.tab right now, open to new clients. */
  present(): readonly string[];
  isPresent(peer: string): boolean;
  socketPath(peer: string): string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let connSerial = 0;

/** One client connection: lines out, answer lines in (split without copying big answers twice). */
export class SoakConn {
  readonly id = `c${++connSerial}`;
  private outstanding = 0;
  private idle: (() => void)[] = [];
  private parts: Buffer[] = [];
  private closed = false;
  private abandoned = false;

  private constructor(
    readonly peer: string,
    readonly sock: net.Socket,
    private readonly checker: Checker,
    private readonly now: () => number,
  ) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.checker.closed(this.id, this.now(), this.abandoned);
      this.outstanding = 0;
      for (const f of this.idle.splice(0)) f();
    });
  }

  static open(path: string, peer: string, checker: Checker, now: () => number): Promise<SoakConn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ path });
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(new SoakConn(peer, sock, checker, now));
      });
      sock.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      let line = chunk.subarray(start, nl);
      if (this.parts.length > 0) {
        this.parts.push(line);
        line = Buffer.concat(this.parts);
        this.parts = [];
      }
      start = nl + 1;
      this.checker.line(this.id, line, this.now());
      if (this.outstanding > 0) this.outstanding--;
      if (this.outstanding === 0) for (const f of this.idle.splice(0)) f();
    }
    if (start < chunk.length) this.parts.push(chunk.subarray(start));
  }

  /** Writes the requests in one go (a batch is pipelined). */
  send(reqs: { token: string; size: number; encrypt: boolean }[]): void {
    const lines: Buffer[] = [];
    const t = this.now();
    for (const r of reqs) {
      const { line, expect } = liveRequest(r.token, r.size, r.encrypt);
      this.checker.sent(this.id, this.peer, r.token, expect, t);
      lines.push(line, NL);
      this.outstanding++;
    }
    this.sock.write(Buffer.concat(lines));
  }

  /** Resolves true once every answer is in (or the connection closed), false after maxMs. */
  waitIdle(maxMs: number): Promise<boolean> {
    if (this.outstanding === 0 || this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.idle = this.idle.filter((f) => f !== done);
        resolve(false);
      }, maxMs);
      const done = (): void => {
        clearTimeout(t);
        resolve(true);
      };
      this.idle.push(done);
    });
  }

  close(): void {
    this.sock.end();
  }

  /** Gives up on the answers still owed (they are reported as never answered). */
  abandon(): void {
    this.abandoned = true;
    this.sock.destroy();
  }
}

const NL = Buffer.from('\n');

export interface LoadOptions {
  /** How long a client waits for its answers before it gives up (well past the limit). */
  giveUpMs: number;
  pipelinedClients: number;
  oneShotClients: number;
}

/** The load: started once, follows the peers as reloads add and remove them, stopped once. */
export class Load {
  private running = false;
  private readonly loops = new Set<Promise<void>>();
  private readonly persistent = new Map<string, { stop: boolean }>();
  private readonly holders = new Set<string>();
  private tokenSeq = 0;
  connects = 0;

  constructor(
    private readonly checker: Checker,
    private readonly targets: Targets,
    private readonly rng: Rng,
    private readonly now: () => number,
    private readonly opts: LoadOptions,
  ) {}

  token(prefix = 'q'): string {
    return `${prefix}${++this.tokenSeq}`;
  }

  start(): void {
    this.running = true;
    this.syncPeers();
    for (let i = 0; i < this.opts.pipelinedClients; i++) this.spawn(() => this.pipelined());
    for (let i = 0; i < this.opts.oneShotClients; i++) this.spawn(() => this.oneShots());
    this.spawn(() => this.bigAnswers());
  }

  /**
   * After a reload: a persistent client for every present peer, none for removed ones; and
   * an idle client per peer, which (like a real one) does not know about reloads and keeps
   * its connection until its own time is up.
   */
  syncPeers(): void {
    if (!this.running) return;
    for (const [peer, flag] of this.persistent) {
      if (!this.targets.isPresent(peer)) {
        flag.stop = true;
        this.persistent.delete(peer);
      }
    }
    for (const peer of this.targets.present()) {
      if (this.persistent.has(peer)) continue;
      const flag = { stop: false };
      this.persistent.set(peer, flag);
      this.spawn(() => this.persistentClient(peer, flag));
      if (!this.holders.has(peer)) {
        this.holders.add(peer);
        this.spawn(() => this.idleHolder(peer));
      }
    }
  }

  /** Stops the peer's persistent client before a reload removes it. */
  forget(peer: string): void {
    const flag = this.persistent.get(peer);
    if (flag) flag.stop = true;
    this.persistent.delete(peer);
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const f of this.persistent.values()) f.stop = true;
    this.persistent.clear();
    await Promise.all([...this.loops]);
  }

  private spawn(f: () => Promise<void>): void {
    const p = f().catch((err: unknown) => {
      process.stderr.write(`soak: a load client failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    });
    this.loops.add(p);
    void p.finally(() => this.loops.delete(p));
  }

  private mix(): { encrypt: boolean; size: number } {
    const encrypt = this.rng.chance(0.4);
    const size = this.rng.chance(0.05) ? this.rng.int(1, 8192) : 0;
    return { encrypt, size };
  }

  /** A connection, or undefined (reported to the checker) when the socket refuses. */
  private async connect(peer: string): Promise<SoakConn | undefined> {
    this.connects++;
    try {
      return await SoakConn.open(this.targets.socketPath(peer), peer, this.checker, this.now);
    } catch (err) {
      this.checker.connectFailed(peer, this.token('k'), this.now(), (err as NodeJS.ErrnoException).code ?? String(err));
      await sleep(this.rng.int(100, 300));
      return undefined;
    }
  }

  /** Sends and waits; gives the connection up when the answers do not come. */
  private async exchange(c: SoakConn, reqs: { token: string; size: number; encrypt: boolean }[]): Promise<boolean> {
    c.send(reqs);
    if (await c.waitIdle(this.opts.giveUpMs)) return !c.isClosed;
    c.abandon();
    return false;
  }

  private async persistentClient(peer: string, flag: { stop: boolean }): Promise<void> {
    let c: SoakConn | undefined;
    while (this.running && !flag.stop) {
      if (!c || c.isClosed) {
        c = await this.connect(peer);
        if (!c) continue;
      }
      await this.exchange(c, [{ token: this.token(), ...this.mix() }]);
      await sleep(this.rng.int(5, 40));
    }
    c?.close();
  }

  /** Connects, sends nothing for 5-60 s, leaves; again while the peer is in hosts.tab. */
  private async idleHolder(peer: string): Promise<void> {
    while (this.running) {
      const c = await this.connect(peer);
      if (c) {
        const until = Date.now() + this.rng.int(5000, 60_000);
        while (this.running && Date.now() < until && !c.isClosed) await sleep(500);
        c.close();
      }
      await sleep(this.rng.int(0, 2000));
      if (!this.targets.isPresent(peer)) break;
    }
    this.holders.delete(peer);
  }

  private async pipelined(): Promise<void> {
    while (this.running) {
      const peers = this.targets.present();
      if (peers.length === 0) {
        await sleep(200);
        continue;
      }
      const peer = this.rng.pick(peers);
      const c = await this.connect(peer);
      if (!c) continue;
      const batches = this.rng.int(3, 10);
      for (let b = 0; b < batches && this.running && this.targets.isPresent(peer); b++) {
        const n = this.rng.int(2, 16);
        const reqs = Array.from({ length: n }, () => ({ token: this.token(), ...this.mix() }));
        if (!(await this.exchange(c, reqs))) break;
        await sleep(this.rng.int(0, 30));
      }
      c.close();
    }
  }

  /** lonnet's way: connect, one line, one answer, close. */
  private async oneShots(): Promise<void> {
    while (this.running) {
      const peers = this.targets.present();
      if (peers.length === 0) {
        await sleep(200);
        continue;
      }
      const peer = this.rng.pick(peers);
      const c = await this.connect(peer);
      if (!c) continue;
      await this.exchange(c, [{ token: this.token(), ...this.mix() }]);
      c.close();
      await sleep(this.rng.int(0, 20));
    }
  }

  /** Now and then an answer of 256 KiB to 6 MiB. */
  private async bigAnswers(): Promise<void> {
    while (this.running) {
      await sleep(this.rng.int(2000, 6000));
      const peers = this.targets.present();
      if (!this.running || peers.length === 0) continue;
      const peer = this.rng.pick(peers);
      const c = await this.connect(peer);
      if (!c) continue;
      const size = Math.round(256 * 1024 * Math.pow(24, this.rng.next()));
      await this.exchange(c, [{ token: this.token(), size, encrypt: this.rng.chance(0.3) }]);
      c.close();
    }
  }

  // Misbehaving clients (faults): not checked for answers, only for harm to others.

  /** Clients that vanish mid-request: after a whole line, half a line, or a pipelined burst. */
  async aborters(peer: string, rng: Rng): Promise<number> {
    const n = rng.int(3, 8);
    for (let i = 0; i < n; i++) {
      const sock = net.connect({ path: this.targets.socketPath(peer) });
      sock.on('error', () => undefined);
      await new Promise<void>((resolve) => {
        sock.once('connect', () => {
          const token = this.token('a');
          const { line } = liveRequest(token, rng.chance(0.2) ? 65536 : 0, rng.chance(0.4));
          const how = rng.int(0, 2);
          if (how === 0) sock.write(Buffer.concat([line, NL]));
          else if (how === 1) sock.write(line.subarray(0, Math.max(1, line.length >> 1)));
          else for (let k = 0; k < 5; k++) sock.write(Buffer.concat([liveRequest(this.token('a'), 0, false).line, NL]));
          setTimeout(() => {
            sock.destroy();
            resolve();
          }, rng.int(0, 30));
        });
        sock.once('error', () => resolve());
      });
    }
    return n;
  }

  /** A client that asks for large answers and never reads them, for `holdMs`. */
  async nonReader(peer: string, rng: Rng, holdMs: number): Promise<void> {
    const sock = net.connect({ path: this.targets.socketPath(peer) });
    sock.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      sock.once('connect', () => {
        sock.pause();
        const n = rng.int(8, 24);
        const lines: Buffer[] = [];
        for (let k = 0; k < n; k++) lines.push(liveRequest(this.token('n'), 512 * 1024, rng.chance(0.3)).line, NL);
        sock.write(Buffer.concat(lines));
        resolve();
      });
      sock.once('error', () => resolve());
    });
    await sleep(holdMs);
    sock.destroy();
  }
}
