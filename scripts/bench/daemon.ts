// Starts bin/gatewayc on a throw-away config for the benchmark and times its READY line.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { PeerSpec } from './helper';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
/** The daemon's entry script; another build can be compared with --daemon. */
export const GATEWAYC = path.join(ROOT, 'bin', 'gatewayc');
export const HOST_ID = 'benchhost';

export interface BenchDaemonOptions {
  peers: PeerSpec[];
  port: number;
  /** Extra PerlSetVar settings, e.g. gatewaycMaxSessions. */
  settings?: Record<string, string | number>;
  /** Flags for node itself, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** Entry script to run instead of this checkout's bin/gatewayc. */
  entry?: string;
  /** Run in this existing directory (a restart keeps its spool and sockets); stop() leaves it. */
  dir?: string;
  /** Every chunk the daemon writes, after READY too (the soak scans and keeps its log). */
  onOutput?: (text: string, stream: 'stdout' | 'stderr') => void;
  /** Run the daemon as this user and group (the soak drops root, as the unit does). */
  uid?: number;
  gid?: number;
}

/** Writes the daemon's config file and hosts.tab into `dir`; returns the config file's path. */
export function writeDaemonFiles(dir: string, opts: Pick<BenchDaemonOptions, 'peers' | 'port' | 'settings'>): string {
  const settings: Record<string, string | number> = {
    lonHostID: HOST_ID,
    lonTabDir: dir,
    lonSockDir: path.join(dir, 'sock'),
    londPort: opts.port,
    gatewaycDelayedDir: path.join(dir, 'spool'),
    gatewaycControlSocket: path.join(dir, 'control'),
    // The fake lond speaks the 2002 exchange only; say so rather than rely on auto's fallback.
    gatewaycKeyMode: 'insecure',
    ...opts.settings,
  };
  const configFile = path.join(dir, 'gatewayc.conf');
  fs.writeFileSync(configFile, Object.entries(settings).map(([k, v]) => `PerlSetVar ${k} ${v}\n`).join(''));
  const hosts = [`${HOST_ID}:benchdom:library:${HOST_ID}.example:127.0.0.1`, ...opts.peers.map((p) => `${p.id}:benchdom:library:${p.id}.example:${p.address}`)];
  fs.writeFileSync(path.join(dir, 'hosts.tab'), `${hosts.join('\n')}\n`);
  return configFile;
}

export class BenchDaemon {
  readonly exited: Promise<void>;
  /** Milliseconds from spawn to the " ready: " log line. */
  readyMs = NaN;
  private out = '';
  private tail: string[] = [];
  private onReady: (() => void) | null = null;

  private constructor(
    readonly proc: ChildProcess,
    readonly dir: string,
    private readonly spawnedAt: number,
    private readonly ownsDir: boolean,
    hook: BenchDaemonOptions['onOutput'],
  ) {
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    proc.stdout?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      hook?.(text, 'stdout');
      this.onOutput(text);
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      hook?.(text, 'stderr');
      this.keep(text);
    });
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  socketPath(peer: string): string {
    return path.join(this.dir, 'sock', peer);
  }

  private keep(text: string): void {
    this.tail.push(text);
    if (this.tail.length > 50) this.tail.shift();
  }

  private onOutput(text: string): void {
    this.keep(text);
    if (!Number.isNaN(this.readyMs)) return; // after READY the log is only drained
    this.out += text;
    let nl: number;
    while ((nl = this.out.indexOf('\n')) >= 0) {
      const line = this.out.slice(0, nl);
      this.out = this.out.slice(nl + 1);
      if (line.includes(' ready: ')) {
        this.readyMs = performance.now() - this.spawnedAt;
        this.out = '';
        this.onReady?.();
        return;
      }
    }
  }

  static async start(opts: BenchDaemonOptions): Promise<BenchDaemon> {
    const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-bench-'));
    const configFile = writeDaemonFiles(dir, opts);

    const spawnedAt = performance.now();
    // NODE_OPTIONS is cleared: the daemon must run without the legacy provider, as on Debian.
    const proc = spawn(process.execPath, [...(opts.nodeFlags ?? []), opts.entry ?? GATEWAYC, '--config', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    });
    const d = new BenchDaemon(proc, dir, spawnedAt, opts.dir === undefined, opts.onOutput);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`gatewayc not ready after 60 s:\n${d.tail.join('').slice(-3000)}`)), 60_000);
      d.onReady = () => {
        clearTimeout(t);
        resolve();
      };
      void d.exited.then(() => {
        clearTimeout(t);
        reject(new Error(`gatewayc exited before ready:\n${d.tail.join('').slice(-3000)}`));
      });
    });
    return d;
  }

  /** SIGTERM, then SIGKILL after timeoutMs; removes the temp dir it made (not one it was given). */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(t);
    }
    if (this.ownsDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
