import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { startLondNetwork, LondNetworkOptions } from '../support/fake-lond';
import { ask, Client, sleep, startDaemon, TestDaemon, waitUntil, writeHostsTab } from '../support/daemon';
import { Cleanup, lond, londsAndDaemon, Network } from '../support/fixture';

const HOST = 'gwtest1';
const cleanup = new Cleanup();
after(() => cleanup.run());

function setup(ids: string[], settings: Record<string, string | number> = {}, londOpts: LondNetworkOptions = {}): Promise<{ net: Network; d: TestDaemon }> {
  return londsAndDaemon(cleanup, { hostId: HOST, ids, settings, lond: londOpts });
}


describe('requests', () => {
  test('plain and encrypted round trips, bytes unchanged', async () => {
    const { net, d } = await setup(['alpha']);
    const sock = d.socketPath('alpha');
    assert.equal(await ask(sock, 'ping'), 'alpha');
    const utf8 = 'echo:grüße – 日本語 \r tab\t';
    assert.equal(await ask(sock, utf8), utf8.slice(5));
    const binary = Buffer.from([0x65, 0x63, 0x68, 0x6f, 0x3a, 0x00, 0xff, 0x80, 0x0d, 0x7f]);
    const c = await Client.connect(sock);
    assert.deepEqual(await c.askRaw(binary), binary.subarray(5));
    // encrypt: goes over the wire as enc:, the fake lond decrypts it with OpenSSL's IDEA
    assert.equal(await c.ask('encrypt:echo:top secret ✓'), 'top secret ✓');
    c.close();
    const last = lond(net, 'alpha').received.at(-1);
    assert.ok(last);
    assert.equal(last.encrypted, true);
    assert.equal(last.plain.toString('utf8'), 'echo:top secret ✓');
    assert.ok(!last.raw.toString('latin1').includes('secret'), 'the wire must not carry the plaintext');
  });

  test('enc: answers are decrypted; lengths 0, 7, 8, 9, 16', async () => {
    const { d } = await setup(['beta'], {}, { encryptAnswers: true });
    const c = await Client.connect(d.socketPath('beta'));
    for (const s of ['', 'abcdefg', 'abcdefgh', 'abcdefghi', '0123456789abcdef', 'naïve ü']) {
      assert.equal(await c.ask(`encrypt:echo:${s}`), s);
    }
    c.close();
  });

  test('many clients at once, each gets its own answers in its order', async () => {
    const { net, d } = await setup(['gamma'], { gatewaycMaxSessions: 4 }, { serviceTimeMs: 2 });
    const clients = await Promise.all(Array.from({ length: 40 }, () => Client.connect(d.socketPath('gamma'))));
    await Promise.all(
      clients.map(async (c, ci) => {
        // pipelined: all 25 written before any answer is read
        const answers = await Promise.all(Array.from({ length: 25 }, (_, i) => c.ask(`echo:${ci}-${i}`)));
        assert.deepEqual(answers, Array.from({ length: 25 }, (_, i) => `${ci}-${i}`));
        c.close();
      }),
    );
    const l = lond(net, 'gamma');
    assert.ok(l.stats.connections > 1, 'load opens more sessions');
    assert.ok(l.stats.connections <= 4, `at most gatewaycMaxSessions sessions (saw ${l.stats.connections})`);
  });

  test('a slow request does not hold up another client while a session is free', async () => {
    const { d } = await setup(['delta'], { gatewaycMaxSessions: 2 });
    const slow = Client.connect(d.socketPath('delta')).then((c) => c.ask('sleep:1500'));
    await sleep(100);
    const started = Date.now();
    assert.equal(await ask(d.socketPath('delta'), 'ping'), 'delta');
    const fastMs = Date.now() - started;
    assert.equal(await slow, 'ok');
    assert.ok(fastMs < 1400, `the fast request waited for the slow one (${fastMs} ms)`);
  });

  test('a request longer than gatewaycMaxRequestBytes gets an error line; the client and others carry on', async () => {
    const { d } = await setup(['eps'], { gatewaycMaxRequestBytes: 1000 });
    const c = await Client.connect(d.socketPath('eps'));
    const answer = await c.ask(`echo:${'x'.repeat(5000)}`);
    assert.match(answer, /^error: request longer than gatewaycMaxRequestBytes \(1000 bytes\)/);
    assert.equal(await c.ask('echo:after'), 'after');
    assert.equal(await ask(d.socketPath('eps'), 'ping'), 'eps');
    c.close();
  });

  test('close_connection_exit closes the session and answers ok; the next request reconnects', async () => {
    const { net, d } = await setup(['zeta']);
    assert.equal(await ask(d.socketPath('zeta'), 'ping'), 'zeta');
    const l = lond(net, 'zeta');
    const before = l.stats.connections;
    assert.equal(await ask(d.socketPath('zeta'), 'close_connection_exit'), 'ok');
    await l.waitFor(() => l.stats.exits >= 1, 5000, 'exit sent to lond');
    assert.equal(await ask(d.socketPath('zeta'), 'ping'), 'zeta');
    assert.ok(l.stats.connections > before);
  });
});

describe('faults', () => {
  test('a peer that refuses: con_lost, then down, then fast con_lost', async () => {
    const { d } = await setup(['refuser'], { gatewaycMaxAttempts: 2, gatewaycRetryMax: 0.5 }, { faults: { refuseInit: true } });
    assert.equal(await ask(d.socketPath('refuser'), 'ping'), 'con_lost');
    await d.waitLog((l) => l.peer === 'refuser' && l.event === 'peer.down' && l.failures === 2, 10_000, 'peer down');
    const started = Date.now();
    assert.equal(await ask(d.socketPath('refuser'), 'ping'), 'con_lost');
    assert.ok(Date.now() - started < 1000, 'a down peer answers at once');
    const down = d.logs.find((l) => l.event === 'peer.down');
    assert.equal(down?.level, 40, 'peer down is a warning');
    assert.match(String(down?.reason), /refused/);
  });

  test('lond dies mid-request: con_lost, not re-sent, and the next request reconnects', async () => {
    const { net, d } = await setup(['killer']);
    const l = lond(net, 'killer');
    assert.equal(await ask(d.socketPath('killer'), 'ping'), 'killer');
    l.faults.killOnRequest = true;
    const n = l.stats.requests;
    assert.equal(await ask(d.socketPath('killer'), 'put:once'), 'con_lost');
    l.faults.killOnRequest = false;
    await sleep(300);
    assert.equal(l.received.filter((r) => r.plain.toString() === 'put:once').length, 1, 'sent at most once');
    assert.equal(await ask(d.socketPath('killer'), 'ping'), 'killer');
    assert.ok(l.stats.requests >= n + 2);
  });

  test('lond that never answers: con_lost after gatewaycRequestTimeout, other peers unaffected', async () => {
    const { net, d } = await setup(['mute', 'fine'], { gatewaycRequestTimeout: 1 });
    lond(net, 'mute').faults.stallRequests = true;
    const started = Date.now();
    const muted = ask(d.socketPath('mute'), 'ping');
    assert.equal(await ask(d.socketPath('fine'), 'ping'), 'fine');
    assert.equal(await muted, 'con_lost');
    assert.ok(Date.now() - started >= 900);
  });

  test('peer back after an outage: reconnects by itself', async () => {
    const { net, d } = await setup(['phoenix'], { gatewaycMaxAttempts: 100, gatewaycRetryMax: 0.3 });
    const l = lond(net, 'phoenix');
    assert.equal(await ask(d.socketPath('phoenix'), 'ping'), 'phoenix');
    l.faults.resetOnConnect = true;
    l.killAll();
    await d.waitLog((x) => x.peer === 'phoenix' && x.event === 'session.lost', 5000, 'session lost');
    l.faults.resetOnConnect = false;
    await d.waitLog((x) => x.peer === 'phoenix' && x.event === 'peer.up' && d.logs.indexOf(x) > d.logs.findIndex((y) => y.event === 'session.lost'), 10_000, 'up again');
    assert.equal(await ask(d.socketPath('phoenix'), 'ping'), 'phoenix');
  });

  test('SIGUSR1 retries a down peer at once', async () => {
    const { net, d } = await setup(['lazarus'], { gatewaycMaxAttempts: 1, gatewaycRetryMax: 3600 }, { faults: { refuseInit: true } });
    await d.waitLog((l) => l.peer === 'lazarus' && l.event === 'peer.down', 10_000, 'down');
    lond(net, 'lazarus').faults.refuseInit = false;
    d.signal('SIGUSR1');
    await d.waitLog((l) => l.peer === 'lazarus' && l.event === 'peer.up', 5000, 'up after USR1');
    assert.ok(d.hasLog((l) => l.peer === 'lazarus' && l.event === 'peer.retry'), 'USR1 logs a status line per peer');
    assert.equal(await ask(d.socketPath('lazarus'), 'ping'), 'lazarus');
  });
});

describe('delayed messages', () => {
  test('delivered at connect, oldest first, encrypted ones with one line ending; files removed', async () => {
    const net = await startLondNetwork(['dly'], HOST);
    cleanup.add(() => net.stop());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-dly-'));
    const spool = path.join(dir, 'spool');
    fs.mkdirSync(spool);
    fs.writeFileSync(path.join(spool, '1700000010.2.100.put.dly'), 'put:second\n');
    fs.writeFileSync(path.join(spool, '1700000009.1.100.put.dly'), 'put:first\n');
    fs.writeFileSync(path.join(spool, '1700000011.3.100.put.dly'), 'encrypt:put:third secret\n');
    fs.writeFileSync(path.join(spool, '1700000012.4.100.put.other'), 'put:not-ours\n');
    const d = await startDaemon({ hostId: HOST, port: net.port, peers: [{ id: 'dly', address: net.addressOf('dly') }] }, dir);
    cleanup.add(async () => {
      await d.stop();
      d.cleanup();
    });
    const l = lond(net, 'dly');
    await l.waitFor(() => l.received.length >= 3, 5000, 'three delayed messages');
    assert.deepEqual(l.received.slice(0, 3).map((r) => r.plain.toString()), ['put:first', 'put:second', 'put:third secret']);
    assert.equal(l.received[2]?.encrypted, true);
    await waitUntil(() => fs.readdirSync(spool).length === 1, 5000, 'files removed');
    assert.deepEqual(fs.readdirSync(spool), ['1700000012.4.100.put.other']);
    // the answer stream is not shifted by a stray line ending
    assert.equal(await ask(d.socketPath('dly'), 'echo:next'), 'next');
    assert.ok(d.hasLog((x) => x.peer === 'dly' && x.event === 'delayed.delivered' && x.msgid === 'gatewayc-delayed-delivered'));
  });

  test('files that appear while connected are delivered; kept while the peer does not answer', async () => {
    const { net, d } = await setup(['later'], { gatewaycRequestTimeout: 1 });
    const l = lond(net, 'later');
    assert.equal(await ask(d.socketPath('later'), 'ping'), 'later');
    fs.writeFileSync(path.join(d.spoolDir, '1800000000.1.1.put.later'), 'put:live-delayed\n');
    await l.waitFor(() => l.received.some((r) => r.plain.toString() === 'put:live-delayed'), 5000, 'delivery while connected');
    await waitUntil(() => fs.readdirSync(d.spoolDir).length === 0, 5000, 'file removed');

    l.faults.stallRequests = true;
    fs.writeFileSync(path.join(d.spoolDir, '1800000001.1.1.put.later'), 'put:kept\n');
    await d.waitLog((x) => x.peer === 'later' && x.event === 'delayed.kept', 8000, 'not delivered');
    assert.deepEqual(fs.readdirSync(d.spoolDir), ['1800000001.1.1.put.later']);
    l.faults.stallRequests = false;
    await waitUntil(() => fs.readdirSync(d.spoolDir).length === 0, 10_000, 'delivered after recovery');
  });
});

describe('operations', () => {
  test('reload: added peer starts, removed peer stops, unchanged peer keeps its session; broken config keeps the old one', async () => {
    const net = await startLondNetwork(['keep', 'gone', 'fresh'], HOST);
    cleanup.add(() => net.stop());
    const peers = (ids: string[]) => ids.map((id) => ({ id, address: net.addressOf(id) }));
    const d = await startDaemon({ hostId: HOST, port: net.port, peers: peers(['keep', 'gone']) });
    cleanup.add(async () => {
      await d.stop();
      d.cleanup();
    });
    assert.equal(await ask(d.socketPath('keep'), 'ping'), 'keep');
    const keep = lond(net, 'keep');
    const keepConnections = keep.stats.connections;

    writeHostsTab(d.dir, HOST, peers(['keep', 'fresh']));
    d.signal('SIGHUP');
    await d.waitLog((l) => l.event === 'reload.done', 5000, 'reloaded');
    assert.equal(await ask(d.socketPath('fresh'), 'ping'), 'fresh');
    assert.equal(await ask(d.socketPath('keep'), 'ping'), 'keep');
    assert.equal(keep.stats.connections, keepConnections, 'unchanged peer was not reconnected');
    await waitUntil(() => !fs.existsSync(d.socketPath('gone')), 5000, 'removed peer socket gone');
    await lond(net, 'gone').waitFor(() => lond(net, 'gone').stats.exits >= 1, 5000, 'removed peer got exit');

    fs.appendFileSync(d.configFile, 'PerlSetVar gatewaycMaxSessions lots\n');
    d.signal('SIGHUP');
    const refused = await d.waitLog((l) => l.event === 'reload.refused', 5000, 'reload refused');
    assert.equal(refused.level, 50);
    assert.match(String(refused.reason), /gatewayc\.conf:\d+: gatewaycMaxSessions/);
    assert.equal(await ask(d.socketPath('keep'), 'ping'), 'keep');
  });

  test('SIGTERM: pending requests answered, exit sent to every session, exit status 0', async () => {
    const { net, d } = await setup(['bye'], {}, { serviceTimeMs: 0 });
    const l = lond(net, 'bye');
    assert.equal(await ask(d.socketPath('bye'), 'ping'), 'bye');
    const pending = ask(d.socketPath('bye'), 'sleep:300');
    await sleep(50);
    const code = await d.stop();
    assert.equal(code, 0);
    assert.match(await pending, /^(ok|con_lost)$/);
    await l.waitFor(() => l.stats.exits >= 1, 3000, 'exit on the session');
    assert.ok(!fs.existsSync(d.socketPath('bye')), 'socket removed on stop');
  });

  test('a broken config exits 78 with file and line', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-bad-'));
    const conf = path.join(dir, 'bad.conf');
    fs.writeFileSync(conf, `PerlSetVar lonHostID x1\nPerlSetVar lonTabDir ${dir}\nPerlSetVar londPort 99999\n`);
    fs.writeFileSync(path.join(dir, 'hosts.tab'), '');
    const r = spawnSync(process.execPath, [path.join(__dirname, '..', '..', '..', 'bin', 'gatewayc'), '--config', conf], { encoding: 'utf8' });
    assert.equal(r.status, 78);
    assert.match(r.stderr, /bad\.conf:3: londPort/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('no log line carries an encrypt: plaintext, even at debug level', async () => {
    const { d } = await setup(['secretive']);
    assert.equal(await ask(d.socketPath('secretive'), 'encrypt:echo:hunter2-PLAINTEXT'), 'hunter2-PLAINTEXT');
    fs.writeFileSync(path.join(d.spoolDir, '1900000000.1.1.put.secretive'), 'encrypt:put:spooled-PLAINTEXT\n');
    await waitUntil(() => fs.readdirSync(d.spoolDir).length === 0, 5000, 'delayed delivered');
    await d.stop();
    const all = d.rawOutput.join('');
    assert.ok(all.length > 0);
    assert.ok(!all.includes('PLAINTEXT'), 'plaintext leaked into the log');
  });
});
