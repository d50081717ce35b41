// Issue 7, fault suite, lond side: every way a peer can misbehave. Each test checks what
// the affected client gets (an answer or con_lost, never a hang past the request
// timeout), that another peer carries on, and that the daemon recovers by itself.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { afterEach, describe, test } from 'node:test';
import { FakeLond, LondFaults, LondHandler, LondNetworkOptions } from '../support/fake-lond';
import { ask, Client, sleep, TestDaemon } from '../support/daemon';
import { Cleanup, lond, londsAndDaemon, Network } from '../support/fixture';

const HOST = 'gwfault1';
/** Every slow-fault test runs with this request timeout; SLACK covers a loaded CI machine. */
const REQUEST_TIMEOUT_S = 1.5;
const SLACK_MS = 1500;
const FAST = { gatewaycRequestTimeout: REQUEST_TIMEOUT_S, gatewaycHandshakeTimeout: 1, gatewaycConnectTimeout: 1, gatewaycRetryMax: 0.5 };

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Peers `ids` on a fake lond network, plus `extra` hosts.tab lines (id → address) that have no lond. */
function setup(ids: string[], settings: Record<string, string | number> = {}, londOpts: LondNetworkOptions = {}, extra: Record<string, string> = {}, faults: Record<string, LondFaults> = {}): Promise<{ net: Network; d: TestDaemon }> {
  return londsAndDaemon(cleanup, { hostId: HOST, ids, settings: { ...FAST, ...settings }, lond: londOpts, extra, faults, waitUp: true });
}


/** Asks and measures: the answer and how long it took. */
/**
 * One request on a fresh connection; `ms` counts from the moment the whole line has left
 * the client (the request timeout runs from its arrival), so that uploading a large
 * request on a loaded machine is not mistaken for the daemon keeping the client waiting.
 */
function timedAsk(sock: string, line: string | Buffer): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let sentAt = Date.now();
    let buf = Buffer.alloc(0);
    c.on('connect', () => c.write(Buffer.concat([Buffer.isBuffer(line) ? line : Buffer.from(line), Buffer.from('\n')]), () => (sentAt = Date.now())));
    c.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(10);
      if (nl < 0) return;
      c.destroy();
      resolve({ answer: buf.subarray(0, nl).toString('utf8'), ms: Date.now() - sentAt });
    });
    c.on('error', reject);
  });
}

/** con_lost, and no later than the request timeout (plus slack). */
function assertConLostInTime(r: { answer: string; ms: number }, what: string): void {
  assert.equal(r.answer, 'con_lost', `${what}: expected con_lost`);
  assert.ok(r.ms <= REQUEST_TIMEOUT_S * 1000 + SLACK_MS, `${what}: the client waited ${r.ms} ms, past the request timeout`);
}

/** One request on a fresh connection, the answer as raw bytes; copes with answers of many MB. */
function askBig(sock: string, line: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    const chunks: Buffer[] = [];
    c.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (chunk.includes(10)) {
        const all = Buffer.concat(chunks);
        c.destroy();
        resolve(all.subarray(0, all.indexOf(10)));
      }
    });
    c.on('error', reject);
    c.on('close', () => reject(new Error('closed before an answer')));
    c.write(`${line}\n`);
  });
}

function vmRssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS not found');
  return Number(m[1]);
}

/** Samples the daemon's RSS until stopped; returns the peak in kB. */
function rssMonitor(pid: number): { stop(): number } {
  let peak = vmRssKb(pid);
  const t = setInterval(() => {
    try {
      peak = Math.max(peak, vmRssKb(pid));
    } catch {
      // the process is gone; the test notices on its own
    }
  }, 25);
  return {
    stop() {
      clearInterval(t);
      return peak;
    },
  };
}

/** The healthy neighbour answers, quickly, while the other peer is in trouble. */
async function neighbourFine(d: TestDaemon, id = 'fine', expected = id): Promise<void> {
  const r = await timedAsk(d.socketPath(id), 'ping');
  assert.equal(r.answer, expected, 'the unaffected peer answers');
  assert.ok(r.ms < 1000, `the unaffected peer was slowed down (${r.ms} ms)`);
}

/** The reasons given for a peer's failures (what `gatewayctl status` shows as LAST ERROR). */
const reasons = (d: TestDaemon, peer: string): string[] => d.logs.filter((l) => l.peer === peer && typeof l.reason === 'string').map((l) => l.reason as string);

describe('lond dies', () => {
  test('killed mid-request: con_lost at once, not re-sent; the next request reconnects', async () => {
    const { net: n, d } = await setup(['victim', 'fine']);
    const l = lond(n, 'victim');
    assert.equal(await ask(d.socketPath('victim'), 'ping'), 'victim');
    l.faults.killOnRequest = true;
    const r = await timedAsk(d.socketPath('victim'), 'put:once');
    assert.equal(r.answer, 'con_lost');
    assert.ok(r.ms < 1000, `a cut session is reported at once, not at the timeout (${r.ms} ms)`);
    await neighbourFine(d);
    l.faults.killOnRequest = false;
    assert.equal(await ask(d.socketPath('victim'), 'ping'), 'victim');
    assert.equal(l.received.filter((x) => x.plain.toString() === 'put:once').length, 1, 'a written request is never re-sent');
  });

  test('the whole lond goes away mid-request, nothing listens, then it comes back on its own', async () => {
    const { net: n, d } = await setup(['phoenix', 'fine'], { gatewaycMaxAttempts: 2 });
    const l = lond(n, 'phoenix');
    assert.equal(await ask(d.socketPath('phoenix'), 'ping'), 'phoenix');
    const inFlight = timedAsk(d.socketPath('phoenix'), 'sleep:3000');
    await l.waitFor(() => l.received.some((x) => x.plain.toString() === 'sleep:3000'), 2000, 'request in flight');
    await l.stop();
    const r = await inFlight;
    assert.equal(r.answer, 'con_lost');
    assert.ok(r.ms < 1500, `the cut was reported at once (${r.ms} ms)`);
    // Nothing listens now: refused connects, then down, then immediate con_lost.
    await d.waitLog((x) => x.peer === 'phoenix' && x.event === 'peer.down' && x.failures === 2, 10_000, 'down');
    assert.ok(reasons(d, 'phoenix').some((m) => /connection refused by 127\.0\.0\.\d+:\d+/.test(m)), 'the reason names the refused connect');
    const fastFail = await timedAsk(d.socketPath('phoenix'), 'ping');
    assert.equal(fastFail.answer, 'con_lost');
    assert.ok(fastFail.ms < 500, 'a down peer answers con_lost at once');
    await neighbourFine(d);
    // Back on the same address and port: the slow retry of a down peer finds it.
    const again = await FakeLond.start({ id: 'phoenix', clientId: HOST, host: n.addressOf('phoenix'), port: n.port });
    cleanup.add(() => again.stop());
    await d.waitLog((x) => x.peer === 'phoenix' && x.event === 'peer.up' && x.from === 'down', 5000, 'up again');
    assert.equal(await ask(d.socketPath('phoenix'), 'ping'), 'phoenix');
  });
});

describe('lond that does not answer', () => {
  test('accepts and never says anything: handshake times out, con_lost within the request timeout', async () => {
    const { net: n, d } = await setup(['mute', 'fine'], { gatewaycMaxAttempts: 10 }, {});
    const l = lond(n, 'mute');
    l.faults.silent = true;
    l.killAll(); // the first session was already up; start over with a lond that is silent from the start
    await l.waitFor(() => l.stats.connections >= 2, 5000, 'a reconnect to the silent lond');
    const r = await timedAsk(d.socketPath('mute'), 'ping');
    assertConLostInTime(r, 'silent lond');
    await neighbourFine(d);
    assert.ok(reasons(d, 'mute').some((m) => /no answer to the init step within 1 s/.test(m)), 'the handshake timeout is logged');
    l.faults.silent = false;
    await d.waitLog((x) => x.peer === 'mute' && x.event === 'peer.up' && d.logs.indexOf(x) > d.logs.findIndex((y) => /no answer to the init step/.test(String(y.reason))), 10_000, 'up again');
    assert.equal(await ask(d.socketPath('mute'), 'ping'), 'mute');
  });

  test('goes silent on an open session: con_lost at the timeout, session replaced, late answers never misdelivered', async () => {
    const { net: n, d } = await setup(['stall', 'fine'], { gatewaycMaxSessions: 1 });
    const l = lond(n, 'stall');
    assert.equal(await ask(d.socketPath('stall'), 'ping'), 'stall');
    const before = l.stats.connections;
    l.faults.stallRequests = true;
    // Two clients: one in flight, one queued behind it on the only session.
    const [a, b] = await Promise.all([timedAsk(d.socketPath('stall'), 'echo:first'), (async () => {
      await sleep(100);
      return timedAsk(d.socketPath('stall'), 'echo:second');
    })()]);
    assertConLostInTime(a, 'in-flight request');
    assertConLostInTime(b, 'queued request');
    await neighbourFine(d);
    l.faults.stallRequests = false;
    assert.equal(await ask(d.socketPath('stall'), 'echo:third'), 'third');
    assert.ok(l.stats.connections > before, 'the stalled session was replaced');
  });

  test('half a line then a stall: con_lost, and the next answer is not polluted by the half line', async () => {
    const { net: n, d } = await setup(['halfway', 'fine']);
    const l = lond(n, 'halfway');
    const c = await Client.connect(d.socketPath('halfway'));
    assert.equal(await c.ask('ping'), 'halfway');
    l.faults.halfAnswer = true;
    const started = Date.now();
    assert.equal(await c.ask('echo:ABCDEFGHIJKLMNOP'), 'con_lost');
    assert.ok(Date.now() - started <= REQUEST_TIMEOUT_S * 1000 + SLACK_MS);
    await neighbourFine(d);
    l.faults.halfAnswer = false;
    // Same client connection: it carries on after the con_lost.
    assert.equal(await c.ask('echo:whole'), 'whole');
    c.close();
  });
});

describe('lond that answers nonsense', () => {
  test('binary, empty, two lines, no newline, malformed enc: — each answered or con_lost, peer recovers', async () => {
    const { net: n, d } = await setup(['babble', 'fine'], { gatewaycMaxSessions: 1 });
    const l = lond(n, 'babble');
    const c = await Client.connect(d.socketPath('babble'));
    assert.equal(await c.ask('ping'), 'babble');

    // Binary bytes pass through unchanged (only the final '\n' is framing).
    const binary = Buffer.from([0x00, 0xff, 0x80, 0x1b, 0x0d, 0x41, 0xc3, 0x28, 0x7f]);
    l.faults.garbage = Buffer.concat([binary, Buffer.from('\n')]);
    assert.deepEqual(await c.askRaw('ping'), binary);

    // An empty line is an (empty) answer, as in the seed: lonnet reads it as "unreachable".
    l.faults.garbage = Buffer.from('\n');
    assert.equal(await c.ask('ping'), '');

    // Two lines for one request: the first is the answer, the stray second one ends the session.
    const sessions = l.stats.connections;
    l.faults.garbage = Buffer.from('one\ntwo\n');
    assert.equal(await c.ask('ping'), 'one');
    await d.waitLog((x) => x.peer === 'babble' && /line nobody asked for/.test(String(x.reason)), 3000, 'stray line noticed');
    delete l.faults.garbage;
    assert.equal(await c.ask('echo:after-stray'), 'after-stray', 'the stray line is never taken as the next answer');
    assert.ok(l.stats.connections > sessions, 'a new session replaced the confused one');

    // Binary without any newline: a half line.
    l.faults.garbage = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]);
    const started = Date.now();
    assert.equal(await c.ask('ping'), 'con_lost');
    assert.ok(Date.now() - started <= REQUEST_TIMEOUT_S * 1000 + SLACK_MS);

    // An answer that claims to be enc: but is not decodable.
    l.faults.garbage = Buffer.from('enc:99:zz\n');
    assert.equal(await c.ask('ping'), 'con_lost');
    assert.ok(reasons(d, 'babble').some((m) => /malformed enc: answer/.test(m)));

    await neighbourFine(d);
    delete l.faults.garbage;
    assert.equal(await c.ask('echo:clean'), 'clean');
    c.close();
  });

  test('gatewaycMaxAnswerBytes: an answer at the limit passes, one byte over is con_lost, the peer recovers', async () => {
    const limit = 65536;
    const { net: n, d } = await setup(['wordy', 'fine'], { gatewaycMaxAnswerBytes: limit });
    const l = lond(n, 'wordy');
    const at = await askBig(d.socketPath('wordy'), `big:${limit}`);
    assert.equal(at.length, limit);
    assert.ok(at.every((b) => b === 0x78));
    const connections = l.stats.connections;
    assert.equal((await askBig(d.socketPath('wordy'), `big:${limit + 1}`)).toString(), 'con_lost');
    assert.ok(reasons(d, 'wordy').some((m) => /longer than gatewaycMaxAnswerBytes \(65536 bytes\)/.test(m)));
    await neighbourFine(d);
    assert.equal(await ask(d.socketPath('wordy'), 'ping'), 'wordy');
    assert.ok(l.stats.connections > connections, 'the session that overflowed was replaced');
  });

  test('a 50 MB answer line: delivered intact under the default limit (64 MiB), con_lost with bounded memory under a 1 MiB limit', async () => {
    const size = 50_000_000;
    const { d } = await setup(['huge'], { gatewaycRequestTimeout: 20 });
    const big = await askBig(d.socketPath('huge'), `big:${size}`);
    assert.equal(big.length, size);
    assert.ok(big.subarray(0, 1000).every((b) => b === 0x78) && big.subarray(-1000).every((b) => b === 0x78));

    const { d: small } = await setup(['huge2', 'fine'], { gatewaycMaxAnswerBytes: 1048576, gatewaycRequestTimeout: 20 });
    await ask(small.socketPath('huge2'), 'ping');
    const pid = small.proc.pid as number;
    const base = vmRssKb(pid);
    const mon = rssMonitor(pid);
    const started = Date.now();
    assert.equal((await askBig(small.socketPath('huge2'), `big:${size}`)).toString(), 'con_lost');
    assert.ok(Date.now() - started < 5000, 'the overflow is noticed as it happens, not at the timeout');
    const grown = mon.stop() - base;
    console.log(`# 50 MB answer over a 1 MiB gatewaycMaxAnswerBytes: daemon RSS +${Math.round(grown / 1024)} MB`);
    assert.ok(grown < 40 * 1024, `daemon RSS grew by ${grown} kB reading an over-long answer`);
    await neighbourFine(small);
    assert.equal(await ask(small.socketPath('huge2'), 'ping'), 'huge2');
  });
});

describe('lond that will not talk to us', () => {
  test('refuses the challenge echo: con_lost, down, fast con_lost; the challenge is not logged; back after the fix', async () => {
    const { net: n, d } = await setup(['picky', 'fine'], { gatewaycMaxAttempts: 2 }, {}, {}, { picky: { rejectChallenge: true } });
    const l = lond(n, 'picky');
    assertConLostInTime(await timedAsk(d.socketPath('picky'), 'ping'), 'rejected challenge');
    await d.waitLog((x) => x.peer === 'picky' && x.event === 'peer.down' && x.failures === 2 && /^handshake failed(?: \([a-z]+ key mode\))?: peer did not accept the challenge echo: answered "refused"/.test(String(x.reason)), 10_000, 'down');
    const fast = await timedAsk(d.socketPath('picky'), 'ping');
    assert.equal(fast.answer, 'con_lost');
    assert.ok(fast.ms < 500);
    await neighbourFine(d);
    const all = d.rawOutput.join('');
    for (const ch of l.challenges) assert.ok(!all.includes(ch), 'a challenge reached the log');
    l.faults.rejectChallenge = false;
    await d.waitLog((x) => x.peer === 'picky' && x.event === 'peer.up', 5000, 'up after the down-peer retry');
    assert.equal(await ask(d.socketPath('picky'), 'ping'), 'picky');
  });

  test('refused to init: con_lost; an answer "refused" to a request is passed to the client as it is', async () => {
    const handler: LondHandler = (cmd) => {
      const s = cmd.toString('latin1');
      if (s === 'ping') return 'pong';
      if (s.startsWith('echo:')) return cmd.subarray(5);
      return 'refused';
    };
    const { net: n, d } = await setup(['strict', 'fine'], { gatewaycMaxAttempts: 2 }, { handler });
    const l = lond(n, 'strict');
    assert.equal(await ask(d.socketPath('strict'), 'forbidden:thing'), 'refused', "lond's own refusal is an answer, not a failure");
    assert.equal(await ask(d.socketPath('strict'), 'ping'), 'pong', 'and the session carries on');
    l.faults.refuseInit = true;
    l.killAll();
    await d.waitLog((x) => x.peer === 'strict' && x.event === 'peer.down' && x.failures === 2 && /^handshake failed(?: \([a-z]+ key mode\))?: peer answered refused to init/.test(String(x.reason)), 10_000, 'down');
    assert.equal(await ask(d.socketPath('strict'), 'ping'), 'con_lost');
    await neighbourFine(d, 'fine', 'pong');
  });

  test('a port with nothing listening: con_lost, down, others unaffected; a lond that appears there is picked up', async () => {
    const { net: n, d } = await setup(['fine'], { gatewaycMaxAttempts: 2 }, {}, { nobody: '127.0.0.200' });
    const r = await timedAsk(d.socketPath('nobody'), 'ping');
    assertConLostInTime(r, 'nothing listening');
    await d.waitLog((x) => x.peer === 'nobody' && x.event === 'peer.down' && x.failures === 2 && /^connection refused by 127\.0\.0\.200/.test(String(x.reason)), 10_000, 'down');
    assert.equal(await ask(d.socketPath('nobody'), 'ping'), 'con_lost');
    await neighbourFine(d);
    const late = await FakeLond.start({ id: 'nobody', clientId: HOST, host: '127.0.0.200', port: n.port });
    cleanup.add(() => late.stop());
    await d.waitLog((x) => x.peer === 'nobody' && x.event === 'peer.up', 5000, 'up once something listens');
    assert.equal(await ask(d.socketPath('nobody'), 'ping'), 'nobody');
  });

  test('a host name that does not resolve: con_lost, down with the reason, others unaffected', async () => {
    const { d } = await setup(['fine'], { gatewaycMaxAttempts: 2 }, {}, { ghost: 'ghost.gatewayc-test.invalid' });
    assertConLostInTime(await timedAsk(d.socketPath('ghost'), 'ping'), 'unresolvable name');
    const down = await d.waitLog((x) => x.peer === 'ghost' && x.event === 'peer.down' && x.failures === 2, 10_000, 'down');
    assert.match(String(down.reason), /cannot resolve host name ghost\.gatewayc-test\.invalid|timed out/);
    assert.equal(await ask(d.socketPath('ghost'), 'ping'), 'con_lost');
    await neighbourFine(d);
  });

  test('resets every new connection: con_lost, down, back once it stops', async () => {
    const { net: n, d } = await setup(['resetter', 'fine'], { gatewaycMaxAttempts: 2 }, {}, {}, { resetter: { resetOnConnect: true } });
    const l = lond(n, 'resetter');
    assertConLostInTime(await timedAsk(d.socketPath('resetter'), 'ping'), 'reset on connect');
    const down = await d.waitLog((x) => x.peer === 'resetter' && x.event === 'peer.down' && x.failures === 2, 10_000, 'down');
    assert.match(String(down.reason), /reset|closed the connection/);
    await neighbourFine(d);
    l.faults.resetOnConnect = false;
    await d.waitLog((x) => x.peer === 'resetter' && x.event === 'peer.up', 5000, 'up again');
    assert.equal(await ask(d.socketPath('resetter'), 'ping'), 'resetter');
  });
});

describe('lond that stops reading', () => {
  test('large requests against a lond that never reads: con_lost at the timeout, memory bounded, recovery', async () => {
    const { net: n, d } = await setup(['deaf', 'fine'], { gatewaycMaxRequestBytes: 16 * 1024 * 1024, gatewaycMaxSessions: 2 });
    const l = lond(n, 'deaf');
    assert.equal(await ask(d.socketPath('deaf'), 'ping'), 'deaf');
    l.faults.stopReading = true;
    const pid = d.proc.pid as number;
    const base = vmRssKb(pid);
    const mon = rssMonitor(pid);
    // Four clients, 12 MB each: far more than the socket buffers hold.
    const big = `put:${'y'.repeat(12 * 1024 * 1024)}`;
    const results = await Promise.all(Array.from({ length: 4 }, () => timedAsk(d.socketPath('deaf'), big)));
    const grown = mon.stop() - base;
    console.log(`# 4 × 12 MB requests to a lond that stopped reading: daemon RSS +${Math.round(grown / 1024)} MB, answered after ${results.map((r) => r.ms).join(", ")} ms`);
    for (const [i, r] of results.entries()) assertConLostInTime(r, `client ${i}`);
    // 4 requests of 12 MB are held once each (client read buffer, then the session's write queue).
    assert.ok(grown < 160 * 1024, `daemon RSS grew by ${grown} kB`);
    await neighbourFine(d);
    l.faults.stopReading = false;
    assert.equal(await ask(d.socketPath('deaf'), 'echo:listening'), 'listening');
  });
});
