// `npm run soak`: gatewayc under a steady mixed load and a seeded schedule of faults, with
// every invariant of issue 14 checked as it goes and at the end. Three processes, as in
// the benchmark: this one (load, spool writer, faults, checker), the fake londs
// (lond-host.ts) and the daemon (run as nobody when we are root, as the unit runs it as
// its own user: that is also what makes a chmod of the spool bite).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { testPki, writePkiFiles } from '../../test/support/certs';
import { GATEWAYC, HOST_ID, ROOT } from '../bench/daemon';
import { fdCount, rssKb } from '../bench/proc';
import { Chaos } from './chaos';
import { Checker } from './checker';
import { SoakDaemon } from './daemon';
import { Load } from './load';
import { LondHost, PemPair, PeerStats } from './londs';
import { parseOptions, SoakOptions, USAGE } from './options';
import { formatTable, Sample, SoakResult, trend, violationLine } from './report';
import { Rng } from './rng';
import { buildSchedule } from './schedule';
import { SpoolWriter } from './spool';
import { World } from './world';

/** The daemon's settings: short timeouts so that faults resolve in seconds. */
const SETTINGS = {
  gatewaycKeyMode: 'auto',
  gatewaycConnectTimeout: 2,
  gatewaycHandshakeTimeout: 3,
  gatewaycRequestTimeout: 4,
  gatewaycMaxAttempts: 3,
  gatewaycRetryMax: 2,
  gatewaycMaxSessions: 4,
  gatewaycIdleTimeout: 6,
  gatewaycRescanInterval: 2,
  gatewaycMaxRequestBytes: 1024 * 1024,
  gatewaycShutdownTimeout: 2,
  gatewaycLogLevel: 'info',
};

const SHAPE = { base: 20, spares: 4, sparesAtStart: 2, hostile: 2 };
/** systemd's RestartSec= in the unit. */
const RESTART_DELAY_MS = 2000;
const NOBODY = 65534;
/** SIGTERM, then SIGKILL after this long (systemd's TimeoutStopSec= is 90 s by default). */
const STOP_KILL_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function say(line: string): void {
  process.stderr.write(`soak: ${line}\n`);
}

/** One JSON request on the daemon's control socket. */
function control(socketPath: string, req: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketPath);
    let buf = '';
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error('control socket: no reply'));
    }, timeoutMs);
    c.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        c.destroy();
        resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      }
    });
    c.on('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    c.write(`${JSON.stringify(req)}\n`);
  });
}

async function waitAllUp(socketPath: string, ids: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let states = '';
  while (Date.now() < deadline) {
    try {
      const st = await control(socketPath, { op: 'status' });
      const peers = (st.peers as { id: string; state: string }[]) ?? [];
      const down = ids.filter((id) => peers.find((p) => p.id === id)?.state !== 'up');
      if (down.length === 0) return;
      states = down.map((id) => `${id}:${peers.find((p) => p.id === id)?.state ?? 'missing'}`).join(' ');
    } catch (err) {
      states = (err as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`not every peer up after ${timeoutMs / 1000} s: ${states}`);
}

function chownTree(p: string, uid: number, gid: number): void {
  fs.chownSync(p, uid, gid);
  if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) chownTree(path.join(p, n), uid, gid);
}

const stats = (xs: { percentile(p: number): number; length: number }): { p50: number; p99: number; n: number } => ({ p50: xs.percentile(50), p99: xs.percentile(99), n: xs.length });

async function run(opts: SoakOptions): Promise<number> {
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  fs.mkdirSync(opts.outDir, { recursive: true });
  const base = path.join(opts.outDir, `soak-${stamp}`);
  const rng = new Rng(opts.seed);
  const startSsl = rng.fork('keymode').chance(0.5);
  say(`seed ${opts.seed} (replay: ${opts.replay})`);
  const events = buildSchedule(rng.fork('schedule'), { durationMs: opts.chaosMs, startSsl, hostile: opts.hostile, daemonKills: opts.daemonKills, keymodeFlips: opts.keymodeFlips });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-soak-'));
  fs.chmodSync(dir, 0o755);
  const sub = (name: string, mode = 0o750): string => {
    const p = path.join(dir, name);
    fs.mkdirSync(p, { mode });
    fs.chmodSync(p, mode);
    return p;
  };
  const spoolDir = sub('spool');
  const keyDir = sub('keys');
  const certDir = sub('certs');
  const noCertDir = sub('no-certs');
  const outside = sub('outside', 0o755);
  sub('sock', 0o755);
  const controlPath = path.join(sub('run', 0o755), 'control');
  const world = new World(dir, SHAPE, rng.fork('world'), startSsl);

  say(`making certificates for ${world.peers.size + 1} hosts`);
  const pki = testPki();
  writePkiFiles(certDir, pki.host(HOST_ID));
  const certs: Record<string, PemPair> = {};
  for (const id of world.ids()) certs[id] = pki.host(id);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    for (const p of [spoolDir, keyDir, certDir, noCertDir, path.join(dir, 'sock'), path.dirname(controlPath)]) chownTree(p, NOBODY, NOBODY);
  }
  const settings = (): Record<string, string | number> => ({ ...SETTINGS, gatewaycControlSocket: controlPath, gatewaycLocalKeyDir: keyDir, lonCertificateDirectory: world.certsOn ? certDir : noCertDir });

  const requestTimeoutMs = SETTINGS.gatewaycRequestTimeout * 1000;
  const retryMaxMs = SETTINGS.gatewaycRetryMax * 1000;
  const checker = new Checker({
    requestTimeoutMs,
    marginMs: opts.marginMs,
    // Long enough for: the requests queued during the fault to time out, a peer marked down
    // to be retried, a connect and a handshake.
    recoverLimitMs: 2 * requestTimeoutMs + 2 * retryMaxMs + (SETTINGS.gatewaycConnectTimeout + SETTINGS.gatewaycHandshakeTimeout) * 1000 + opts.marginMs,
  });
  // One fault of the daemon can break a promise hundreds of times: the first few are printed.
  const printed = new Map<string, number>();
  checker.onViolation = (v) => {
    const k = `${v.kind} ${v.peer}`;
    const n = (printed.get(k) ?? 0) + 1;
    printed.set(k, n);
    if (n <= 3) say(violationLine(v, opts.seed));
    else if (n === 4) say(`(further ${v.kind} violations on ${v.peer} are counted, not printed)`);
  };

  const londs = LondHost.start();
  let daemon: SoakDaemon | undefined;
  let chaos: Chaos | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    const ready = await londs.call({ op: 'start', clientId: HOST_ID, londs: world.londSpecs(), ca: pki.ca.cert, certs, maxSessions: SETTINGS.gatewaycMaxSessions });
    const port = ready.op === 'ready' ? ready.port : 0;
    const spool = new SpoolWriter(spoolDir, outside, checker, rng.fork('spool'), now, SETTINGS.gatewaycMaxRequestBytes);
    londs.onEvent = (e) => {
      const t = now();
      switch (e.ev) {
        case 'delayed':
          spool.delivered(e.token, e.id, e.bytes, t);
          return;
        case 'live-twice':
          checker.violation('sent-twice', e.token, e.id, t, 'the lond received this live request twice (a live request is sent at most once)');
          return;
        case 'over':
          checker.violation('sessions', e.id, e.id, t, `${e.live} connections open to one peer for more than 300 ms (gatewaycMaxSessions ${e.max})`);
          return;
        case 'malformed':
          checker.violation('malformed', e.id, e.id, t, 'the lond could not decode an enc: request');
          return;
        case 'foreign':
          say(`lond ${e.id} got a request the soak never sent: ${JSON.stringify(e.head)}`);
          return;
      }
    };

    const d = new SoakDaemon({
      dir,
      port,
      entry: opts.entry,
      ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
      logFile: `${base}.daemon.log`,
      onPlaintext: (where) => checker.violation('plaintext', 'log', '*', now(), `the plaintext of an encrypt: request is in the daemon's output (${where})`),
      onUnexpectedExit: (code, signal) => chaos?.crashed(code, signal),
    });
    daemon = d;
    d.peers = world.hostsPeers();
    d.settings = settings();
    say(`starting gatewayc${asRoot ? ' as nobody' : ''} with ${world.inHosts().length} peers (${world.londSpecs().length} fake londs on port ${port}), ${world.certsOn ? 'ssl' : 'local/insecure'} key mode`);
    await d.start();
    await waitAllUp(controlPath, world.inHosts(), 30_000);

    const samples: Sample[] = [];
    const sample = (): Sample | undefined => {
      const pid = d.pid;
      if (pid === undefined || !d.running) return undefined;
      const s = { t: now() / 1000, rssMb: rssKb(pid) / 1024, fds: fdCount(pid), start: d.starts };
      if (!Number.isFinite(s.rssMb)) return undefined;
      samples.push(s);
      return s;
    };
    const first = sample();
    timers.push(setInterval(sample, 1000));
    timers.push(setInterval(() => checker.tick(now()), 250));

    const load = new Load(checker, world, rng.fork('load'), now, { giveUpMs: 3 * checker.limitMs, pipelinedClients: 3, oneShotClients: 5 });
    chaos = new Chaos({
      checker,
      daemon: d,
      londs,
      spool,
      load,
      world,
      now,
      settings,
      controlPath,
      gatewayctl: path.join(path.dirname(opts.entry ?? GATEWAYC), 'gatewayctl'),
      minPresent: 20,
      restartDelayMs: RESTART_DELAY_MS,
      reloadTimeoutMs: 15_000,
      say,
    });
    const c = chaos;
    const chaosStart = now();
    const progress = setInterval(() => {
      const s = samples[samples.length - 1];
      const faults = Object.values(c.injected).reduce((a, b) => a + b, 0);
      const mem = s ? `RSS ${s.rssMb.toFixed(0)} MB, ${s.fds} fds` : 'daemon down';
      say(`${((now() - chaosStart) / 1000).toFixed(0)}/${opts.chaosMs / 1000} s: ${checker.requests} requests, ${faults} faults, ${checker.violations.length} violations, delayed ${checker.delayedDelivered}/${checker.delayedWritten}, ${mem}`);
    }, 10_000);
    timers.push(progress);
    say(`chaos for ${opts.chaosMs / 1000} s: ${events.length} faults scheduled`);
    load.start();
    // For peers in hosts.tab, as LON-CAPA does; a reload may remove one before its messages went.
    spool.start(() => world.inHosts().filter((id) => world.get(id).role !== 'hostile'), say);
    c.schedule(events);
    await sleep(opts.chaosMs);

    clearInterval(progress);
    say('chaos over: waiting for the last faults to be undone, every peer back');
    await c.settle();
    await c.restoreAll();
    await sleep(opts.settleMs);
    spool.stop();
    const drainUntil = Date.now() + opts.drainMs;
    while (checker.delayedWaiting > 0 && Date.now() < drainUntil) await sleep(250);
    say(`delayed messages: ${checker.delayedDelivered} of ${checker.delayedWritten} delivered; stopping the load`);
    await load.stop();
    checker.tick(now());
    checker.finish(now());

    // Extra sessions close after gatewaycIdleTimeout: what is open then is what leaked.
    await sleep(SETTINGS.gatewaycIdleTimeout * 1000 + 1500);
    const last = sample();
    const lond = await londs.stats();
    const keys = new Set(await londs.keys());
    for (const k of d.keysInLog(keys)) checker.violation('plaintext', 'session key', '*', now(), `a session key (${k.slice(0, 6)}...) is in the daemon's output`);
    for (const t of timers) clearInterval(t);
    // A client that keeps its connection open (as lonnet's persistent ones do) while systemd stops the daemon.
    const idle = net.connect(world.socketPath('p01'));
    idle.on('error', () => undefined);
    await new Promise((r) => idle.once('connect', r).once('error', r));
    const stop = await d.stop(STOP_KILL_MS);
    idle.destroy();
    if (stop.code !== 0) say(`gatewayc did not exit 0 on SIGTERM (an idle client connected): ${stop.code ?? stop.signal} after ${stop.ms} ms`);
    await londs.stop();

    const peak = (f: (s: Sample) => number): number => Math.max(...samples.map(f).filter(Number.isFinite));
    const maxLive = Math.max(...Object.values(lond).map((p: PeerStats) => p.maxLive));
    const result: SoakResult = {
      seed: opts.seed,
      replay: opts.replay,
      chaosSeconds: opts.chaosMs / 1000,
      elapsedSeconds: Math.round(now() / 1000),
      peers: { total: world.peers.size, inHostsAtStart: SHAPE.base + SHAPE.sparesAtStart + SHAPE.hostile + 1, maxSessions: SETTINGS.gatewaycMaxSessions },
      requestTimeoutS: SETTINGS.gatewaycRequestTimeout,
      marginS: opts.marginMs / 1000,
      requests: checker.requests,
      answers: checker.answers,
      conLostExcused: checker.conLostExcused,
      cutExcused: checker.cutExcused,
      conLostBy: checker.conLostBy,
      cutBy: checker.cutBy,
      connectFailures: checker.connectFailures,
      connectFailuresExcused: checker.connectFailuresExcused,
      pipelinedOverTimeout: checker.pipelinedOverTimeout,
      faults: c.injected,
      faultNotes: c.notes,
      violations: checker.violations.length,
      violationsByKind: checker.violationsByKind(),
      violationList: checker.violations,
      delayedWritten: checker.delayedWritten,
      delayedDelivered: checker.delayedDelivered,
      delayedDuplicated: checker.delayedDuplicates,
      delayedLost: checker.delayedLost,
      delayedWriteRetries: spool.writeFailures,
      delayedLatencyMs: { p50: checker.delayedLatency.percentile(50), p99: checker.delayedLatency.percentile(99) },
      latencyUntouchedMs: stats(checker.latencyUntouched),
      latencyAllMs: stats(checker.latencyAll),
      daemon: {
        starts: d.starts,
        sigkills: c.daemonKills,
        crashes: c.crashes,
        stop,
        rssMb: { start: first?.rssMb ?? NaN, peak: peak((s) => s.rssMb), end: last?.rssMb ?? NaN },
        fds: { start: first?.fds ?? NaN, peak: peak((s) => s.fds), end: last?.fds ?? NaN },
        trend: trend(samples),
        samples,
        log: d.summary(),
      },
      londs: { maxSessionsSeen: maxLive, peers: lond },
      hostile: spool.hostile,
    };
    const text = formatTable(result);
    process.stdout.write(`\n${text}\n`);
    fs.writeFileSync(`${base}.txt`, `${text}\n`);
    fs.writeFileSync(`${base}.json`, `${JSON.stringify({ at: new Date().toISOString(), ...result, table: text }, null, 2)}\n`);
    process.stdout.write(`\ndaemon log: ${base}.daemon.log\n${base}.json\n`);
    return result.violations === 0 ? 0 : 1;
  } finally {
    for (const t of timers) clearInterval(t);
    if (daemon?.running) await daemon.stop().catch(() => undefined);
    await londs.stop();
    if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
    else say(`run directory kept: ${dir}`);
  }
}

if (require.main === module) {
  let opts: SoakOptions | null;
  try {
    opts = parseOptions(process.argv.slice(2), ROOT);
  } catch (err) {
    process.stderr.write(`soak: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (!opts) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  run(opts).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(2);
    },
  );
}
