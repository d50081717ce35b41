import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** Repository root, from build/test/support. */
export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const GATEWAYC = path.join(ROOT, 'bin', 'gatewayc');

export interface PeerLine {
  id: string;
  address: string;
}

export interface DaemonSetup {
  hostId: string;
  peers: PeerLine[];
  port: number;
  /** Extra PerlSetVar lines (key → value), e.g. short timeouts for a test. */
  settings?: Record<string, string | number>;
  env?: NodeJS.ProcessEnv;
  /** Wait for every peer socket and the ready line (default true). */
  waitReady?: boolean;
  /** Run the daemon as this user (the test directory is given to it): attacks that need one. */
  user?: { uid: number; gid: number };
}

export interface LogLine {
  level: number;
  msg: string;
  peer?: string;
  [k: string]: unknown;
}

/** Test defaults: short enough that faults resolve in seconds, long enough for a loaded CI machine. */
const TEST_SETTINGS: Record<string, string | number> = {
  gatewaycConnectTimeout: 2,
  gatewaycHandshakeTimeout: 3,
  gatewaycRequestTimeout: 5,
  gatewaycMaxAttempts: 3,
  gatewaycRetryMax: 2,
  gatewaycLogLevel: 'debug',
  gatewaycRescanInterval: 1,
};

export function writeHostsTab(dir: string, hostId: string, peers: PeerLine[]): void {
  const lines = ['# test hosts.tab', `${hostId}:testdom:library:${hostId}.example:127.0.0.1`, ...peers.map((p) => `${p.id}:testdom:library:${p.id}.example:${p.address}`)];
  fs.writeFileSync(path.join(dir, 'hosts.tab'), `${lines.join('\n')}\n`);
}

export function writeConfig(file: string, dir: string, setup: Pick<DaemonSetup, 'hostId' | 'port' | 'settings'>): void {
  const settings: Record<string, string | number> = {
    lonHostID: setup.hostId,
    lonTabDir: dir,
    lonSockDir: path.join(dir, 'sock'),
    londPort: setup.port,
    gatewaycDelayedDir: path.join(dir, 'spool'),
    gatewaycControlSocket: path.join(dir, 'control'),
    ...TEST_SETTINGS,
    ...setup.settings,
  };
  fs.writeFileSync(file, Object.entries(settings).map(([k, v]) => `PerlSetVar ${k} ${v}`).join('\n') + '\n');
}

/** The real daemon as a child process, with its log lines parsed. */
export class TestDaemon {
  readonly logs: LogLine[] = [];
  readonly rawOutput: string[] = [];
  readonly exited: Promise<number | null>;
  private buf = '';

  constructor(
    readonly proc: ChildProcess,
    readonly dir: string,
    readonly configFile: string,
  ) {
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.stdout?.on('data', (chunk: Buffer) => this.onOutput(chunk.toString('utf8')));
    proc.stderr?.on('data', (chunk: Buffer) => this.rawOutput.push(chunk.toString('utf8')));
  }

  get sockDir(): string {
    return path.join(this.dir, 'sock');
  }
  get spoolDir(): string {
    return path.join(this.dir, 'spool');
  }
  get controlPath(): string {
    return path.join(this.dir, 'control');
  }
  socketPath(peer: string): string {
    return path.join(this.sockDir, peer);
  }

  private onOutput(text: string): void {
    this.rawOutput.push(text);
    this.buf += text;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        // not a JSON log line: kept in rawOutput
      }
    }
  }

  /** Resolves once a log line matches; rejects after timeoutMs with the log so far. */
  async waitLog(pred: (l: LogLine) => boolean, timeoutMs = 10_000, what = 'log line'): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    while (Date.now() < deadline) {
      for (; seen < this.logs.length; seen++) {
        const l = this.logs[seen] as LogLine;
        if (pred(l)) return l;
      }
      seen = 0;
      const found = this.logs.find(pred);
      if (found) return found;
      await sleep(20);
    }
    throw new Error(`timed out waiting for ${what}; log:\n${this.rawOutput.join('').slice(-4000)}`);
  }

  hasLog(pred: (l: LogLine) => boolean): boolean {
    return this.logs.some(pred);
  }

  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }

  /** SIGTERM and wait; returns the exit code. */
  async stop(timeoutMs = 10_000): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc.exitCode;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  cleanup(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function tempDir(prefix = 'gatewayc-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes a config and hosts.tab in a temp dir and starts bin/gatewayc on it. */
export async function startDaemon(setup: DaemonSetup, existingDir?: string): Promise<TestDaemon> {
  const dir = existingDir ?? tempDir();
  const configFile = path.join(dir, 'gatewayc.conf');
  if (!existingDir || !fs.existsSync(configFile)) {
    writeConfig(configFile, dir, setup);
    writeHostsTab(dir, setup.hostId, setup.peers);
  }
  return launch(dir, configFile, setup.peers.map((p) => p.id), setup.env, setup.waitReady ?? true, setup.user);
}

function chownTree(p: string, uid: number, gid: number): void {
  fs.chownSync(p, uid, gid);
  if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}

export async function launch(dir: string, configFile: string, peerIds: string[], env?: NodeJS.ProcessEnv, waitReady = true, user?: { uid: number; gid: number }): Promise<TestDaemon> {
  if (user) chownTree(dir, user.uid, user.gid);
  const proc = spawn(process.execPath, [GATEWAYC, '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  const d = new TestDaemon(proc, dir, configFile);
  if (waitReady) {
    await d.waitLog((l) => l.event === 'daemon.ready', 10_000, 'the ready line');
    for (const id of peerIds) {
      if (!fs.existsSync(d.socketPath(id))) throw new Error(`socket for ${id} missing after ready`);
    }
  }
  return d;
}

/** A local client: one UNIX connection, request lines in, answer lines out, in order. */
export class Client {
  private buf = Buffer.alloc(0);
  private waiting: { resolve: (b: Buffer) => void; reject: (e: Error) => void }[] = [];
  private ended = false;
  private constructor(readonly sock: net.Socket) {
    sock.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      let nl: number;
      while ((nl = this.buf.indexOf(10)) >= 0) {
        const line = this.buf.subarray(0, nl);
        this.buf = this.buf.subarray(nl + 1);
        this.waiting.shift()?.resolve(Buffer.from(line));
      }
    });
    const fail = (): void => {
      this.ended = true;
      for (const w of this.waiting.splice(0)) w.reject(new Error('connection closed before an answer'));
    };
    sock.on('close', fail);
    sock.on('error', fail);
  }

  static connect(socketPath: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(socketPath);
      sock.once('connect', () => resolve(new Client(sock)));
      sock.once('error', reject);
    });
  }

  /** Sends one request line and resolves with its answer (without '\n'). */
  askRaw(line: Buffer | string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.ended) return reject(new Error('connection closed'));
      this.waiting.push({ resolve, reject });
      this.sock.write(Buffer.concat([Buffer.isBuffer(line) ? line : Buffer.from(line), Buffer.from('\n')]));
    });
  }

  async ask(line: Buffer | string): Promise<string> {
    return (await this.askRaw(line)).toString('utf8');
  }

  close(): void {
    this.sock.destroy();
  }
}

/** lonnet's way: connect, one line, one answer, close. */
export async function ask(socketPath: string, line: string | Buffer): Promise<string> {
  const c = await Client.connect(socketPath);
  try {
    return await c.ask(line);
  } finally {
    c.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitUntil(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
