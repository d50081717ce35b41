import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createNotifier, SdNotifyAddon, watchdogIntervalMs } from '../../src/systemd/notify';
import type { Logger } from '../../src/log';

const NOTIFY_JS = path.resolve(__dirname, '../../src/systemd/notify.js');
const LOG_JS = path.resolve(__dirname, '../../src/log.js');

function memoryLog(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      out.push(String(chunk));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, dest), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

function fakeAddon(): { addon: SdNotifyAddon; sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    addon: {
      ready: () => sent.push('READY=1'),
      sendStatus: (t) => sent.push(`STATUS=${t}`),
      watchdog: () => sent.push('WATCHDOG=1'),
      sendState: (s) => sent.push(s),
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// --- without the real addon -------------------------------------------------------------

test('without NOTIFY_SOCKET every method is a no-op and the addon is not loaded', () => {
  let loads = 0;
  const n = createNotifier({ WATCHDOG_USEC: '1000' }, memoryLog().log, () => {
    loads++;
    throw new Error('must not load');
  });
  assert.equal(n.enabled, false);
  n.ready();
  n.status('x');
  n.reloading();
  n.stopping();
  n.startWatchdog(() => true);
  n.close();
  assert.equal(loads, 0);
});

test('an addon that cannot load is one clear line', () => {
  const err = new Error("The module '/x/notify.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 108.");
  assert.throws(
    () => createNotifier({ NOTIFY_SOCKET: '/run/systemd/notify' }, memoryLog().log, () => { throw err; }),
    (e: Error) => {
      assert.equal(
        e.message,
        "cannot load the sd-notify addon (The module '/x/notify.node'): systemd would wait for READY=1 forever; reinstall gatewayc",
      );
      return true;
    },
  );
});

test('status is one line and identical consecutive lines are sent once', () => {
  const { addon, sent } = fakeAddon();
  const n = createNotifier({ NOTIFY_SOCKET: '/x' }, memoryLog().log, () => addon);
  assert.equal(n.enabled, true);
  n.status('3/4 peers up');
  n.status('3/4 peers up');
  n.status('4/4 peers up\nsecond line\r\x00');
  n.status('3/4 peers up');
  assert.deepEqual(sent, ['STATUS=3/4 peers up', 'STATUS=4/4 peers up second line', 'STATUS=3/4 peers up']);
});

test('reloading carries the monotonic clock in microseconds', () => {
  const { addon, sent } = fakeAddon();
  const n = createNotifier({ NOTIFY_SOCKET: '/x' }, memoryLog().log, () => addon);
  const before = process.hrtime.bigint() / 1000n;
  n.reloading();
  const after = process.hrtime.bigint() / 1000n;
  const m = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(sent[0] ?? '');
  assert.ok(m, sent[0]);
  assert.ok(BigInt(m[1]) >= before && BigInt(m[1]) <= after);
});

test('the watchdog period is half of WATCHDOG_USEC, and only for our pid', () => {
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 7), 15000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 7), 15000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '8' }, 7), undefined);
  assert.equal(watchdogIntervalMs({}, 7), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 7), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }, 7), undefined);
});

test('watchdog pings only while healthy, logs the change once, stops on close', async () => {
  const { addon, sent } = fakeAddon();
  const { log, lines } = memoryLog();
  const n = createNotifier({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '20000' }, log, () => addon);
  let healthy = true;
  n.startWatchdog(() => healthy);
  await sleep(120);
  const healthyPings = sent.length;
  assert.ok(healthyPings >= 3, `pings while healthy: ${healthyPings}`);
  healthy = false;
  await sleep(25);
  const atSick = sent.length;
  await sleep(100);
  assert.equal(sent.length, atSick, 'no ping while unhealthy');
  healthy = true;
  await sleep(60);
  assert.ok(sent.length > atSick, 'pings resume');
  n.close();
  const atClose = sent.length;
  await sleep(60);
  assert.equal(sent.length, atClose, 'no ping after close');
  assert.ok(sent.every((s) => s === 'WATCHDOG=1'));
  const msgs = lines().map((l) => `${l.level} ${l.msg}`);
  assert.equal(msgs.filter((m) => m.startsWith('40 unhealthy')).length, 1, msgs.join('\n'));
  assert.equal(msgs.filter((m) => m.startsWith('30 healthy again')).length, 1, msgs.join('\n'));
});

test('a health check that throws withholds the ping', async () => {
  const { addon, sent } = fakeAddon();
  const { log, lines } = memoryLog();
  const n = createNotifier({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '20000' }, log, () => addon);
  n.startWatchdog(() => {
    throw new Error('boom');
  });
  await sleep(60);
  n.close();
  assert.deepEqual(sent, []);
  assert.ok(lines().some((l) => l.level === 50 && /boom/.test(String(l.msg))));
});

test('no watchdog when systemd asked for none, or for another pid', async () => {
  for (const env of [{ NOTIFY_SOCKET: '/x' }, { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '20000', WATCHDOG_PID: String(process.pid + 1) }]) {
    const { addon, sent } = fakeAddon();
    const n = createNotifier(env, memoryLog().log, () => addon);
    n.startWatchdog(() => true);
    await sleep(50);
    n.close();
    assert.deepEqual(sent, [], JSON.stringify(env));
  }
});

test('after stopping(), withheld pings are expected and not warned about', async () => {
  const { addon } = fakeAddon();
  const { log, lines } = memoryLog();
  const n = createNotifier({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '20000' }, log, () => addon);
  n.startWatchdog(() => false);
  n.stopping();
  await sleep(50);
  n.close();
  assert.deepEqual(lines().filter((l) => l.level === 40), []);
});

// --- with the real addon and a real notification socket -------------------------------------

/**
 * Why the real addon cannot be used here, or false. sd-notify is an optional dependency:
 * `npm ci` on a machine without libsystemd-dev (or a compiler) leaves it unbuilt, and the
 * daemon then runs without systemd; these tests have nothing to test there.
 */
function addonMissing(): string | false {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('sd-notify');
    return false;
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    return `the sd-notify addon is not built here (npm ci without libsystemd-dev and a compiler?): ${first}`;
  }
}
const withAddon = { skip: addonMissing() };

interface Datagram {
  t: number;
  d: string;
}

/** A NOTIFY_SOCKET listener: node has no AF_UNIX datagram sockets, python does. */
async function notifySocket(dir: string): Promise<{ path: string; got: Datagram[]; stop: () => void }> {
  const sock = path.join(dir, 'notify');
  const py = spawn('python3', [
    '-c',
    `import socket, sys, json, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    d = s.recv(65536)
    print(json.dumps({"t": time.monotonic() * 1000, "d": d.decode()}), flush=True)`,
    sock,
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  const got: Datagram[] = [];
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    py.once('error', reject);
    py.once('exit', (code) => reject(new Error(`python3 exited ${code}`)));
    py.stdout!.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'bound') resolve();
        else got.push(JSON.parse(line) as Datagram);
      }
    });
  });
  return { path: sock, got, stop: () => py.kill() };
}

/** Runs `body` in a child node with the real addon; resolves with its exit code and stderr. */
function runChild(env: NodeJS.ProcessEnv, body: string): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> } {
  const script = `
    const { createNotifier } = require(${JSON.stringify(NOTIFY_JS)});
    const { createLogger } = require(${JSON.stringify(LOG_JS)});
    const pino = require('pino');
    const log = createLogger('info', { env: {}, destination: pino.destination({ fd: 2, sync: true }) });
    const n = createNotifier(process.env, log);
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const busy = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
    (async () => { ${body} })().catch((e) => { console.error(e); process.exit(1); });`;
  const child = spawn(process.execPath, ['-e', script], {
    cwd: path.resolve(__dirname, '../../..'),
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
  return { child, done };
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-notify-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('real datagrams: READY, STATUS (deduplicated), RELOADING with MONOTONIC_USEC, READY, STOPPING', withAddon, async (t) => {
  const ns = await notifySocket(tmp(t));
  t.after(ns.stop);
  const { done } = runChild({ NOTIFY_SOCKET: ns.path }, `
    n.ready();
    n.status('2/3 peers up');
    n.status('2/3 peers up');
    n.status('3/3 peers up');
    n.reloading();
    n.ready();
    n.stopping();
    n.close();`);
  const { code, stderr } = await done;
  assert.equal(code, 0, stderr);
  await sleep(100);
  const states = ns.got.map((g) => g.d.replace(/\n$/, ''));
  assert.equal(states.length, 6, JSON.stringify(states));
  assert.deepEqual(states.slice(0, 3), ['READY=1', 'STATUS=2/3 peers up', 'STATUS=3/3 peers up']);
  const m = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(states[3] ?? '');
  assert.ok(m, states[3]);
  // The same clock as python's time.monotonic (CLOCK_MONOTONIC), in µs.
  const receivedUs = (ns.got[3] as Datagram).t * 1000;
  assert.ok(Math.abs(Number(m[1]) - receivedUs) < 1e6, `${m[1]} vs ${receivedUs}`);
  assert.deepEqual(states.slice(4), ['READY=1', 'STOPPING=1']);
});

test('real datagrams: WATCHDOG=1 every WATCHDOG_USEC/2, none while unhealthy or while the loop is wedged', withAddon, async (t) => {
  const ns = await notifySocket(tmp(t));
  t.after(ns.stop);
  const { done } = runChild({ NOTIFY_SOCKET: ns.path, WATCHDOG_USEC: '200000' }, `
    let healthy = true;
    n.startWatchdog(() => healthy);
    n.status('phase healthy');
    await sleep(650);
    healthy = false;
    n.status('phase sick');
    await sleep(650);
    healthy = true;
    n.status('phase recovered');
    await sleep(450);
    n.status('phase wedged');
    busy(700);
    n.status('phase unwedged');
    await sleep(350);
    n.close();`);
  const { code, stderr } = await done;
  assert.equal(code, 0, stderr);
  await sleep(100);
  const marks = new Map<string, number>();
  ns.got.forEach((g, i) => {
    const m = /^STATUS=phase (\w+)/.exec(g.d);
    if (m) marks.set(m[1] as string, i);
  });
  assert.deepEqual([...marks.keys()], ['healthy', 'sick', 'recovered', 'wedged', 'unwedged']);
  const between = (a: string, b: string): Datagram[] => ns.got.slice((marks.get(a) as number) + 1, marks.get(b));
  const pings = (ds: Datagram[]): Datagram[] => ds.filter((g) => g.d.replace(/\n$/, '') === 'WATCHDOG=1');

  const healthy = pings(between('healthy', 'sick'));
  assert.ok(healthy.length >= 4 && healthy.length <= 7, `pings in 650 ms at 100 ms: ${healthy.length}`);
  for (let i = 1; i < healthy.length; i++) {
    const gap = (healthy[i] as Datagram).t - (healthy[i - 1] as Datagram).t;
    assert.ok(gap > 60 && gap < 250, `gap ${gap} ms`);
  }
  assert.equal(pings(between('sick', 'recovered')).length, 0, 'no ping while healthy() is false');
  assert.ok(pings(between('recovered', 'wedged')).length >= 2, 'pings resume');
  // The wedged loop sent nothing: the first ping after it comes only once the loop runs again.
  const wedgedAt = (ns.got[marks.get('wedged') as number] as Datagram).t;
  const firstAfter = pings(ns.got.slice((marks.get('wedged') as number) + 1))[0];
  assert.ok(firstAfter, 'pings after the wedge');
  assert.ok(firstAfter.t - wedgedAt >= 650, `first ping ${firstAfter.t - wedgedAt} ms after the wedge began`);

  const warnings = stderr.split('\n').filter((l) => l.includes('watchdog pings withheld'));
  assert.equal(warnings.length, 1, stderr);
});

test('real addon: WATCHDOG_PID of another process means no pings; the timer never keeps the process alive', withAddon, async (t) => {
  const ns = await notifySocket(tmp(t));
  t.after(ns.stop);
  const started = Date.now();
  const { done } = runChild({ NOTIFY_SOCKET: ns.path, WATCHDOG_USEC: '100000', WATCHDOG_PID: '1' }, `
    n.startWatchdog(() => true);
    await sleep(300);
    n.status('done');`);
  const { code, stderr } = await done;
  assert.equal(code, 0, stderr);
  assert.ok(Date.now() - started < 5000);
  await sleep(100);
  assert.deepEqual(ns.got.map((g) => g.d.replace(/\n$/, '')), ['STATUS=done']);

  // Our own pid: the child's only remaining work is the unref'd watchdog timer, so it exits.
  const own = runChild({ NOTIFY_SOCKET: ns.path, WATCHDOG_USEC: '100000' }, `n.startWatchdog(() => true);`);
  const timer = setTimeout(() => own.child.kill(), 5000);
  const r = await own.done;
  clearTimeout(timer);
  assert.equal(r.code, 0, 'exited by itself');
});
