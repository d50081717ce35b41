/**
 * Restart and upgrade lose no request (issue 15), proven in booted Debian 12 and 13
 * containers. Four one-shot clients (connect, one request, read, close — as lonnet does)
 * ask without pause through the peer sockets, each request carrying a unique token, while
 * the service goes through `systemctl restart`, an upgrade to a higher version installed
 * with apt (and a downgrade back between upgrades, to repeat it), `systemctl stop` followed
 * by a start that a waiting client triggers, and a watchdog restart while the event loop
 * still runs (SIGSTOP: systemd's SIGTERM comes with a SIGCONT). Every request must get its
 * own answer, every time; the counts of each run are printed as a table.
 * A daemon whose event loop is truly wedged cannot drain: that proof only shows it is
 * killed promptly (TimeoutAbortSec=) and that what waited in the socket queue is served.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { LondNetwork, startLondNetwork } from '../support/fake-lond';
import { buildDeb, cacheDir, Container, DEBIAN_NUMBER, Release, RELEASES, run, step, systemTestsUnavailable } from './harness';
import { secondsSince, sleep, Systemd, waitFor } from './systemd-helpers';

const SOCKETS = '/run/gatewayc/sockets';
const CONF = '/etc/gatewayc/gatewayc.conf';
const HOSTS = '/etc/gatewayc/hosts.tab';
const PEERS = ['alpha', 'beta'] as const;
const CLIENTS = 4;
/** How often each operation is repeated under load (GATEWAYC_RESTART_RUNS for a longer soak). */
const REPEAT = Math.max(1, Number(process.env.GATEWAYC_RESTART_RUNS) || 3);
const LOAD_DIR = '/srv/restart-load';
const WATCHDOG_DROPIN = '/etc/systemd/system/gatewayc.service.d/90-restart-test-watchdog.conf';
/** Test-only watchdog period: short, so the watchdog runs take seconds. */
const WATCHDOG_SEC = 3;
/** Marks the daemon whose pid it holds as wedged (see WEDGE_JS). */
const WEDGE_FILE = '/run/gatewayc-restart-test-wedge';
const WEDGE_JS = `${LOAD_DIR}/wedge.js`;

/**
 * The load, run inside the container as www-data with the container's own node (18 on
 * Debian 12): CLIENTS one-shot clients, spread over the peer sockets, half of them sending
 * `encrypt:` requests, until the stop file appears. Prints the counts as JSON. A request
 * is answered only by its own token; con_lost, another answer, an error, a close without a
 * line or no answer within the timeout are not.
 */
const LOAD_JS = `
'use strict';
const net = require('net');
const fs = require('fs');
const [stopFile, prefix, nClients, timeoutMs, ...sockets] = process.argv.slice(1);
const counts = { requests: 0, answered: 0, conLost: 0, other: 0, maxMs: 0 };
const problems = [];
let stopping = false;
const watch = setInterval(() => { if (fs.existsSync(stopFile)) { stopping = true; clearInterval(watch); } }, 50);
function ask(sock, line, token) {
  return new Promise((resolve) => {
    const s = net.connect(sock);
    let buf = '';
    let done = false;
    const finish = (kind, why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ kind, why });
    };
    const timer = setTimeout(() => finish('other', 'no answer in ' + timeoutMs + ' ms'), Number(timeoutMs));
    s.setEncoding('latin1');
    s.on('connect', () => s.write(line + '\\n'));
    s.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\\n');
      if (nl < 0) return;
      const a = buf.slice(0, nl);
      if (a === token) finish('answered');
      else if (a === 'con_lost') finish('conLost', 'con_lost');
      else finish('other', 'answer ' + JSON.stringify(a.slice(0, 60)));
    });
    s.on('end', () => finish('other', 'closed without an answer' + (buf ? ' (had ' + buf.length + ' bytes)' : '')));
    s.on('error', (e) => finish('other', e.code || e.message));
    s.on('close', () => finish('other', 'closed'));
  });
}
async function client(k) {
  const sock = sockets[k % sockets.length];
  const encrypted = k >= Number(nClients) / 2;
  for (let i = 0; !stopping; i++) {
    const token = prefix + '.' + k + '.' + i;
    counts.requests++;
    const t0 = Date.now();
    const r = await ask(sock, (encrypted ? 'encrypt:echo:' : 'echo:') + token, token);
    counts[r.kind]++;
    counts.maxMs = Math.max(counts.maxMs, Date.now() - t0);
    if (r.kind !== 'answered' && problems.length < 50) problems.push({ token, at: Date.now(), socket: sock, why: r.why });
  }
}
Promise.all(Array.from({ length: Number(nClients) }, (_, k) => client(k))).then(() => {
  process.stdout.write(JSON.stringify({ counts, problems }));
});
`;

/**
 * Preloaded into the daemon by a test drop-in (NODE_OPTIONS=--require): once WEDGE_FILE
 * holds this process's pid, the event loop spins for ever, as a wedged daemon's would.
 */
const WEDGE_SOURCE = `
'use strict';
const fs = require('fs');
setInterval(() => {
  let pid = '';
  try { pid = fs.readFileSync(${JSON.stringify(WEDGE_FILE)}, 'utf8').trim(); } catch (e) { return; }
  if (pid === String(process.pid)) for (;;) {}
}, 100).unref();
`;

interface Counts { requests: number; answered: number; conLost: number; other: number; maxMs: number }
interface LoadResult { counts: Counts; problems: { token: string; at: number; socket: string; why: string }[] }
interface Row { operation: string; run: number; counts: Counts; detail: string }

const unavailable = systemTestsUnavailable();


/** A time span as systemctl show prints it ("10s", "1min 30s", "500ms") in ms. */
function timespanMs(text: string): number {
  const unit: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000 };
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(us|ms|s|min|h)\b/g)) ms += Number(m[1]) * (unit[m[2] ?? 's'] ?? 1000);
  if (ms === 0) throw new Error(`cannot read the time span ${JSON.stringify(text)}`);
  return ms;
}

function table(release: Release, rows: Row[]): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const lines = [
    `Debian ${DEBIAN_NUMBER[release]} (${release}), ${CLIENTS} one-shot clients asking without pause:`,
    '| operation | run | requests | answered | con_lost | other | longest wait | |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.operation} | ${r.run} | ${n(r.counts.requests)} | ${n(r.counts.answered)} | ${n(r.counts.conLost)} | ${n(r.counts.other)} | ${(r.counts.maxMs / 1000).toFixed(1)} s | ${r.detail} |`),
  ];
  return lines.map((l) => `    ${l}`).join('\n');
}

function releaseSuite(release: Release): void {
  const n = DEBIAN_NUMBER[release];
  // Container name = host name = lonHostID; loopback addresses apart from the other
  // system tests' (20+, 30+, 40+, 50+), so the files may run side by side.
  const hostId = `gwrs${n}`;
  const firstAddress = 110 + 10 * (n - 12);
  const say = (what: string): void => step(`[${release}] ${what}`);

  let c: Container | undefined;
  let sd: Systemd | undefined;
  let londs: LondNetwork | undefined;
  let deb = '';
  let newDeb = '';
  let version = '';
  let newVersion = '';
  const rows: Row[] = [];
  let runs = 0;
  /**
   * Each operation starts the service once. systemd refuses a start beyond StartLimitBurst
   * within StartLimitIntervalSec (5 in 10 s by default) and then also fails the peer
   * sockets: the runs keep the starts that far apart, as any restart loop has to.
   */
  let startSpacingMs = 0;
  let lastOperation = 0;

  const box = (): Systemd => {
    if (!sd) throw new Error('no container');
    return sd;
  };
  const served = (): number => [...(londs?.londs.values() ?? [])].reduce((sum, l) => sum + l.stats.requests, 0);
  const mainPid = (): Promise<string> => box().prop('gatewayc', 'MainPID');
  const installed = async (): Promise<string> => box().out("dpkg-query -W -f='${Version}' gatewayc");
  /** The service runs (a new main pid if `not` is given) and the load reaches the londs again. */
  const servingAgain = async (not?: string): Promise<string> => {
    let last: Record<string, string> = {};
    const pid = await waitFor('gatewayc active with a new main pid', 60_000, async () => {
      last = await box().show('gatewayc', ['ActiveState', 'SubState', 'MainPID']);
      return last.ActiveState === 'active' && last.SubState === 'running' && last.MainPID !== '0' && last.MainPID !== not ? last.MainPID : undefined;
    }, 100, () => JSON.stringify(last));
    const from = served();
    await waitFor('the new daemon answering the load', 30_000, async () => (served() >= from + 200 ? true : undefined), 50);
    return pid;
  };

  /**
   * Runs `op` while the clients ask, then stops the clients and records their counts. The
   * load flows before `op` and again through the daemon `op` leaves running.
   */
  const underLoad = async (operation: string, op: () => Promise<string>): Promise<LoadResult> => {
    const label = `r${++runs}`;
    const stopFile = `${LOAD_DIR}/${label}.stop`;
    const sockets = PEERS.map((id) => `${SOCKETS}/${id}`);
    const start = served();
    const load = box().c.exec(['node', '-e', LOAD_JS, stopFile, `${hostId}.${label}`, String(CLIENTS), '60000', ...sockets], { user: 'www-data', timeoutMs: 10 * 60_000 });
    let stopped = false;
    try {
      await waitFor('the load flowing', 30_000, async () => (served() >= start + 200 ? true : undefined), 50);
      const spacing = lastOperation + startSpacingMs - Date.now();
      if (spacing > 0) await sleep(spacing);
      const detail = await op();
      lastOperation = Date.now();
      await box().sh(`touch ${stopFile}`);
      stopped = true;
      const result = JSON.parse((await load).stdout) as LoadResult;
      const row = { operation, run: rows.filter((r) => r.operation === operation).length + 1, counts: result.counts, detail };
      rows.push(row);
      const problems = result.problems.map((p) => `${new Date(p.at).toISOString()} ${p.token} on ${path.posix.basename(p.socket)}: ${p.why}`);
      say(`${operation} #${row.run}: ${result.counts.requests} requests, ${result.counts.answered} answered, ${result.counts.conLost} con_lost, ${result.counts.other} other, longest wait ${(result.counts.maxMs / 1000).toFixed(1)} s; ${detail}${problems.length > 0 ? `\n      ${problems.join('\n      ')}` : ''}`);
      return result;
    } finally {
      if (!stopped) {
        await box().sh(`touch ${stopFile}`, { allowFail: true });
        await load.catch(() => undefined);
      }
    }
  };
  /** Runs that lost requests: checked at the end of each proof, so every run is measured and printed. */
  let lossy: string[] = [];
  const lossless = (r: LoadResult, what: string): void => {
    const lost = r.counts.requests - r.counts.answered;
    if (lost > 0 || r.problems.length > 0) lossy.push(`${what}: ${lost} of ${r.counts.requests} requests without their own answer (${r.problems.map((p) => p.why).join(', ')})`);
    assert.ok(r.counts.requests > 400, `the clients kept asking through ${what}`);
  };
  const noneLost = (): void => {
    const runs = lossy;
    lossy = [];
    assert.deepEqual(runs, [], 'every request gets its own answer, in every run');
  };

  describe(`Debian ${n} (${release})`, { timeout: 30 * 60_000, concurrency: 1 }, () => {
    before(async () => {
      let t0 = Date.now();
      deb = await buildDeb(release);
      version = /_([^_]+)_[^_]+\.deb$/.exec(deb)?.[1] ?? '';
      // The same higher version and place as package.test.ts's upgrade: built once.
      newVersion = version.replace(/u(\d+)$/, (_m, u: string) => `u${Number(u) + 1}`);
      assert.notEqual(newVersion, version);
      newDeb = await buildDeb(release, { version: newVersion, outdir: path.join(cacheDir(), `upgrade-${release}`) });
      assert.equal((await run(['dpkg', '--compare-versions', newVersion, 'gt', version], { allowFail: true })).code, 0);
      say(`scripts/build-deb ${release}: ${path.basename(deb)} and ${path.basename(newDeb)} in ${secondsSince(t0)}`);
      t0 = Date.now();
      c = await Container.boot(release, hostId);
      sd = new Systemd(c);
      say(`container ${hostId} booted in ${secondsSince(t0)}`);

      for (const d of [deb, newDeb]) await c.copyIn(d, `/srv/${path.basename(d)}`);
      await c.exec(['apt-get', 'install', '-y', '--no-install-recommends', `/srv/${path.basename(deb)}`], { timeoutMs: 300_000 });
      await box().sh('systemctl stop gatewayc');
      await box().sh(`mkdir -p ${LOAD_DIR} && chmod 755 ${LOAD_DIR} && cat > ${WEDGE_JS}`, { input: WEDGE_SOURCE });

      londs = await startLondNetwork([...PEERS], hostId, { firstAddress, encryptAnswers: true });
      const conf = [
        '',
        '# system test: the fake lond on the host, insecure keys',
        `PerlSetVar lonHostID ${hostId}`,
        `PerlSetVar londPort ${londs.port}`,
        'PerlSetVar gatewaycKeyMode insecure',
        'PerlSetVar gatewaycConnectTimeout 2',
        'PerlSetVar gatewaycHandshakeTimeout 3',
        'PerlSetVar gatewaycRequestTimeout 15',
        'PerlSetVar gatewaycRetryMax 2',
      ];
      const hosts = [`${hostId}:testdom:library:${hostId}.example:127.0.0.1`, ...PEERS.map((id) => `${id}:testdom:library:${id}.example:${londs?.addressOf(id) ?? ''}`)];
      await box().sh(`cat >> ${CONF}`, { input: `${conf.join('\n')}\n` });
      await box().sh(`cat >> ${HOSTS}`, { input: `${hosts.join('\n')}\n` });
      await box().sh('systemctl daemon-reload && systemctl start gatewayc', { timeoutMs: 60_000 });
      const limit = await box().show('gatewayc', ['StartLimitBurst', 'StartLimitIntervalUSec']);
      startSpacingMs = timespanMs(limit.StartLimitIntervalUSec ?? '') / Math.max(1, Number(limit.StartLimitBurst) - 1) + 500;
      const sockets = await box().out('systemctl list-sockets --no-legend --plain');
      for (const id of PEERS) assert.match(sockets, new RegExp(`^${SOCKETS}/${id}\\s+gatewayc@${id}\\.socket\\s`, 'm'), 'systemd holds the peer socket');
      say(`${version} installed, peers ${PEERS.join(', ')} (fake londs on 127.0.0.${firstAddress}+:${londs.port}), systemd holds their sockets`);
    });

    beforeEach(() => {
      lossy = [];
    });

    after(async () => {
      if (rows.length > 0) process.stderr.write(`${table(release, rows)}\n`);
      try {
        await c?.poweroff();
      } finally {
        await londs?.stop();
      }
    });

    it('1. systemctl restart gatewayc: every request gets its own answer', async () => {
      for (let i = 0; i < REPEAT; i++) {
        const r = await underLoad('systemctl restart', async () => {
          const pid = await mainPid();
          const t0 = Date.now();
          await box().sh('systemctl restart gatewayc', { timeoutMs: 60_000 });
          const took = secondsSince(t0);
          const pidAfter = await servingAgain(pid);
          return `pid ${pid} -> ${pidAfter}, systemctl restart took ${took}`;
        });
        lossless(r, 'systemctl restart');
      }
      noneLost();
    });

    it('2. apt install of a higher version (upgrade): every request gets its own answer', async () => {
      const sockets = [...PEERS.map((id) => `gatewayc@${id}.socket`), 'gatewayc-control.socket'];
      const since = (): Promise<string[]> => Promise.all(sockets.map((u) => box().prop(u, 'ActiveEnterTimestampMonotonic')));
      const socketsSince = await since();
      const apt = async (to: string, file: string): Promise<string> => {
        const pid = await mainPid();
        const from = await installed();
        const t0 = Date.now();
        await box().c.exec(['apt-get', 'install', '-y', '--no-install-recommends', '--allow-downgrades', `/srv/${path.basename(file)}`], { timeoutMs: 300_000 });
        const took = secondsSince(t0);
        assert.equal(await installed(), to);
        const pidAfter = await servingAgain(pid);
        return `${from} -> ${to} in ${took}, pid ${pid} -> ${pidAfter}`;
      };
      for (let i = 0; i < REPEAT; i++) {
        if (i > 0) lossless(await underLoad('apt install of the lower version (downgrade, to upgrade again)', () => apt(version, deb)), 'a downgrade');
        lossless(await underLoad('apt install of a higher version (upgrade)', () => apt(newVersion, newDeb)), 'an upgrade');
      }
      noneLost();
      assert.deepEqual(await since(), socketsSince, 'the socket units were never restarted');
      say('the peer and control socket units were never restarted by the package');
    });

    it('3. systemctl stop, then a waiting client starts the service again: every request gets its own answer', async () => {
      for (let i = 0; i < REPEAT; i++) {
        const r = await underLoad('systemctl stop + socket activation', async () => {
          const pid = await mainPid();
          const restarts = await box().prop('gatewayc', 'NRestarts');
          const t0 = Date.now();
          await box().sh('systemctl stop gatewayc', { timeoutMs: 60_000 });
          const took = secondsSince(t0);
          const pidAfter = await servingAgain(pid);
          // Started by a client on a socket, not by Restart=: the stop was clean.
          assert.equal(await box().prop('gatewayc', 'NRestarts'), restarts);
          assert.equal(await box().prop('gatewayc', 'Result'), 'success');
          return `systemctl stop took ${took}; a waiting client started pid ${pidAfter} (was ${pid})`;
        });
        lossless(r, 'systemctl stop and socket activation');
      }
      noneLost();
    });

    it('4. watchdog restart while the event loop still runs (SIGSTOP): every request gets its own answer', async () => {
      await box().sh(`mkdir -p ${path.posix.dirname(WATCHDOG_DROPIN)} && printf '[Service]\\nWatchdogSec=${WATCHDOG_SEC}s\\nEnvironment=NODE_OPTIONS=--require=${WEDGE_JS}\\n' > ${WATCHDOG_DROPIN}`);
      await box().sh('systemctl daemon-reload && systemctl restart gatewayc', { timeoutMs: 60_000 });
      assert.equal(await box().prop('gatewayc', 'WatchdogUSec'), `${WATCHDOG_SEC}s`);
      const signal = await box().prop('gatewayc', 'WatchdogSignal');
      for (let i = 0; i < REPEAT; i++) {
        const r = await underLoad('watchdog (SIGSTOP)', async () => {
          const pid = await mainPid();
          const cursor = await box().cursor();
          const t0 = Date.now();
          await box().sh(`kill -STOP ${pid}`);
          const pidAfter = await servingAgain(pid);
          const took = secondsSince(t0);
          const log = await box().messages('gatewayc.service', { after: cursor });
          assert.ok(log.some((m) => /[Ww]atchdog timeout/.test(m)), `"Watchdog timeout" in:\n${log.join('\n')}`);
          assert.ok(log.some((m) => m.includes("Failed with result 'watchdog'")), `"Failed with result 'watchdog'" in:\n${log.join('\n')}`);
          // systemd's WatchdogSignal (with a SIGCONT) woke it, and it stopped by itself in time.
          assert.ok(!log.some((m) => /timed out\. Killing/.test(m)), `not killed:\n${log.join('\n')}`);
          return `Watchdog timeout, WatchdogSignal=${signal}; pid ${pid} -> ${pidAfter} ${took} after kill -STOP`;
        });
        lossless(r, 'a watchdog restart');
      }
      noneLost();
    });

    it('5. a truly wedged event loop: killed TimeoutAbortSec after the watchdog, clients queued meanwhile are served', async () => {
      assert.equal(await box().prop('gatewayc', 'WatchdogUSec'), `${WATCHDOG_SEC}s`);
      const abortSec = Number(await box().prop('gatewayc', 'TimeoutAbortUSec').then((v) => /^(\d+)s$/.exec(v)?.[1] ?? 'NaN'));
      assert.ok(abortSec > 0 && abortSec <= 15, `TimeoutAbortSec is short (${abortSec} s)`);
      let took = 0;
      const r = await underLoad('watchdog (wedged loop)', async () => {
        const pid = await mainPid();
        const cursor = await box().cursor();
        const t0 = Date.now();
        await box().sh(`echo ${pid} > ${WEDGE_FILE}`);
        const pidAfter = await servingAgain(pid);
        took = (Date.now() - t0) / 1000;
        await box().sh(`rm -f ${WEDGE_FILE}`);
        const log = await box().messages('gatewayc.service', { after: cursor });
        assert.ok(log.some((m) => /[Ww]atchdog timeout/.test(m)), `"Watchdog timeout" in:\n${log.join('\n')}`);
        assert.ok(log.some((m) => /timed out\. Killing/.test(m)), `killed after TimeoutAbortSec:\n${log.join('\n')}`);
        return `Watchdog timeout, SIGTERM unanswered, SIGKILL after TimeoutAbortSec=${abortSec}s; pid ${pid} -> ${pidAfter} ${took.toFixed(1)} s after the wedge`;
      });
      // Watchdog period, the abort timeout, then a start: a little slack for a busy machine.
      assert.ok(took <= WATCHDOG_SEC + abortSec + 10, `the wedged daemon was replaced ${took} s after it wedged`);
      // Only requests the wedged daemon had accepted can be lost; none that waited in the queue.
      assert.ok(r.counts.conLost + r.counts.other <= CLIENTS, `at most one request per client lost (${r.counts.conLost + r.counts.other})`);
      await box().sh(`rm -f ${WATCHDOG_DROPIN} && systemctl daemon-reload`);
    });
  });
}

describe('gatewayc restart and upgrade lose no request, in booted containers', { skip: unavailable ?? false, concurrency: process.env.GATEWAYC_SYSTEM_SERIAL ? 1 : true }, () => {
  for (const release of RELEASES) releaseSuite(release);
});
