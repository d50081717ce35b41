/**
 * Small tools for talking to a booted container's systemd and journald from the system
 * tests: unit properties, journal cursors, and a one-request client run inside the
 * container as the web server would run it. Everything goes through Container.exec.
 */
import { CommandError, Container, ExecOptions, RunResult } from './harness';

/**
 * One request, one answer line over a UNIX socket, in the container's own node (18 on
 * Debian 12, so nothing newer). The request comes on standard input, not as an
 * argument: journald records every process's command line (_CMDLINE of runuser's PAM
 * lines), and the test searches the journal for the plaintexts of encrypted requests.
 * Prints the answer without its newline; exit 1 on a socket error, 2 when the server
 * closes before a full line.
 */
export const CLIENT_JS = `
const path = process.argv[1];
let request = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { request += d; });
process.stdin.on('end', () => {
  const s = require('net').connect(path);
  let buf = '';
  let done = false;
  s.setEncoding('utf8');
  s.on('connect', () => s.write(request + '\\n'));
  s.on('data', (d) => {
    buf += d;
    const nl = buf.indexOf('\\n');
    if (nl >= 0 && !done) { done = true; process.stdout.write(buf.slice(0, nl)); s.destroy(); }
  });
  s.on('end', () => { if (!done) { process.stdout.write(buf); process.exit(2); } });
  s.on('error', (e) => { console.error(e.message); process.exit(1); });
});
`;

export function secondsSince(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` until it returns something other than undefined; rejects after
 * `timeoutMs` naming `what` and the last value seen by `describeLast`.
 */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 200, describeLast?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${describeLast ? ` (last: ${describeLast()})` : ''}`);
    await sleep(intervalMs);
  }
}

/** One journal entry as `journalctl -o json` prints it (binary fields come as arrays). */
export type JournalEntry = Record<string, unknown>;

export function parseJournalJson(text: string): JournalEntry[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as JournalEntry);
}

export function entryMessage(e: JournalEntry): string {
  const m = e.MESSAGE;
  if (typeof m === 'string') return m;
  if (Array.isArray(m)) return Buffer.from(m as number[]).toString('utf8');
  return '';
}

/** Every field of an entry as text (binary fields decoded), for searching it. */
export function entryText(e: JournalEntry): string {
  return Object.entries(e)
    .map(([k, v]) => `${k}=${Array.isArray(v) && v.every((x) => typeof x === 'number') ? Buffer.from(v as number[]).toString('utf8') : JSON.stringify(v)}`)
    .join('\n');
}

/** A container seen through systemctl and journalctl. */
export class Systemd {
  constructor(readonly c: Container) {}

  async sh(script: string, opts: ExecOptions = {}): Promise<RunResult> {
    try {
      return await this.c.exec(['sh', '-c', script], { timeoutMs: 120_000, ...opts });
    } catch (err) {
      // "Job for gatewayc.service failed" says nothing about why: the journal does.
      if (!(err instanceof CommandError) || !script.includes('systemctl')) throw err;
      const journal = await this.c.exec(['journalctl', '--no-pager', '-o', 'short-precise', '-n', '60'], { allowFail: true, timeoutMs: 30_000 }).catch(() => undefined);
      err.message += `\n--- the journal's last lines\n${journal?.stdout.trimEnd() ?? '(not readable)'}`;
      throw err;
    }
  }

  async out(script: string, opts: ExecOptions = {}): Promise<string> {
    return (await this.sh(script, opts)).stdout.trim();
  }

  /** `systemctl show -p A,B unit` as an object. */
  async show(unit: string, props: string[]): Promise<Record<string, string>> {
    const r = await this.c.exec(['systemctl', 'show', '-p', props.join(','), unit]);
    const res: Record<string, string> = {};
    for (const line of r.stdout.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) res[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return res;
  }

  async prop(unit: string, prop: string): Promise<string> {
    return (await this.show(unit, [prop]))[prop] ?? '';
  }

  /** Sends one request line to a UNIX socket from inside the container; the answer line. */
  async ask(socketPath: string, request: string, user = 'www-data', timeoutMs = 60_000): Promise<string> {
    return (await this.c.exec(['node', '-e', CLIENT_JS, socketPath], { user, timeoutMs, input: request })).stdout;
  }

  /** The cursor of the newest journal entry: later reads start after it. */
  async cursor(): Promise<string> {
    const [entry] = parseJournalJson((await this.c.exec(['journalctl', '--no-pager', '-o', 'json', '-n', '1'])).stdout);
    const cursor = entry?.__CURSOR;
    if (typeof cursor !== 'string') throw new Error('the journal gave no cursor');
    return cursor;
  }

  /** journalctl -o json with `args`, parsed. */
  async journal(args: string[]): Promise<JournalEntry[]> {
    return parseJournalJson((await this.c.exec(['journalctl', '--no-pager', '-o', 'json', ...args])).stdout);
  }

  /**
   * A unit's journal lines (its processes' and systemd's about it), optionally only those
   * after a cursor and at or above a priority (0-7). With a cursor the matching is done
   * here: journalctl 252 (Debian 12) skips the first matching entry when --after-cursor
   * is combined with -u or -p and the cursor's own entry does not match.
   */
  async messages(unit: string, opts: { after?: string; maxPriority?: number } = {}): Promise<string[]> {
    const service = unit.includes('.') ? unit : `${unit}.service`;
    let entries: JournalEntry[];
    if (opts.after === undefined) {
      entries = await this.journal(['-u', service, ...(opts.maxPriority !== undefined ? ['-p', String(opts.maxPriority)] : [])]);
    } else {
      entries = (await this.journal([`--after-cursor=${opts.after}`])).filter((e) =>
        (e._SYSTEMD_UNIT === service || (e.UNIT === service && e._PID === '1')) &&
        (opts.maxPriority === undefined || Number(e.PRIORITY) <= opts.maxPriority));
    }
    return entries.map(entryMessage);
  }
}
