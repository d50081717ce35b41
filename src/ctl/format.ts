/**
 * Pure formatting of the daemon's answers for a person: times in words, the status
 * table, the delayed list, the reload summary. No I/O here; `now` and colour are passed
 * in so that tests can pin them. Every string in an answer may come from a peer, a spool
 * file name or a config file: each goes through `visible` before it is laid out, so no
 * escape sequence reaches the terminal and no row can be split or added.
 */
import type { DaemonStatus, DelayedFile, PeerStatus, ReloadResult } from '../control/protocol';
import { visible, visibleStrings } from '../util/visible';

// ---- colour ----

export interface Paint {
  green(s: string): string;
  yellow(s: string): string;
  red(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

const sgr = (code: string) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;
export const COLOUR: Paint = { green: sgr('32'), yellow: sgr('33'), red: sgr('31'), dim: sgr('2'), bold: sgr('1') };
const id = (s: string): string => s;
export const NO_COLOUR: Paint = { green: id, yellow: id, red: id, dim: id, bold: id };

/** Colour only for a person at a terminal who has not asked for none (no-color.org). */
export function wantColour(isTTY: boolean, env: NodeJS.ProcessEnv): boolean {
  if (!isTTY) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return env.TERM !== 'dumb';
}

// ---- times in words ----

/** One unit, rounded down: "12 s", "3 min", "5 h", "2 d". */
export function span(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.floor(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** Two units, for an uptime: "12 s", "3 min 12 s", "2 h 5 min", "3 d 4 h". */
export function uptime(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function ago(at: number, now: number): string {
  const ms = now - at;
  return ms < 1000 ? 'just now' : `${span(ms)} ago`;
}

export function until(at: number, now: number): string {
  const ms = at - now;
  return ms < 1000 ? 'now' : `in ${span(ms)}`;
}

export function millis(ms: number | null): string {
  if (ms === null) return '-';
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 10) return `${(Math.round(ms * 10) / 10).toString()} ms`;
  return `${Math.round(ms)} ms`;
}

export function bytes(n: number | null): string {
  if (n === null) return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// ---- tables ----

/** A cell: its text, and how to paint it once padded (paint must not change its width). */
type Cell = string | { text: string; paint: (s: string) => string };

/**
 * Left-aligned columns two spaces apart, padded on the plain text so that colour codes
 * never disturb the alignment. The last column is not padded (free text).
 */
export function table(rows: Cell[][]): string[] {
  const text = (c: Cell): string => (typeof c === 'string' ? c : c.text);
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...text(c)].length)));
  return rows.map((row) =>
    row
      .map((c, i) => {
        const t = text(c);
        const padded = i === row.length - 1 ? t : t + ' '.repeat((widths[i] as number) - [...t].length);
        return typeof c === 'string' ? padded : c.paint(padded);
      })
      .join('  ')
      .replace(/\s+$/, ''),
  );
}

function stateCell(p: PeerStatus, now: number, paint: Paint): Cell {
  switch (p.state) {
    case 'up':
      return { text: p.upSince === null ? 'up' : `up ${span(now - p.upSince)}`, paint: paint.green };
    case 'connecting':
      return { text: 'connecting', paint: paint.yellow };
    case 'down':
      return { text: 'down', paint: paint.red };
    default:
      return { text: p.state, paint: paint.dim };
  }
}

function sessionsCell(s: PeerStatus['sessions']): string {
  const extra: string[] = [];
  if (s.busy > 0) extra.push(`${s.busy} busy`);
  if (s.opening > 0) extra.push(`${s.opening} opening`);
  return `${s.open}/${s.max}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

export const STATUS_COLUMNS = ['PEER', 'STATE', 'KEY', 'SESSIONS', 'QUEUE', 'FAILS', 'NEXT TRY', 'HANDSHAKE', 'P50', 'P99', 'DELAYED', 'REQUESTS', 'CON_LOST', 'LAST ERROR'];

export function peerRow(p: PeerStatus, now: number, paint: Paint): Cell[] {
  const lastError = p.lastError === null ? '-' : `${p.lastErrorAt === null ? '' : `${ago(p.lastErrorAt, now)}: `}${p.lastError}`;
  return [
    p.id,
    stateCell(p, now, paint),
    p.keyMode,
    sessionsCell(p.sessions),
    String(p.queued),
    p.failures > 0 ? { text: `${p.failures}/${p.maxAttempts}`, paint: p.failures >= p.maxAttempts ? paint.red : paint.yellow } : `${p.failures}/${p.maxAttempts}`,
    p.nextAttemptAt === null ? '-' : until(p.nextAttemptAt, now),
    millis(p.handshakeMs),
    millis(p.p50Ms),
    millis(p.p99Ms),
    String(p.delayed),
    String(p.requests),
    p.conLost > 0 ? { text: String(p.conLost), paint: paint.yellow } : '0',
    p.lastError === null ? '-' : { text: lastError, paint: p.state === 'up' ? paint.dim : paint.red },
  ];
}

function countStates(peers: PeerStatus[]): string {
  const n = new Map<string, number>();
  for (const p of peers) n.set(p.state, (n.get(p.state) ?? 0) + 1);
  return ['up', 'connecting', 'down', 'stopped']
    .filter((s) => n.has(s))
    .map((s) => `${n.get(s)} ${s}`)
    .join(', ');
}

export interface StatusView {
  now: number;
  paint: Paint;
  /** Only these peers (in this order); undefined = all. */
  only?: string[];
}

/** The header and table of `gatewayctl status`. */
export function formatStatus(raw: DaemonStatus, view: StatusView): string {
  const { now, paint } = view;
  const st = visibleStrings(raw);
  const out: string[] = [
    `${paint.bold(`gatewayc ${st.version}`)} (pid ${st.pid}), up ${uptime(st.uptimeSec)}, host id ${st.hostId}`,
    `config: ${st.configFiles.join(', ')}`,
  ];
  if (st.peers.length === 0) {
    out.push(`peers:  none configured in ${st.hostsFile}`, '', `No peers configured: add the other servers of the network to ${st.hostsFile} (id:domain:role:name:address, one a line), then run: systemctl reload gatewayc`);
    return `${out.join('\n')}\n`;
  }
  out.push(`peers:  ${st.peers.length} in ${st.hostsFile}: ${countStates(st.peers)}`, '');
  // Looked up by the ids as the daemon sent them, shown as made visible.
  const byId = new Map(raw.peers.map((p, i) => [p.id, st.peers[i] as PeerStatus]));
  const shown = view.only ? view.only.map((i) => byId.get(i)).filter((p): p is PeerStatus => p !== undefined) : st.peers;
  // Never cut to the terminal's width: the last error is what an administrator looks for.
  out.push(...table([STATUS_COLUMNS, ...shown.map((p) => peerRow(p, now, paint))]));
  return `${out.join('\n')}\n`;
}

export function formatDelayed(rawFiles: DelayedFile[], rawDir: string, now: number, rawPeer?: string, notListed = { waiting: 0, setAside: 0 }): string {
  const files = visibleStrings(rawFiles);
  const dir = visible(rawDir);
  const peer = rawPeer === undefined ? undefined : visible(rawPeer);
  // A daemon from before set-aside entries existed sends no `rejected`: all are waiting.
  const waiting = files.filter((f) => !f.rejected);
  const setAside = files.filter((f) => f.rejected);
  const out: string[] = [];
  if (waiting.length === 0 && notListed.waiting === 0) {
    out.push(`No delayed messages waiting${peer ? ` for ${peer}` : ''} in ${dir}.`);
  } else {
    const rows = waiting.map((f) => [f.name, f.peer, f.mtime === null ? '?' : span(now - f.mtime), bytes(f.size)]);
    const total = waiting.reduce((n, f) => n + (f.size ?? 0), 0);
    const all = waiting.length + notListed.waiting;
    const summary = notListed.waiting > 0
      ? `${all} messages waiting in ${dir}; the oldest ${waiting.length} listed (${bytes(total)})`
      : `${all} message${all === 1 ? '' : 's'} waiting (${bytes(total)}) in ${dir}`;
    out.push(...table([['NAME', 'PEER', 'AGE', 'SIZE'], ...rows]), '', summary);
  }
  if (setAside.length > 0) {
    const rows = setAside.map((f) => [f.name, f.peer || '-', f.mtime === null ? '?' : span(now - f.mtime), bytes(f.size), f.rejected ?? '']);
    const all = setAside.length + notListed.setAside;
    const listed = notListed.setAside > 0 ? `; ${setAside.length} listed` : '';
    out.push('', `${all} entr${all === 1 ? 'y' : 'ies'} set aside, never delivered (look at them, then remove them)${listed}:`, ...table([['NAME', 'PEER', 'AGE', 'SIZE', 'WHY'], ...rows]));
  }
  return `${out.join('\n')}\n`;
}

function list(ids: string[]): string {
  return ids.length === 0 ? 'none' : ids.map(visible).join(', ');
}

/** The one line `gatewayctl reload` prints on success (it is the unit's ExecReload). */
export function formatReload(r: ReloadResult): string {
  const changes: string[] = [];
  if (r.added.length) changes.push(`added ${list(r.added)}`);
  if (r.removed.length) changes.push(`removed ${list(r.removed)}`);
  if (r.reconnected.length) changes.push(`reconnected ${list(r.reconnected)}`);
  const what = changes.length ? changes.join('; ') : 'no peers added, removed or reconnected';
  const w = r.warnings.length;
  const warn = w ? ` (${w} warning${w === 1 ? '' : 's'}: see gatewayctl check, or journalctl -u gatewayc)` : '';
  return `reloaded: ${what}${warn}\n`;
}

export function formatRetry(peers: string[]): string {
  if (peers.length === 0) return 'retry: no peers configured\n';
  return `retry: attempt counters reset, peers that are not up reconnect now: ${list(peers)}\n`;
}
