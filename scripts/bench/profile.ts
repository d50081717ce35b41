// Summarises a V8 .cpuprofile (node --cpu-prof): self and inclusive time per function,
// with positions mapped back to the TypeScript sources through the build's source maps.
// Usable alone: node build/scripts/bench/profile.js FILE.cpuprofile [TOP]
import * as fs from 'node:fs';
import { SourceMap } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  /** Function name and where it is: src/…/x.ts:line when a source map knows it. */
  name: string;
  where: string;
  selfMs: number;
  selfPct: number;
  totalMs: number;
  totalPct: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of samples where the process was idle (waiting in epoll). */
  idlePct: number;
  gcPct: number;
  top: ProfileEntry[];
  /** Functions of this repository's src/, by inclusive time: where the request path spends it. */
  ours: ProfileEntry[];
  byFile: { file: string; selfMs: number; selfPct: number }[];
}

const maps = new Map<string, SourceMap | null>();

function sourceMapFor(url: string): SourceMap | null {
  if (maps.has(url)) return maps.get(url) as SourceMap | null;
  let sm: SourceMap | null = null;
  try {
    const file = url.startsWith('file:') ? fileURLToPath(url) : url;
    const raw = fs.readFileSync(`${file}.map`, 'utf8');
    sm = new SourceMap(JSON.parse(raw));
  } catch {
    sm = null;
  }
  maps.set(url, sm);
  return sm;
}

/** `src/x/y.ts:12` for our own compiled code, `node:net` style names for the rest. */
export function locate(frame: CallFrame, root: string): string {
  const { url, lineNumber, columnNumber } = frame;
  if (url === '') return '';
  const sm = url.includes('/build/') ? sourceMapFor(url) : null;
  if (sm && lineNumber >= 0) {
    const e = sm.findEntry(lineNumber, columnNumber) as { originalSource?: string; originalLine?: number };
    if (e && e.originalSource) {
      const src = e.originalSource.startsWith('file:') ? fileURLToPath(e.originalSource) : path.resolve(path.dirname(url.startsWith('file:') ? fileURLToPath(url) : url), e.originalSource);
      return `${path.relative(root, src)}:${(e.originalLine ?? 0) + 1}`;
    }
  }
  const file = url.startsWith('file:') ? path.relative(root, fileURLToPath(url)) : url;
  return `${file}:${lineNumber + 1}`;
}

export function summarise(profile: CpuProfile, root: string, topN = 25): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const keyOf = (n: ProfileNode): string => `${n.callFrame.functionName}\u0000${n.callFrame.url}\u0000${n.callFrame.lineNumber}\u0000${n.callFrame.columnNumber}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const frames = new Map<string, CallFrame>();
  let all = 0;
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    // A sample lasts until the next one; the last gets the mean.
    const dt = i + 1 < timeDeltas.length ? (timeDeltas[i + 1] as number) : 0;
    all += dt;
    const leaf = byId.get(samples[i] as number);
    if (!leaf) continue;
    const k = keyOf(leaf);
    frames.set(k, leaf.callFrame);
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id) as ProfileNode;
      const nk = keyOf(n);
      if (seen.has(nk)) continue;
      seen.add(nk);
      frames.set(nk, n.callFrame);
      total.set(nk, (total.get(nk) ?? 0) + dt);
    }
  }
  const pct = (us: number): number => (all > 0 ? (100 * us) / all : 0);
  const named = (name: string): number => {
    let us = 0;
    for (const [k, v] of self) if (k.startsWith(`${name}\u0000`)) us += v;
    return us;
  };
  const entry = (k: string): ProfileEntry => {
    const f = frames.get(k) as CallFrame;
    const us = self.get(k) ?? 0;
    const t = total.get(k) ?? us;
    return { name: f.functionName || '(anonymous)', where: locate(f, root), selfMs: us / 1000, selfPct: pct(us), totalMs: t / 1000, totalPct: pct(t) };
  };
  const entries = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([k]) => entry(k));
  const ours = [...total.entries()]
    .filter(([k]) => /\/build\/src\//.test((frames.get(k) as CallFrame).url))
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([k]) => entry(k));
  const files = new Map<string, number>();
  for (const [k, us] of self) {
    const f = frames.get(k) as CallFrame;
    const loc = locate(f, root);
    const file = loc === '' ? f.functionName : loc.replace(/:[0-9]+$/, '');
    files.set(file, (files.get(file) ?? 0) + us);
  }
  const byFile = [...files.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([file, us]) => ({ file, selfMs: us / 1000, selfPct: pct(us) }));
  return { totalMs: all / 1000, idlePct: pct(named('(idle)')), gcPct: pct(named('(garbage collector)')), top: entries, ours, byFile };
}

/** The top entries of a profile, with callers (inclusive time) of our own functions. */
export function formatSummary(s: ProfileSummary): string {
  const lines = [`profile: ${s.totalMs.toFixed(0)} ms sampled, idle ${s.idlePct.toFixed(1)}%, GC ${s.gcPct.toFixed(1)}%`, '', ' self%  total%  function  (where)'];
  for (const e of s.top) lines.push(`${e.selfPct.toFixed(1).padStart(6)}  ${e.totalPct.toFixed(1).padStart(6)}  ${e.name}  ${e.where ? `(${e.where})` : ''}`);
  lines.push('', 'gatewayc functions by inclusive time', ' self%  total%  function  (where)');
  for (const e of s.ours) lines.push(`${e.selfPct.toFixed(1).padStart(6)}  ${e.totalPct.toFixed(1).padStart(6)}  ${e.name}  (${e.where})`);
  lines.push('', ' self%  file');
  for (const f of s.byFile) lines.push(`${f.selfPct.toFixed(1).padStart(6)}  ${f.file}`);
  return lines.join('\n');
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: profile.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const root = path.resolve(__dirname, '..', '..', '..');
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${formatSummary(summarise(prof, root, top ? Number(top) : 25))}\n`);
}
