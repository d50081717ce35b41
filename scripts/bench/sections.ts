// The benchmark's sections: each starts what it needs (helper process, daemon), measures,
// and stops everything again before the next one.
import { ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BenchDaemon, HOST_ID, ROOT } from './daemon';
import type { HelperCommand, HelperReply, PeerSpec } from './helper';
import { benchIdea, IdeaResult } from './idea';
import { ClientSpec, Load, runLoad, Target } from './loadgen';
import { cpuSeconds, ownCpuSeconds, rssKb } from './proc';
import { summarise, CpuProfile } from './profile';
import {
  CMD,
  Cpu,
  ENCRYPT_CMD,
  IdeaSummary,
  MatrixCell,
  Mode,
  MODES,
  Options,
  PAYLOAD,
  PEER,
  PEER_ADDRESS,
  PEER_COUNTS,
  PeersResult,
  PeersRun,
  ProfileResult,
  RunRecord,
  SoakResult,
  Summary,
  summarize,
} from './results';
import { median } from './stats';

function specs(n: number, mode: Mode | 'mixed'): ClientSpec[] {
  return Array.from({ length: n }, (_, i) => {
    const enc = mode === 'encrypt' || (mode === 'mixed' && i % 2 === 1);
    return { request: enc ? ENCRYPT_CMD : CMD, expect: PAYLOAD };
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const log = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`);
};

// The helper process

class Helper {
  private waiting: ((r: HelperReply) => void)[] = [];
  private constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: HelperReply) => this.waiting.shift()?.(m));
  }

  static start(): Helper {
    const proc = fork(path.join(__dirname, 'helper.js'), [], {
      execArgv: ['--openssl-legacy-provider'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Helper(proc);
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  async call(cmd: HelperCommand): Promise<HelperReply> {
    const reply = await new Promise<HelperReply>((resolve, reject) => {
      const onExit = (): void => reject(new Error('bench helper exited'));
      this.proc.once('exit', onExit);
      this.waiting.push((r) => {
        this.proc.off('exit', onExit);
        resolve(r);
      });
      this.proc.send(cmd);
    });
    if (reply.op === 'error') throw new Error(`bench helper: ${reply.message}`);
    return reply;
  }

  async londs(peers: PeerSpec[], serviceTimeMs: number, precise = false): Promise<number> {
    const r = await this.call({ op: 'londs', clientId: HOST_ID, peers, serviceTimeMs, precise });
    return r.op === 'ready' ? r.port : 0;
  }

  async stats(): Promise<Extract<HelperReply, { op: 'stats' }>> {
    const r = await this.call({ op: 'stats' });
    if (r.op !== 'stats') throw new Error('bench helper: unexpected reply');
    return r;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.disconnect();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

// Measurements

/** A target under load, and the process whose CPU counts as "daemon" for it (if any). */
interface Contender {
  target: Target;
  daemonPid: number | null;
}

/** Slices of at most this long; each slice starts with SLICE_WARMUP_MS unrecorded. */
const SLICE_MS = 250;

const SLICE_WARMUP_MS = 40;

/**
 * Runs the same clients against each contender in turn, in alternating slices of about
 * SLICE_MS (order reversed every slice), for opts.durationMs measured per contender; CPU
 * use is % of one core over the measured windows. Interleaving matters on a shared VM,
 * where latency changes mode every few seconds: each contender sees the same conditions.
 */
async function pairedRuns(contenders: Contender[], clients: ClientSpec[], opts: Options, helperPid: number): Promise<RunRecord[]> {
  const loads: Load[] = [];
  try {
    for (const c of contenders) loads.push(await Load.open(c.target, clients));
    const cpu = contenders.map((): Cpu => ({ gen: 0, daemon: 0, lond: 0 }));
    const slices = Math.max(1, Math.round(opts.durationMs / SLICE_MS));
    const sliceMs = opts.durationMs / slices;
    for (let sl = 0; sl < slices; sl++) {
      const order = contenders.map((_, i) => i);
      if (sl % 2 === 1) order.reverse();
      for (const i of order) {
        const pid = (contenders[i] as Contender).daemonPid;
        const probe = (): Cpu => ({ gen: ownCpuSeconds(), daemon: pid === null ? NaN : cpuSeconds(pid), lond: cpuSeconds(helperPid) });
        let c0 = probe();
        await (loads[i] as Load).run(sl === 0 ? opts.warmupMs : SLICE_WARMUP_MS, sliceMs, (edge) => {
          if (edge === 'start') {
            c0 = probe();
            return;
          }
          const c1 = probe();
          const acc = cpu[i] as Cpu;
          acc.gen += c1.gen - c0.gen;
          acc.daemon += c1.daemon - c0.daemon;
          acc.lond += c1.lond - c0.lond;
        });
      }
    }
    return loads.map((l, i) => {
      const r = l.result();
      const acc = cpu[i] as Cpu;
      const pct = (x: number): number => (100 * x) / r.seconds;
      return { ...r, cpu: { gen: pct(acc.gen), daemon: pct(acc.daemon), lond: pct(acc.lond) } };
    });
  } finally {
    for (const l of loads) l.close();
  }
}

export async function benchEcho(opts: Options): Promise<Record<string, Summary>> {
  const helper = Helper.start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-bench-echo-'));
  const sock = path.join(dir, 'echo');
  try {
    await helper.call({ op: 'echo', path: sock });
    const out: Record<string, RunRecord[]> = {};
    for (let r = 0; r < opts.repeats; r++) {
      for (const n of opts.clientCounts) {
        const clients = Array.from({ length: n }, () => ({ request: CMD, expect: CMD }));
        const [rec] = (await pairedRuns([{ target: { kind: 'unix', path: sock }, daemonPid: null }], clients, opts, helper.pid)) as [RunRecord];
        (out[n] ??= []).push(rec);
        log(`echo ceiling, ${n} clients, repeat ${r + 1}: ${rec.rps.toFixed(0)} req/s, p50 ${rec.p50Ms.toFixed(3)} ms`);
      }
    }
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, summarize(v)]));
  } finally {
    await helper.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchMatrix(opts: Options): Promise<MatrixCell[]> {
  const cells: MatrixCell[] = [];
  for (const serviceMs of opts.serviceTimes) {
    const helper = Helper.start();
    let daemon: BenchDaemon | undefined;
    let proxy: Helper | undefined;
    try {
      const peers = [{ id: PEER, address: PEER_ADDRESS }];
      const port = await helper.londs(peers, serviceMs, opts.preciseService);
      daemon = await BenchDaemon.start({ peers, port, entry: opts.entry, settings: { gatewaycMaxSessions: opts.sessions } });
      const gw: Target = { kind: 'unix', path: daemon.socketPath(PEER) };
      const direct: Target = { kind: 'lond', host: PEER_ADDRESS, port, peerId: PEER, clientId: HOST_ID, sessions: opts.sessions };
      const withFloor = serviceMs === 0 && opts.clientCounts.includes(1);
      const floor: Target = { kind: 'unix', path: path.join(daemon.dir, 'floor-proxy') };
      if (withFloor) {
        proxy = Helper.start();
        await proxy.call({ op: 'proxy', path: floor.path, host: PEER_ADDRESS, port, peerId: PEER, clientId: HOST_ID });
      }
      // Let the daemon open its sessions and the JITs of all three processes settle.
      await runLoad({ target: gw, clients: specs(64, 'mixed'), warmupMs: 0, durationMs: 1000 });
      await runLoad({ target: direct, clients: specs(64, 'mixed'), warmupMs: 0, durationMs: 500 });
      const runs = new Map<string, { gateway: RunRecord[]; direct: RunRecord[] }>();
      const floorRuns: RunRecord[] = [];
      for (let r = 0; r < opts.repeats; r++) {
        for (const n of opts.clientCounts) {
          for (const mode of MODES) {
            const key = `${n}/${mode}`;
            const slot = runs.get(key) ?? { gateway: [], direct: [] };
            runs.set(key, slot);
            const contenders: Contender[] = [
              { target: gw, daemonPid: daemon.pid },
              { target: direct, daemonPid: null },
            ];
            const withProxy = proxy !== undefined && n === 1 && mode === 'plain';
            if (withProxy) contenders.push({ target: floor, daemonPid: (proxy as Helper).pid });
            const recs = await pairedRuns(contenders, specs(n, mode), opts, helper.pid);
            const [g, d, f] = recs as [RunRecord, RunRecord, RunRecord | undefined];
            slot.gateway.push(g);
            slot.direct.push(d);
            if (f) floorRuns.push(f);
            const show = (what: string, rec: RunRecord): void =>
              log(`service ${serviceMs} ms, ${n} clients, ${mode}, ${what}, repeat ${r + 1}: ${rec.rps.toFixed(0)} req/s, p50 ${rec.p50Ms.toFixed(3)} ms, p99 ${rec.p99Ms.toFixed(3)} ms${rec.wrong ? `, ${rec.wrong} WRONG answers` : ''}`);
            show('gateway', g);
            show('direct', d);
            if (f) show('trivial proxy', f);
          }
        }
      }
      const st = await helper.stats();
      if (st.malformed > 0) log(`WARNING: the fake lond saw ${st.malformed} malformed enc: requests`);
      for (const n of opts.clientCounts) {
        for (const mode of MODES) {
          const slot = runs.get(`${n}/${mode}`) as { gateway: RunRecord[]; direct: RunRecord[] };
          const c: MatrixCell = { serviceMs, clients: n, mode, sessions: opts.sessions, gateway: summarize(slot.gateway), direct: summarize(slot.direct) };
          if (n === 1 && mode === 'plain' && floorRuns.length > 0) c.floor = summarize(floorRuns);
          cells.push(c);
        }
      }
    } finally {
      await proxy?.stop();
      await daemon?.stop();
      await helper.stop();
    }
  }
  return cells;
}

/** The i-th of many loopback addresses: 127.0.1.2 … 127.0.4.251 for up to 1000 peers. */
function loopback(i: number): string {
  return `127.0.${1 + Math.floor(i / 250)}.${2 + (i % 250)}`;
}

export async function benchPeers(opts: Options): Promise<PeersResult[]> {
  const results: PeersResult[] = [];
  for (const count of PEER_COUNTS) {
    const helper = Helper.start();
    try {
      const peers = Array.from({ length: count }, (_, i) => ({ id: `p${String(i).padStart(4, '0')}`, address: loopback(i) }));
      const port = await helper.londs(peers, 0);
      const runs: PeersRun[] = [];
      for (let r = 0; r < opts.repeats; r++) {
        const before = (await helper.stats()).handshakes;
        const t0 = performance.now();
        const daemon = await BenchDaemon.start({ peers, port, entry: opts.entry });
        try {
          // readyMs counts from spawn; t0 was taken just before the config was written.
          const rssReadyMb = rssKb(daemon.pid) / 1024;
          let allUpMs = NaN;
          const deadline = performance.now() + 60_000;
          while (performance.now() < deadline) {
            if ((await helper.stats()).handshakes - before >= count) {
              allUpMs = performance.now() - t0;
              break;
            }
            await sleep(20);
          }
          await sleep(1000);
          const rssMb = rssKb(daemon.pid) / 1024;
          let idleCpuPct = NaN;
          let rssAfterIdleMb = NaN;
          if (count === PEER_COUNTS[PEER_COUNTS.length - 1]) {
            const c0 = cpuSeconds(daemon.pid);
            await sleep(opts.idleMs);
            idleCpuPct = (100 * (cpuSeconds(daemon.pid) - c0)) / (opts.idleMs / 1000);
            rssAfterIdleMb = rssKb(daemon.pid) / 1024;
          }
          const run = { readyMs: daemon.readyMs, allUpMs, rssReadyMb, rssMb, idleCpuPct, rssAfterIdleMb };
          runs.push(run);
          log(`${count} peers, repeat ${r + 1}: ready ${run.readyMs.toFixed(0)} ms, all sessions up ${allUpMs.toFixed(0)} ms, RSS ${rssMb.toFixed(1)} MB${Number.isNaN(idleCpuPct) ? '' : `, idle CPU ${idleCpuPct.toFixed(2)}%`}`);
        } finally {
          await daemon.stop();
        }
      }
      const m = (f: (r: PeersRun) => number): number => median(runs.map(f));
      results.push({ peers: count, readyMs: m((r) => r.readyMs), allUpMs: m((r) => r.allUpMs), rssReadyMb: m((r) => r.rssReadyMb), rssMb: m((r) => r.rssMb), idleCpuPct: m((r) => r.idleCpuPct), rssAfterIdleMb: m((r) => r.rssAfterIdleMb), runs });
    } finally {
      await helper.stop();
    }
  }
  return results;
}

export function runIdea(opts: Options): IdeaSummary {
  const runs: IdeaResult[] = [];
  for (let r = 0; r < opts.repeats; r++) {
    const res = benchIdea(opts.quick ? 300 : 500, CMD);
    runs.push(res);
    log(`IDEA repeat ${r + 1}: TypeScript ${res.tsEncryptMBs.toFixed(1)} MB/s, OpenSSL ${res.opensslEncryptMBs.toFixed(1)} MB/s`);
  }
  const m = (f: (r: IdeaResult) => number): number => median(runs.map(f));
  return {
    tsEncryptMBs: m((r) => r.tsEncryptMBs),
    tsDecryptMBs: m((r) => r.tsDecryptMBs),
    opensslEncryptMBs: m((r) => r.opensslEncryptMBs),
    opensslDecryptMBs: m((r) => r.opensslDecryptMBs),
    codecUs: m((r) => r.codecUs),
    opensslCodecUs: m((r) => r.opensslCodecUs),
    runs,
  };
}

export async function benchSoak(opts: Options): Promise<SoakResult> {
  const helper = Helper.start();
  let daemon: BenchDaemon | undefined;
  try {
    const peers = [{ id: PEER, address: PEER_ADDRESS }];
    const port = await helper.londs(peers, 0);
    daemon = await BenchDaemon.start({ peers, port, entry: opts.entry, settings: { gatewaycMaxSessions: opts.sessions } });
    const pid = daemon.pid;
    await sleep(500);
    const rssIdleMb = rssKb(pid) / 1024;
    const samples: { t: number; rssMb: number }[] = [];
    const t0 = performance.now();
    const every = Math.max(1000, (opts.soakS * 1000) / 30);
    const timer = setInterval(() => samples.push({ t: (performance.now() - t0) / 1000, rssMb: rssKb(pid) / 1024 }), every);
    let rssStartMb = NaN;
    let rssEndMb = NaN;
    // The heap grows to its working size in the first ~10 s; growth after that is what counts.
    const warmupMs = opts.quick ? 5000 : 15_000;
    log(`soak: 64 clients (half encrypt:), ${warmupMs / 1000} s warm-up then ${opts.soakS} s`);
    const r = await runLoad({
      target: { kind: 'unix', path: daemon.socketPath(PEER) },
      clients: specs(64, 'mixed'),
      warmupMs,
      durationMs: opts.soakS * 1000,
      latencies: false,
      onWindow: (edge) => {
        if (edge === 'start') rssStartMb = rssKb(pid) / 1024;
        else rssEndMb = rssKb(pid) / 1024;
      },
    });
    clearInterval(timer);
    const rssMaxMb = Math.max(rssStartMb, rssEndMb, ...samples.map((s) => s.rssMb));
    const midT = (warmupMs / 1000 + opts.soakS / 2);
    const mid = samples.reduce<{ t: number; rssMb: number } | undefined>((best, s) => (best === undefined || Math.abs(s.t - midT) < Math.abs(best.t - midT) ? s : best), undefined);
    const rssMidMb = mid?.rssMb ?? NaN;
    log(`soak: ${r.rps.toFixed(0)} req/s, RSS ${rssStartMb.toFixed(1)} → ${rssEndMb.toFixed(1)} MB (max ${rssMaxMb.toFixed(1)})`);
    return { seconds: opts.soakS, clients: 64, rps: r.rps, wrong: r.wrong, rssIdleMb, rssStartMb, rssEndMb, rssMaxMb, rssMidMb, samples };
  } finally {
    await daemon?.stop();
    await helper.stop();
  }
}

export async function benchProfile(opts: Options, stamp: string): Promise<ProfileResult> {
  const dir = path.join(ROOT, 'bench-results', `profile-${stamp}`);
  fs.mkdirSync(dir, { recursive: true });
  const helper = Helper.start();
  let daemon: BenchDaemon | undefined;
  try {
    const peers = [{ id: PEER, address: PEER_ADDRESS }];
    const port = await helper.londs(peers, 0);
    daemon = await BenchDaemon.start({ peers, port, entry: opts.entry, settings: { gatewaycMaxSessions: opts.sessions }, nodeFlags: ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '250'] });
    log(`profile: ${opts.profileClients} clients plain for ${opts.profileS} s under --cpu-prof`);
    const r = await runLoad({ target: { kind: 'unix', path: daemon.socketPath(PEER) }, clients: specs(opts.profileClients, 'plain'), warmupMs: 1000, durationMs: opts.profileS * 1000 });
    await daemon.stop();
    daemon = undefined;
    const file = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f))[0];
    if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
    const summary = summarise(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile, ROOT, 30);
    return { clients: opts.profileClients, file: path.relative(ROOT, file), rps: r.rps, summary };
  } finally {
    await daemon?.stop();
    await helper.stop();
  }
}

// Targets of issue 6 and the report
