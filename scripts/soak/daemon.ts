// The daemon under the soak: bench/daemon.ts's BenchDaemon, started again in the same
// directory after a SIGKILL (as systemd's Restart= would), reloaded with SIGHUP, its whole
// output kept in a log file and scanned as it comes for what must never be in it.
import * as fs from 'node:fs';
import { BenchDaemon, BenchDaemonOptions, writeDaemonFiles } from '../bench/daemon';
import type { PeerSpec } from '../bench/helper';
import { PLAINTEXT_MARK } from './wire';

export interface SoakDaemonOptions {
  dir: string;
  port: number;
  entry?: string;
  uid?: number;
  gid?: number;
  logFile: string;
  /** The marker was found in the daemon's output (incarnation, byte offset in the log file). */
  onPlaintext: (where: string) => void;
  /** The daemon exited without being told to (a crash). */
  onUnexpectedExit: (code: number | null, signal: string | null) => void;
}

/** Log lines by level and the most frequent warning/error messages (numbers folded). */
export interface LogSummary {
  lines: number;
  warn: number;
  error: number;
  fatal: number;
  top: { level: string; msg: string; count: number }[];
}

export class SoakDaemon {
  current: BenchDaemon | undefined;
  starts = 0;
  private expectingExit = false;
  private readonly log: number;
  private logClosed = false;
  private logBytes = 0;
  private carry = '';
  private partial = '';
  private reloadWaiters: ((line: { ok: boolean; msg: string }) => void)[] = [];
  private readonly levels = { lines: 0, warn: 0, error: 0, fatal: 0 };
  private readonly messages = new Map<string, { level: string; count: number }>();
  peers: PeerSpec[] = [];
  settings: Record<string, string | number> = {};

  constructor(private readonly opts: SoakDaemonOptions) {
    this.log = fs.openSync(opts.logFile, 'a');
  }

  get pid(): number | undefined {
    return this.current?.pid;
  }

  get running(): boolean {
    const p = this.current?.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Writes config and hosts.tab for the current peers and settings. */
  writeFiles(): void {
    writeDaemonFiles(this.opts.dir, { peers: this.peers, port: this.opts.port, settings: this.settings });
  }

  async start(): Promise<void> {
    this.starts++;
    this.note(`=== soak: daemon start #${this.starts} ===`);
    const o: BenchDaemonOptions = {
      dir: this.opts.dir,
      peers: this.peers,
      port: this.opts.port,
      settings: this.settings,
      entry: this.opts.entry,
      onOutput: (text) => this.onOutput(text),
      ...(this.opts.uid !== undefined ? { uid: this.opts.uid, gid: this.opts.gid } : {}),
    };
    this.expectingExit = false;
    const d = await BenchDaemon.start(o);
    this.current = d;
    d.proc.once('exit', (code, signal) => {
      if (this.current === d && !this.expectingExit) this.opts.onUnexpectedExit(code, signal);
    });
  }

  /** SIGKILL and wait for the process to be gone. */
  async kill(): Promise<void> {
    const d = this.current;
    if (!d) return;
    this.expectingExit = true;
    this.note('=== soak: SIGKILL ===');
    d.proc.kill('SIGKILL');
    await d.exited;
  }

  /** SIGHUP, then the daemon's own word that the reload is done (or refused). */
  async reload(timeoutMs: number): Promise<{ ok: boolean; msg: string; ms: number }> {
    const d = this.current;
    if (!d || !this.running) return { ok: false, msg: 'daemon not running', ms: 0 };
    const t0 = Date.now();
    const done = new Promise<{ ok: boolean; msg: string }>((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, msg: `no reload line within ${timeoutMs} ms` }), timeoutMs);
      this.reloadWaiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
    d.proc.kill('SIGHUP');
    const r = await done;
    return { ...r, ms: Date.now() - t0 };
  }

  /** SIGTERM (SIGKILL after `killAfterMs`), the exit status and how long it took. */
  async stop(killAfterMs = 10_000): Promise<{ code: number | null; signal: string | null; ms: number }> {
    const d = this.current;
    if (!d) return { code: null, signal: null, ms: 0 };
    this.expectingExit = true;
    const t0 = Date.now();
    if (this.running) await d.stop(killAfterMs);
    const ms = Date.now() - t0;
    // Output still in the pipe when the process exited comes after the 'exit' event.
    await new Promise((r) => setTimeout(r, 200));
    this.closeLog();
    return { code: d.proc.exitCode, signal: d.proc.signalCode, ms };
  }

  closeLog(): void {
    if (this.logClosed) return;
    this.logClosed = true;
    fs.closeSync(this.log);
  }

  private write(b: Buffer): void {
    if (this.logClosed) return;
    fs.writeSync(this.log, b);
    this.logBytes += b.length;
  }

  private note(line: string): void {
    this.write(Buffer.from(`${line}\n`));
  }

  private onOutput(text: string): void {
    const at = this.logBytes;
    this.write(Buffer.from(text, 'utf8'));
    // A marker split across two chunks is still found.
    const scan = this.carry + text;
    const i = scan.indexOf(PLAINTEXT_MARK);
    if (i >= 0) this.opts.onPlaintext(`daemon start #${this.starts}, log byte ${at - this.carry.length + i}`);
    this.carry = scan.slice(-(PLAINTEXT_MARK.length - 1));
    this.partial += text;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      this.onLine(this.partial.slice(0, nl));
      this.partial = this.partial.slice(nl + 1);
    }
  }

  private onLine(line: string): void {
    this.levels.lines++;
    let rec: { level?: number; msg?: string; event?: string };
    try {
      rec = JSON.parse(line) as { level?: number; msg?: string; event?: string };
    } catch {
      return;
    }
    const msg = typeof rec.msg === 'string' ? rec.msg : '';
    const level = rec.level ?? 30;
    // The event name where the daemon gives one; its sentence where it does not (older builds).
    const done = rec.event !== undefined ? rec.event === 'reload.done' : msg.startsWith('reloaded:');
    const refused = rec.event !== undefined ? rec.event === 'reload.refused' : msg.startsWith('reload refused');
    if (done || refused) {
      for (const w of this.reloadWaiters.splice(0)) w({ ok: done, msg });
    }
    if (level < 40) return;
    const name = level >= 60 ? 'fatal' : level >= 50 ? 'error' : 'warn';
    this.levels[name]++;
    // Numbers and file names vary from line to line; the kind of message is what counts.
    const kind = msg
      .replace(/'[^']*\/spool\/[^']*'/g, '<spool file>')
      .replace(/\b1\.[0-9]+\.hostile-[a-z]+\.[a-z0-9]+/g, '<hostile entry>')
      .replace(/[0-9]+(\.[0-9]+)?/g, 'N');
    const key = `${name} ${kind.slice(0, 140)}`;
    const m = this.messages.get(key);
    if (m) m.count++;
    else this.messages.set(key, { level: name, count: 1 });
  }

  /** Which of the session keys (32 lowercase hex digits each) occur anywhere in the log file kept so far. */
  keysInLog(keys: ReadonlySet<string>): string[] {
    const found = new Set<string>();
    const text = fs.readFileSync(this.opts.logFile, 'latin1');
    for (const m of text.matchAll(/[0-9a-fA-F]{32,}/g)) {
      const run = m[0].toLowerCase();
      for (let i = 0; i + 32 <= run.length; i++) {
        const k = run.slice(i, i + 32);
        if (keys.has(k)) found.add(k);
      }
    }
    return [...found];
  }

  summary(): LogSummary {
    const top = [...this.messages.entries()]
      .sort((a, b) => b[1].count - a[1].count)
      .slice(0, 12)
      .map(([k, v]) => ({ level: v.level, msg: k.slice(v.level.length + 1), count: v.count }));
    return { ...this.levels, top };
  }
}
