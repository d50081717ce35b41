// `npm run bench`: gatewayc against a fake lond, beside the same load sent straight to the
// fake lond, plus memory/READY with many peers, IDEA speed and a soak run. Three
// processes: this one (load generator and orchestration), the helper (fake londs or an
// echo server) and the daemon. Prints tables and writes bench-results/<timestamp>.json.
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ROOT } from './daemon';
import { parseOptions, USAGE } from './options';
import { checkTargets, machine, report } from './report';
import { Options, Results } from './results';
import { benchEcho, benchMatrix, benchPeers, benchProfile, benchSoak, log, runIdea } from './sections';

async function main(argv: string[]): Promise<void> {
  let opts: Options | null;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (!opts) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const started = performance.now();
  const m = machine();
  const load1 = (m.loadAtStart as number[])[0] as number;
  if (load1 > os.cpus().length / 2) log(`load average ${load1} on ${os.cpus().length} cores: other work is running, expect noisy numbers`);
  const res: Results = {};
  const s = opts.sections;
  if (s.has('idea')) res.idea = runIdea(opts);
  if (s.has('echo')) res.echo = await benchEcho(opts);
  if (s.has('matrix')) res.matrix = await benchMatrix(opts);
  if (s.has('peers')) res.peers = await benchPeers(opts);
  if (s.has('soak')) res.soak = await benchSoak(opts);
  if (s.has('profile')) res.profile = await benchProfile(opts, stamp);
  m.loadAtEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
  const text = report(res, m, opts);
  process.stdout.write(`\n${text}\n`);
  const outDir = path.join(ROOT, 'bench-results');
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${stamp}.json`);
  const elapsedS = (performance.now() - started) / 1000;
  const { sections, ...rest } = opts;
  fs.writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), elapsedS, machine: m, options: { ...rest, sections: [...sections] }, results: res, targets: checkTargets(res), table: text }, null, 2)}\n`);
  process.stdout.write(`\nwritten ${path.relative(process.cwd(), file)} (${elapsedS.toFixed(0)} s)\n`);
}

// The generator speaks to lond directly with OpenSSL's IDEA: without the legacy provider
// it is missing, so start again with it rather than make every caller pass the flag.
function reexecWithLegacyProvider(argv: string[]): void {
  const child = spawn(process.execPath, [...process.execArgv, '--openssl-legacy-provider', __filename, ...argv], { stdio: 'inherit', env: { ...process.env, GATEWAYC_BENCH_REEXEC: '1' } });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  if (!crypto.getCiphers().includes('idea-ecb') && process.env.GATEWAYC_BENCH_REEXEC !== '1') {
    reexecWithLegacyProvider(argv);
  } else {
    main(argv).catch((err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
  }
}
