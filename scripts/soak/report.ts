// The soak's output: a short table a person reads at a glance, and the JSON beside it.
import { fmt, table } from '../bench/stats';
import type { AnswerKind, Violation } from './checker';
import type { LogSummary } from './daemon';
import type { PeerStats } from './londs';
import { FAULT_KINDS } from './schedule';
import { HOSTILE_KINDS, HostileOutcome } from './spool';

export interface Sample {
  t: number;
  rssMb: number;
  fds: number;
  start: number;
}

export interface SoakResult {
  seed: number;
  replay: string;
  chaosSeconds: number;
  elapsedSeconds: number;
  peers: { total: number; inHostsAtStart: number; maxSessions: number };
  requestTimeoutS: number;
  marginS: number;
  requests: number;
  answers: Record<AnswerKind, number>;
  conLostExcused: number;
  cutExcused: number;
  conLostBy: Record<string, number>;
  cutBy: Record<string, number>;
  connectFailures: number;
  connectFailuresExcused: number;
  pipelinedOverTimeout: number;
  faults: Record<string, number>;
  faultNotes: Record<string, number>;
  violations: number;
  violationsByKind: Record<string, number>;
  violationList: Violation[];
  delayedWritten: number;
  delayedDelivered: number;
  delayedDuplicated: number;
  delayedLost: number;
  delayedWriteRetries: number;
  delayedLatencyMs: { p50: number; p99: number };
  latencyUntouchedMs: { p50: number; p99: number; n: number };
  latencyAllMs: { p50: number; p99: number; n: number };
  daemon: {
    starts: number;
    sigkills: number;
    crashes: number;
    /** SIGTERM at the end, with an idle client connected. */
    stop: { code: number | null; signal: string | null; ms: number };
    rssMb: { start: number; peak: number; end: number };
    fds: { start: number; peak: number; end: number };
    /** RSS and fds of the last daemon over its life: first and last quarter (medians). */
    trend: { rssMb: [number, number]; fds: [number, number]; seconds: number };
    samples: Sample[];
    log: LogSummary;
  };
  londs: { maxSessionsSeen: number; peers: Record<string, PeerStats> };
  hostile: HostileOutcome[];
}

const KINDS: AnswerKind[] = ['ok', 'con_lost', 'cut', 'wrong', 'unexpected', 'none'];

function medianOf(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length === 0 ? NaN : (v[v.length >> 1] as number);
}

/** Medians of the first and the last quarter of the last daemon's samples. */
export function trend(samples: Sample[]): SoakResult['daemon']['trend'] {
  const last = samples.length > 0 ? (samples[samples.length - 1] as Sample).start : 0;
  const mine = samples.filter((s) => s.start === last);
  const q = Math.max(1, Math.floor(mine.length / 4));
  const head = mine.slice(0, q);
  const tail = mine.slice(-q);
  const secs = mine.length > 1 ? (mine[mine.length - 1] as Sample).t - (mine[0] as Sample).t : 0;
  return {
    rssMb: [medianOf(head.map((s) => s.rssMb)), medianOf(tail.map((s) => s.rssMb))],
    fds: [medianOf(head.map((s) => s.fds)), medianOf(tail.map((s) => s.fds))],
    seconds: Math.round(secs),
  };
}

/** In the schedule's order; a reload's parts after it. */
function faultsLine(f: Record<string, number>): string {
  const parts: string[] = [];
  for (const k of FAULT_KINDS) {
    if (!f[k]) continue;
    const sub = k === 'reload' ? ['remove', 'add', 'move'].map((p) => `${p} ${f[`reload: ${p}`] ?? 0}`).join(', ') : '';
    parts.push(`${k} ${f[k]}${sub ? ` (${sub})` : ''}`);
  }
  return parts.join(', ') || 'none';
}

function sessionsLine(r: SoakResult): string {
  const max = r.peers.maxSessions;
  const momentary = Object.values(r.londs.peers).reduce((a, p) => a + p.momentary, 0);
  const seen = r.londs.maxSessionsSeen;
  const sustained = r.violationsByKind.sessions ?? 0;
  const over = seen <= max ? '' : sustained > 0 ? `; above it for longer than 300 ms ${sustained} times` : `; above it only while one closed and another opened (< 300 ms, ${momentary} times)`;
  return `at most ${seen} TCP connections to one peer at once (gatewaycMaxSessions ${max})${over}`;
}

function list(rec: Record<string, number>): string {
  const e = Object.entries(rec);
  return e.length === 0 ? 'none' : e.map(([k, v]) => `${k} ${v}`).join(', ');
}

function ms(v: number): string {
  if (!Number.isFinite(v)) return '-';
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 2 : 0)} ms`;
}

export function hostileRows(h: HostileOutcome[]): string[][] {
  return HOSTILE_KINDS.filter((k) => h.some((o) => o.kind === k)).map((k) => {
    const os = h.filter((o) => o.kind === k);
    const reached = os.filter((o) => o.payloadBytes !== null);
    const blocked = os.filter((o) => o.canaryDeliveredAt === null || o.canaryDeliveredAt > o.removedAt);
    const never = os.filter((o) => o.canaryDeliveredAt === null);
    const readers = os.filter((o) => o.readerBlocked);
    const left = os.filter((o) => o.leftInSpool);
    const sizes = reached.map((o) => o.payloadBytes as number);
    return [
      k,
      String(os.length),
      k === 'symlink' || k === 'oversized' ? `${reached.length}${sizes.length > 0 ? ` (max ${Math.max(...sizes)} B)` : ''}` : '-',
      `${blocked.length}${never.length > 0 ? ` (${never.length} never)` : ''}`,
      k === 'fifo' ? String(readers.length) : '-',
      String(left.length),
    ];
  });
}

export function formatTable(r: SoakResult): string {
  const a = r.answers;
  const d = r.daemon;
  const rows: string[][] = [
    ['requests', `${r.requests} (${fmt(r.requests / Math.max(1, r.chaosSeconds))}/s over the chaos)`],
    [
      'answers',
      `ok ${a.ok}, con_lost ${a.con_lost} (faulted ${r.conLostExcused}, untouched ${a.con_lost - r.conLostExcused}), cut ${a.cut} (by a kill/removal ${r.cutExcused}), ${KINDS.slice(3)
        .map((k) => `${k} ${a[k]}`)
        .join(', ')}`,
    ],
    ...(r.pipelinedOverTimeout > 0 ? [['pipelined', `${r.pipelinedOverTimeout} answers came more than ${r.requestTimeoutS + r.marginS} s after their write but in time after the answer before them (one connection's requests are carried one at a time)`]] : []),
    ['con_lost excused', `${list(r.conLostBy)}; cut: ${list(r.cutBy)}`],
    ['connects refused', `${r.connectFailures} (${r.connectFailuresExcused} while the daemon was down or the peer removed)`],
    ['faults', faultsLine(r.faults)],
    ...(Object.keys(r.faultNotes).length > 0 ? [['fault notes', list(r.faultNotes)]] : []),
    ['VIOLATIONS', r.violations === 0 ? '0' : `${r.violations}: ${violationsLine(r.violationList)}`],
    ['delayed', `written ${r.delayedWritten}, delivered ${r.delayedDelivered}, duplicated ${r.delayedDuplicated}, lost ${r.delayedLost}; delivery p50 ${ms(r.delayedLatencyMs.p50)}, p99 ${ms(r.delayedLatencyMs.p99)}`],
    ['latency untouched', `p50 ${ms(r.latencyUntouchedMs.p50)}, p99 ${ms(r.latencyUntouchedMs.p99)} (${r.latencyUntouchedMs.n} answers; all ok answers p50 ${ms(r.latencyAllMs.p50)}, p99 ${ms(r.latencyAllMs.p99)})`],
    ['daemon RSS MB', `start ${fmt(d.rssMb.start, 1)}, peak ${fmt(d.rssMb.peak, 1)}, end ${fmt(d.rssMb.end, 1)}; last daemon's first/last quarter ${fmt(d.trend.rssMb[0], 1)} -> ${fmt(d.trend.rssMb[1], 1)} over ${d.trend.seconds} s`],
    ['daemon fds', `start ${fmt(d.fds.start)}, peak ${fmt(d.fds.peak)}, end ${fmt(d.fds.end)}; last daemon's first/last quarter ${fmt(d.trend.fds[0])} -> ${fmt(d.trend.fds[1])}`],
    ['sessions per peer', sessionsLine(r)],
    ['daemon', `${d.starts} starts (${d.sigkills} SIGKILL, ${d.crashes} crashes), SIGTERM with an idle client connected: ${d.stop.code !== null ? `exit ${d.stop.code}` : `killed by ${d.stop.signal}`} after ${(d.stop.ms / 1000).toFixed(1)} s; log ${d.log.lines} lines, ${d.log.warn} warnings, ${d.log.error} errors, ${d.log.fatal} fatal`],
  ];
  const out: string[] = [];
  out.push(`gatewayc soak: ${r.chaosSeconds} s of chaos (${r.elapsedSeconds} s in all), seed ${r.seed}; replay: ${r.replay}`);
  out.push(`${r.peers.total} peers (${r.peers.inHostsAtStart} in hosts.tab at start), gatewaycMaxSessions ${r.peers.maxSessions}, gatewaycRequestTimeout ${r.requestTimeoutS} s (+${r.marginS} s margin)`);
  out.push('');
  out.push(twoColumns(rows));
  if (r.hostile.length > 0) {
    out.push('');
    out.push('hostile spool entries (not counted as violations; issue 11): "canary late" = a message behind the entry waited until it was removed');
    out.push(table(['entry', 'n', 'reached lond', 'canary late', 'reader blocked', 'left in spool'], hostileRows(r.hostile)));
  }
  const step = Math.max(1, Math.ceil(d.samples.length / 12));
  out.push('');
  out.push(`daemon RSS MB/fds over time (run second:MB/fds): ${d.samples.filter((_, i) => i % step === 0).map((s) => `${s.t.toFixed(0)}:${s.rssMb.toFixed(0)}/${s.fds}`).join(' ')}`);
  if (d.log.top.length > 0) {
    out.push('most frequent daemon warnings/errors:');
    for (const m of d.log.top.slice(0, 8)) out.push(`  ${String(m.count).padStart(6)} ${m.level} ${m.msg}`);
  }
  if (r.violationList.length > 0) {
    out.push('');
    out.push('violations, the first of each kind and peer (all of them are in the JSON file):');
    const groups = groupViolations(r.violationList);
    for (const g of groups.slice(0, 30)) {
      const first = g[0] as Violation;
      const last = g[g.length - 1] as Violation;
      out.push(violationLine(first, r.seed));
      if (g.length > 1) out.push(`  ... and ${g.length - 1} more like it on ${first.peer}, the last at ${(last.atMs / 1000).toFixed(1)} s (${last.id})`);
    }
    if (groups.length > 30) out.push(`... and ${groups.length - 30} more groups`);
  }
  return out.join('\n');
}

/** Violations by kind and peer, in the order their first one happened. */
export function groupViolations(vs: readonly Violation[]): Violation[][] {
  const groups = new Map<string, Violation[]>();
  for (const v of vs) {
    const k = `${v.kind}\0${v.peer}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(v);
  }
  return [...groups.values()];
}

function violationsLine(vs: readonly Violation[]): string {
  const byKind = new Map<string, Map<string, number>>();
  for (const v of vs) {
    let m = byKind.get(v.kind);
    if (!m) byKind.set(v.kind, (m = new Map()));
    m.set(v.peer, (m.get(v.peer) ?? 0) + 1);
  }
  return [...byKind.entries()]
    .map(([kind, peers]) => {
      const n = [...peers.values()].reduce((a, b) => a + b, 0);
      const per = [...peers.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([p, c]) => `${p} ${c}`).join(', ');
      return `${kind} ${n} (${per}${peers.size > 6 ? ', ...' : ''})`;
    })
    .join(', ');
}

/** Labels on the left, values wrapped at word boundaries to fit 110 columns. */
function twoColumns(rows: string[][]): string {
  const w = Math.max(...rows.map((r) => (r[0] as string).length)) + 2;
  const out: string[] = [];
  for (const [label, value] of rows as [string, string][]) {
    let line = label.padEnd(w);
    for (const word of value.split(' ')) {
      if (line.length + word.length > 110 && line.trim() !== label) {
        out.push(line.trimEnd());
        line = ' '.repeat(w);
      }
      line += `${word} `;
    }
    out.push(line.trimEnd());
  }
  return out.join('\n');
}

export function violationLine(v: Violation, seed: number): string {
  return `VIOLATION ${v.kind} ${v.id} peer ${v.peer} at ${(v.atMs / 1000).toFixed(1)} s: ${v.detail} (seed ${seed})`;
}
