// The printed tables, the machine description and the check of issue 6's targets.
import * as os from 'node:os';
import { CMD, MatrixCell, Mode, MODES, Options, PAYLOAD, Results, TargetCheck } from './results';
import { formatSummary } from './profile';
import { fmt, table } from './stats';

function cell(res: Results, serviceMs: number, clients: number, mode: Mode): MatrixCell | undefined {
  return res.matrix?.find((c) => c.serviceMs === serviceMs && c.clients === clients && c.mode === mode);
}

export function checkTargets(res: Results): TargetCheck[] {
  const out: TargetCheck[] = [];
  for (const mode of MODES) {
    const c = cell(res, 0, 1, mode);
    if (c) {
      const ratio = c.gateway.p50Ms / c.direct.p50Ms;
      out.push({ target: `1 client, 0 ms, ${mode}: gateway p50 <= 2x direct`, measured: `${fmt(c.gateway.p50Ms, 3)} / ${fmt(c.direct.p50Ms, 3)} ms = ${fmt(ratio, 2)}x`, met: ratio <= 2 });
    }
  }
  for (const mode of MODES) {
    const c = cell(res, 1, 64, mode);
    if (c) {
      const ideal = c.sessions * 1000;
      // The fake lond's 1 ms is a node timer, which fires late: the direct round trip shows by how much.
      const one = cell(res, 1, 1, mode);
      const real = one ? ` (direct ${fmt((100 * c.direct.rps) / ideal, 1)}%; lond's "1 ms" takes ${fmt(one.direct.p50Ms, 2)} ms direct)` : ` (direct ${fmt(c.direct.rps)})`;
      out.push({ target: `64 clients, 1 ms, ${c.sessions} sessions, ${mode}: >= 80% of ${ideal} req/s`, measured: `${fmt(c.gateway.rps)} req/s = ${fmt((100 * c.gateway.rps) / ideal, 1)}%${real}`, met: c.gateway.rps >= 0.8 * ideal });
    }
  }
  const big = res.peers?.find((p) => p.peers === 1000);
  if (big) {
    out.push({ target: '1000 peers: READY within 2 s', measured: `${fmt(big.readyMs)} ms (all sessions up ${fmt(big.allUpMs)} ms)`, met: big.readyMs <= 2000 });
    out.push({ target: '1000 peers: RSS under 150 MB', measured: `${fmt(big.rssMb, 1)} MB with all sessions up`, met: big.rssMb < 150 });
    out.push({ target: '1000 peers: idle CPU near zero (< 1% of a core)', measured: `${fmt(big.idleCpuPct, 2)}%`, met: big.idleCpuPct < 1 });
  }
  if (res.idea) {
    const share = res.idea.tsEncryptMBs / res.idea.opensslEncryptMBs;
    out.push({ target: 'IDEA in TypeScript >= 1/3 of OpenSSL', measured: `${fmt(res.idea.tsEncryptMBs, 1)} / ${fmt(res.idea.opensslEncryptMBs, 1)} MB/s = ${fmt(share, 2)}`, met: share >= 1 / 3 });
  }
  if (res.soak) {
    const s = res.soak;
    const growth = s.rssEndMb - s.rssStartMb;
    out.push({ target: `memory flat over ${s.seconds} s at full load (growth < max(10 MB, 10%))`, measured: `${fmt(s.rssStartMb, 1)} -> ${fmt(s.rssEndMb, 1)} MB (halfway ${fmt(s.rssMidMb, 1)}, max ${fmt(s.rssMaxMb, 1)})`, met: growth < Math.max(10, 0.1 * s.rssStartMb) });
  }
  return out;
}

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    openssl: process.versions.openssl,
    kernel: os.release(),
    host: os.hostname(),
    loadAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

export function report(res: Results, m: Record<string, unknown>, opts: Options): string {
  const parts: string[] = [];
  parts.push(`machine: ${String(m.cpu)}, ${String(m.cores)} cores, ${String(m.memoryGb)} GB, node ${String(m.node)}, kernel ${String(m.kernel)}`);
  parts.push(`load average (1/5/15 min) at start ${(m.loadAtStart as number[]).join(' ')}, at end ${(m.loadAtEnd as number[]).join(' ')}: other work on the machine makes every number noisier`);
  parts.push(`medians of ${opts.repeats} repeat(s), ${opts.durationMs / 1000} s measured per load run; cpu% = share of one core during the run (d daemon, l lond, g generator); us/req = daemon CPU per request`);
  if (res.echo) {
    parts.push('\nload generator ceiling (trivial echo server on a UNIX socket)');
    parts.push(table(['clients', 'req/s', 'p50 ms', 'p99 ms', 'gen cpu%'], Object.entries(res.echo).map(([n, s]) => [n, fmt(s.rps), fmt(s.p50Ms, 3), fmt(s.p99Ms, 3), fmt(s.cpu.gen)])));
  }
  if (res.matrix) {
    parts.push(`\nthroughput and latency, one peer, gatewaycMaxSessions=${opts.sessions}; direct = the same clients over ${opts.sessions} TCP sessions straight to the fake lond`);
    parts.push(`request ${CMD.length} bytes (encrypt: adds the prefix), answer ${PAYLOAD.length} bytes; lond service time by ${opts.preciseService ? 'polling (precise)' : 'node timer (fires late by up to 1 ms)'}`);
    parts.push(
      table(
        ['svc', 'clients', 'mode', 'gw req/s', 'gw p50', 'gw p99', 'dir req/s', 'dir p50', 'dir p99', 'rps ratio', 'p50 ratio', 'gw cpu% d/l/g', 'dir cpu% l/g', 'gw us/req', 'wrong'],
        res.matrix.map((c) => [
          `${c.serviceMs} ms`,
          String(c.clients),
          c.mode,
          fmt(c.gateway.rps),
          fmt(c.gateway.p50Ms, 3),
          fmt(c.gateway.p99Ms, 3),
          fmt(c.direct.rps),
          fmt(c.direct.p50Ms, 3),
          fmt(c.direct.p99Ms, 3),
          fmt(c.gateway.rps / c.direct.rps, 2),
          fmt(c.gateway.p50Ms / c.direct.p50Ms, 2),
          `${fmt(c.gateway.cpu.daemon)}/${fmt(c.gateway.cpu.lond)}/${fmt(c.gateway.cpu.gen)}`,
          `${fmt(c.direct.cpu.lond)}/${fmt(c.direct.cpu.gen)}`,
          fmt(c.gateway.daemonUsPerReq, 1),
          String(c.gateway.wrong + c.direct.wrong),
        ]),
      ),
    );
  }
  const fl = res.matrix?.find((c) => c.floor);
  if (fl?.floor) {
    parts.push('\none more hop: 1 client, 0 ms, plain, through gatewayc vs through a trivial proxy (own session, bytes piped untouched)');
    parts.push(
      table(
        ['path', 'req/s', 'p50 ms', 'p99 ms', 'p50 vs direct', 'hop cpu%'],
        [
          ['direct to lond', fmt(fl.direct.rps), fmt(fl.direct.p50Ms, 3), fmt(fl.direct.p99Ms, 3), '1.00', '-'],
          ['trivial proxy', fmt(fl.floor.rps), fmt(fl.floor.p50Ms, 3), fmt(fl.floor.p99Ms, 3), fmt(fl.floor.p50Ms / fl.direct.p50Ms, 2), fmt(fl.floor.cpu.daemon)],
          ['gatewayc', fmt(fl.gateway.rps), fmt(fl.gateway.p50Ms, 3), fmt(fl.gateway.p99Ms, 3), fmt(fl.gateway.p50Ms / fl.direct.p50Ms, 2), fmt(fl.gateway.cpu.daemon)],
        ],
      ),
    );
  }
  if (res.peers) {
    parts.push('\nmany peers (fake londs on 127.0.x.y, one session each)');
    parts.push(table(['peers', 'READY ms', 'all up ms', 'RSS@ready MB', 'RSS up MB', `idle cpu% (${opts.idleMs / 1000} s)`, 'RSS after idle MB'], res.peers.map((p) => [String(p.peers), fmt(p.readyMs), fmt(p.allUpMs), fmt(p.rssReadyMb, 1), fmt(p.rssMb, 1), fmt(p.idleCpuPct, 2), fmt(p.rssAfterIdleMb, 1)])));
  }
  if (res.idea) {
    const i = res.idea;
    parts.push('\nIDEA (ECB, 64 KiB buffers)');
    parts.push(
      table(
        ['', 'encrypt MB/s', 'decrypt MB/s', `enc: request us (${CMD.length} B)`],
        [
          ['TypeScript (src/crypto/idea.ts)', fmt(i.tsEncryptMBs, 1), fmt(i.tsDecryptMBs, 1), fmt(i.codecUs, 2)],
          ['OpenSSL idea-ecb', fmt(i.opensslEncryptMBs, 1), fmt(i.opensslDecryptMBs, 1), fmt(i.opensslCodecUs, 2)],
        ],
      ),
    );
  }
  if (res.soak) {
    const s = res.soak;
    parts.push(`\nsoak: ${s.seconds} s, ${s.clients} clients (half encrypt:), ${fmt(s.rps)} req/s, ${s.wrong} wrong answers`);
    parts.push(`  RSS idle ${fmt(s.rssIdleMb, 1)} MB, start ${fmt(s.rssStartMb, 1)} MB, halfway ${fmt(s.rssMidMb, 1)} MB, end ${fmt(s.rssEndMb, 1)} MB, max ${fmt(s.rssMaxMb, 1)} MB`);
    const step = Math.max(1, Math.floor(s.samples.length / 10));
    parts.push(`  RSS MB over time (s): ${s.samples.filter((_, i) => i % step === 0).map((x) => `${x.t.toFixed(0)}:${x.rssMb.toFixed(0)}`).join(' ')}`);
  }
  if (res.profile) {
    parts.push(`\nprofile of the daemon, ${res.profile.clients} clients plain, ${fmt(res.profile.rps)} req/s under the profiler (${res.profile.file})`);
    parts.push(formatSummary(res.profile.summary));
  }
  const checks = checkTargets(res);
  if (checks.length > 0) {
    parts.push('\ntargets of issue 6');
    parts.push(table(['target', 'measured', 'result'], checks.map((c) => [c.target, c.measured, c.met === null ? '?' : c.met ? 'met' : 'MISSED'])));
  }
  return parts.join('\n');
}
