// Issue 7, fault suite, the daemon's own troubles (killed, spool gone, config broken,
// signal storms) and the security properties that can be checked without systemd.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { startLondNetwork, LondNetworkOptions } from '../support/fake-lond';
import { ask, Client, launch, sleep, startDaemon, TestDaemon, tempDir, waitUntil, writeConfig, writeHostsTab } from '../support/daemon';
import { Cleanup, control, lond, londsAndDaemon, Network } from '../support/fixture';

const HOST = 'gwfault3';
const FAST = { gatewaycRequestTimeout: 3, gatewaycHandshakeTimeout: 1, gatewaycConnectTimeout: 1, gatewaycRetryMax: 0.5, gatewaycRescanInterval: 0.5 };

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function setup(ids: string[], settings: Record<string, string | number> = {}, londOpts: LondNetworkOptions = {}): Promise<{ net: Network; d: TestDaemon }> {
  return londsAndDaemon(cleanup, { hostId: HOST, ids, settings: { ...FAST, ...settings }, lond: londOpts, waitUp: true });
}



const count = (d: TestDaemon, event: string): number => d.logs.filter((l) => l.event === event).length;
const spoolFiles = (d: TestDaemon): string[] => (fs.existsSync(d.spoolDir) && fs.statSync(d.spoolDir).isDirectory() ? fs.readdirSync(d.spoolDir) : []);

describe('the daemon killed', () => {
  test('SIGKILL twice during delayed delivery: every message delivered, in order, duplicates counted', async (t) => {
    const network = await startLondNetwork(['spooly'], HOST, { serviceTimeMs: 3 });
    cleanup.add(() => network.stop());
    const l = lond(network, 'spooly');
    const dir = tempDir();
    const conf = path.join(dir, 'gatewayc.conf');
    writeConfig(conf, dir, { hostId: HOST, port: network.port, settings: FAST });
    writeHostsTab(dir, HOST, [{ id: 'spooly', address: network.addressOf('spooly') }]);
    const spool = path.join(dir, 'spool');
    fs.mkdirSync(spool);
    const total = 300;
    const message = (i: number): string => (i % 7 === 0 ? `encrypt:put:secret-${i}` : `put:msg-${i}`);
    for (let i = 0; i < total; i++) fs.writeFileSync(path.join(spool, `${1700000000 + i}.${i}.4242.put.spooly`), `${message(i)}\n`);
    const plain = (i: number): string => message(i).replace(/^encrypt:/, '');

    const kills = [80, 180];
    let d: TestDaemon | undefined;
    const allOutput: string[] = [];
    for (const at of [...kills, -1]) {
      d = await launch(dir, conf, ['spooly']);
      if (at < 0) break;
      await l.waitFor(() => l.received.length >= at, 15_000, `${at} deliveries`);
      d.proc.kill('SIGKILL');
      await d.exited;
      allOutput.push(...d.rawOutput);
    }
    const last = d as TestDaemon;
    cleanup.add(async () => {
      await last.stop();
      last.cleanup();
    });
    await waitUntil(() => fs.readdirSync(spool).length === 0, 20_000, 'spool empty');
    const got = l.received.map((r) => r.plain.toString());
    const unique = new Set(got);
    for (let i = 0; i < total; i++) assert.ok(unique.has(plain(i)), `message ${i} was lost`);
    assert.equal(unique.size, total, 'nothing but the spool was delivered');
    const duplicates = got.length - unique.size;
    t.diagnostic(`${total} messages, ${kills.length} SIGKILLs, ${duplicates} duplicates`);
    console.log(`# SIGKILL during delivery: ${total} messages, ${kills.length} kills, ${duplicates} duplicates (at most one per kill allowed)`);
    assert.ok(duplicates <= kills.length, `${duplicates} duplicates for ${kills.length} kills: delivery is not one at a time`);
    // Oldest first, across restarts: the first time each message arrives follows the file order.
    const firstSeen = [...unique];
    assert.deepEqual(firstSeen, Array.from({ length: total }, (_, i) => plain(i)));
    assert.equal(await ask(last.socketPath('spooly'), 'echo:alive'), 'alive');
  });
});

describe('the spool directory', () => {
  test('replaced by a file, then restored: error logged once, live traffic unaffected, delivery resumes', async () => {
    const { net: n, d } = await setup(['sp1']);
    const l = lond(n, 'sp1');
    assert.equal(await ask(d.socketPath('sp1'), 'ping'), 'sp1');
    // Tests run as root, where chmod 000 does not stop reads: a file in its place does.
    fs.rmSync(d.spoolDir, { recursive: true });
    fs.writeFileSync(d.spoolDir, 'not a directory\n');
    await d.waitLog((x) => x.event === 'spool.unreadable' && x.code === 'ENOTDIR', 5000, 'spool error');
    const errors = count(d, 'spool.unreadable');
    await sleep(1500); // three rescans
    assert.equal(count(d, 'spool.unreadable'), errors, 'the same error is logged once, not at every rescan');
    assert.equal(d.logs.find((x) => x.event === 'spool.unreadable')?.level, 50);
    assert.equal(await ask(d.socketPath('sp1'), 'echo:live'), 'live', 'live requests carry on');
    fs.rmSync(d.spoolDir);
    fs.mkdirSync(d.spoolDir);
    fs.writeFileSync(path.join(d.spoolDir, '1800000000.1.1.put.sp1'), 'put:after-restore\n');
    await l.waitFor(() => l.received.some((r) => r.plain.toString() === 'put:after-restore'), 5000, 'delivery after restore');
    await waitUntil(() => spoolFiles(d).length === 0, 3000, 'file removed');
    assert.ok(d.hasLog((x) => x.event === 'spool.readable'));
  });

  test('unreadable (chmod 000) while running', { skip: process.getuid?.() === 0 ? 'runs as root, where chmod 000 does not stop reads (covered by the replace-by-a-file test)' : false }, async () => {
    const { net: n, d } = await setup(['sp0']);
    const l = lond(n, 'sp0');
    fs.chmodSync(d.spoolDir, 0o000);
    await d.waitLog((x) => x.event === 'spool.unreadable' && x.code === 'EACCES', 5000, 'spool error');
    assert.equal(await ask(d.socketPath('sp0'), 'echo:live'), 'live');
    fs.chmodSync(d.spoolDir, 0o770);
    fs.writeFileSync(path.join(d.spoolDir, '1800000000.1.1.put.sp0'), 'put:after-chmod\n');
    await l.waitFor(() => l.received.some((r) => r.plain.toString() === 'put:after-chmod'), 5000, 'delivery after chmod');
  });

  test('removed while running, then recreated: delivery resumes, and new files are seen at once again (watch re-armed)', async () => {
    const rescanS = 4;
    const { net: n, d } = await setup(['sp2'], { gatewaycRescanInterval: rescanS });
    const l = lond(n, 'sp2');
    assert.equal(await ask(d.socketPath('sp2'), 'ping'), 'sp2');
    fs.rmSync(d.spoolDir, { recursive: true });
    await d.waitLog((x) => x.event === 'spool.unreadable' && x.code === 'ENOENT', (rescanS + 2) * 1000, 'spool error');
    assert.equal(await ask(d.socketPath('sp2'), 'echo:live'), 'live');
    fs.mkdirSync(d.spoolDir);
    fs.writeFileSync(path.join(d.spoolDir, '1800000000.1.1.put.sp2'), 'put:in-new-dir\n');
    await l.waitFor(() => l.received.some((r) => r.plain.toString() === 'put:in-new-dir'), (rescanS + 2) * 1000, 'delivery from the new directory');
    await waitUntil(() => spoolFiles(d).length === 0, 3000, 'file removed');
    // The next file must not wait for the periodic rescan: the new directory is watched.
    const started = Date.now();
    fs.writeFileSync(path.join(d.spoolDir, '1800000001.1.1.put.sp2'), 'put:watched\n');
    await l.waitFor(() => l.received.some((r) => r.plain.toString() === 'put:watched'), (rescanS + 2) * 1000, 'delivery of the next file');
    const ms = Date.now() - started;
    assert.ok(ms < (rescanS * 1000) / 2, `a file in the recreated directory waited ${ms} ms: only the rescan found it`);
  });
});

describe('configuration troubles', () => {
  test('config replaced by garbage, emptied, half-written, hosts.tab gone: each SIGHUP refused, old config keeps running', async () => {
    const { d } = await setup(['cfg1', 'cfg2']);
    const good = fs.readFileSync(d.configFile);
    const hostsTab = path.join(d.dir, 'hosts.tab');
    const goodHosts = fs.readFileSync(hostsTab);
    const variants: [string, () => void, RegExp][] = [
      ['binary garbage', () => fs.writeFileSync(d.configFile, crypto.randomBytes(4096)), /lonHostID is not set/],
      ['empty file', () => fs.writeFileSync(d.configFile, ''), /lonHostID is not set/],
      ['cut in the middle of a quoted value', () => fs.writeFileSync(d.configFile, `${good.toString()}PerlSetVar lonTabDir "/etc/gat`), /missing closing quote/],
      ['a bad value', () => fs.writeFileSync(d.configFile, `${good.toString()}PerlSetVar gatewaycRequestTimeout -1\n`), /gatewaycRequestTimeout must be/],
      ['config file removed', () => fs.rmSync(d.configFile), /cannot read/],
      ['hosts.tab removed', () => fs.rmSync(hostsTab), /hosts\.tab: cannot read/],
    ];
    for (const [what, breakIt, why] of variants) {
      const before = count(d, 'reload.refused');
      breakIt();
      d.signal('SIGHUP');
      await waitUntil(() => count(d, 'reload.refused') > before, 5000, `reload refused (${what})`);
      const line = d.logs.filter((x) => x.event === 'reload.refused').at(-1);
      assert.equal(line?.level, 50, `${what}: an error`);
      assert.match(String(line?.reason), why, `${what}: the reason`);
      for (const id of ['cfg1', 'cfg2']) assert.equal(await ask(d.socketPath(id), 'ping'), id, `${what}: ${id} still served`);
      fs.writeFileSync(d.configFile, good);
      fs.writeFileSync(hostsTab, goodHosts);
    }
    assert.equal(d.proc.exitCode, null);
    assert.equal(count(d, 'reload.done'), 0, 'nothing was applied');
    d.signal('SIGHUP');
    await d.waitLog((x) => x.event === 'reload.done' && x.peers === 2, 5000, 'a good config reloads');
  });

  test('SIGHUP storm under load: no lost or misrouted answer, no crash, unchanged peers keep their sessions', async () => {
    const { net: n, d } = await setup(['hup1', 'hup2'], { gatewaycMaxSessions: 3, gatewaycRequestTimeout: 10 }, { serviceTimeMs: 1 });
    const clients = await Promise.all(Array.from({ length: 8 }, (_, i) => Client.connect(d.socketPath(i % 2 === 0 ? 'hup1' : 'hup2'))));
    await Promise.all(clients.map((c) => c.ask('ping')));
    let stop = false;
    const wrong: string[] = [];
    let answered = 0;
    const load = clients.map(async (c, ci) => {
      for (let i = 0; !stop; i++) {
        const want = `${ci}-${i}`;
        const got = await c.ask(`echo:${want}`);
        if (got !== want) wrong.push(`${want} → ${got}`);
        answered++;
      }
    });
    const hups = 150;
    for (let i = 0; i < hups; i++) {
      d.signal('SIGHUP');
      await sleep(10);
    }
    await sleep(300);
    stop = true;
    await Promise.all(load);
    for (const c of clients) c.close();
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} wrong answers`);
    assert.ok(answered > 200, `only ${answered} answers during the storm`);
    assert.equal(d.proc.exitCode, null, 'the daemon survived');
    const reloads = count(d, 'reload.done');
    console.log(`# SIGHUP storm: ${hups} signals, ${reloads} reloads run, ${answered} requests answered, ${wrong.length} wrong`);
    assert.ok(reloads >= 1 && reloads <= hups, `${reloads} reloads`);
    for (const id of ['hup1', 'hup2']) assert.ok(lond(n, id).stats.connections <= 3, `${id}: sessions were reopened by reloads`);
  });

  // A peer re-added while its removal still waited for busy sessions once lost its socket
  // to the late end of that removal.
  test('a peer flapping in and out of hosts.tab while busy: it ends up with a working socket', async () => {
    const network = await startLondNetwork(['stay', 'flap'], HOST);
    cleanup.add(() => network.stop());
    const peers = (ids: string[]): { id: string; address: string }[] => ids.map((id) => ({ id, address: network.addressOf(id) }));
    const d = await startDaemon({ hostId: HOST, port: network.port, peers: peers(['stay', 'flap']), settings: FAST });
    cleanup.add(async () => {
      await d.stop();
      d.cleanup();
    });
    // A request in flight makes the removed peer's stop take a while.
    const slow = ask(d.socketPath('flap'), 'sleep:800');
    await sleep(100);
    writeHostsTab(d.dir, HOST, peers(['stay']));
    d.signal('SIGHUP');
    await d.waitLog((x) => x.event === 'reload.done' && x.peers === 1, 5000, 'flap removed');
    writeHostsTab(d.dir, HOST, peers(['stay', 'flap']));
    d.signal('SIGHUP');
    await d.waitLog((x) => x.event === 'reload.done' && x.peers === 2, 5000, 'flap back');
    assert.match(await slow, /^(ok|con_lost)$/);
    await sleep(1500); // past the removed peer's stop
    assert.ok(fs.existsSync(d.socketPath('flap')), 'the socket of the re-added peer is gone');
    assert.equal(await ask(d.socketPath('flap'), 'ping'), 'flap');
    assert.equal(await ask(d.socketPath('stay'), 'ping'), 'stay');
  });
});

test('a peer removed, then re-added, keeps its new socket when a client of its old one leaves (found by the soak)', async () => {
  const network = await startLondNetwork(['p1', 'p2'], HOST);
  cleanup.add(() => network.stop());
  const peers = (ids: string[]): { id: string; address: string }[] => ids.map((id) => ({ id, address: network.addressOf(id) }));
  const d = await startDaemon({ hostId: HOST, port: network.port, peers: peers(['p1', 'p2']), settings: FAST });
  cleanup.add(async () => {
    await d.stop();
    d.cleanup();
  });
  const idle = await Client.connect(d.socketPath('p2'));
  writeHostsTab(d.dir, HOST, peers(['p1']));
  d.signal('SIGHUP');
  await d.waitLog((x) => x.event === 'reload.done' && x.peers === 1, 5000, 'p2 removed');
  await sleep(300);
  writeHostsTab(d.dir, HOST, peers(['p1', 'p2']));
  d.signal('SIGHUP');
  await d.waitLog((x) => x.event === 'reload.done' && x.peers === 2, 5000, 'p2 back');
  idle.close();
  await sleep(300);
  assert.ok(fs.existsSync(d.socketPath('p2')), 'the re-added peer lost its socket');
  assert.equal(await ask(d.socketPath('p2'), 'ping'), 'p2');
});

describe('security', () => {
  test('peer ids with "/", "..", control characters are rejected with their line and never become paths', async () => {
    const network = await startLondNetwork(['fine'], HOST);
    cleanup.add(() => network.stop());
    const dir = tempDir();
    const conf = path.join(dir, 'gatewayc.conf');
    writeConfig(conf, dir, { hostId: HOST, port: network.port, settings: FAST });
    const bad = ['../evil', 'a/b', '..', '.', '/abs', 'x/../../y', 'ctl\x01id', 'esc\x1b[2Jid', 'del\x7fid', 'c1\u0085id', 'tab\tid', 'nul\x00id', `${'l'.repeat(65)}`];
    const lines = [`${HOST}:dom:library:h:127.0.0.1`, ...bad.map((id) => `${id}:dom:library:h:127.0.0.1`), `fine:dom:library:h:${network.addressOf('fine')}`];
    fs.writeFileSync(path.join(dir, 'hosts.tab'), `${lines.join('\n')}\n`);
    const d = await launch(dir, conf, ['fine']);
    cleanup.add(async () => {
      await d.stop();
      d.cleanup();
    });
    for (let i = 0; i < bad.length; i++) {
      const lineNo = i + 2;
      assert.ok(d.hasLog((x) => x.event === 'config.warning' && x.level === 40 && x.configLine === lineNo && String(x.configFile).endsWith('hosts.tab')), `line ${lineNo} (${JSON.stringify(bad[i])}) not reported`);
    }
    assert.deepEqual(fs.readdirSync(d.sockDir), ['fine']);
    const walk = (p: string): string[] => fs.readdirSync(p, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [e.name + '/', ...walk(path.join(p, e.name)).map((x) => `${e.name}/${x}`)] : [e.name]));
    assert.deepEqual(walk(dir).sort(), ['control', 'gatewayc.conf', 'hosts.tab', 'sock/', 'sock/fine', 'spool/'].sort());
    assert.ok(!fs.existsSync(path.join(path.dirname(dir), 'evil')) && !fs.existsSync(path.join(dir, 'evil')), 'an id escaped the socket directory');
    const st = await control(d, { op: 'status' });
    assert.deepEqual((st.peers as { id: string }[]).map((p) => p.id), ['fine']);
    assert.equal(await ask(d.socketPath('fine'), 'ping'), 'fine');
    // Every warning stays one log line: control characters in an id cannot forge lines.
    assert.ok(!d.rawOutput.join('').includes('\x1b'), 'a raw escape character reached the log');
  });

  test('peer sockets and the control socket are 0660', async () => {
    const { d } = await setup(['perm1', 'perm2']);
    for (const p of [d.socketPath('perm1'), d.socketPath('perm2'), d.controlPath]) {
      const st = fs.statSync(p);
      assert.ok(st.isSocket(), `${p} is a socket`);
      assert.equal((st.mode & 0o777).toString(8), '660', `${p} mode`);
    }
  });

  test('at debug level, no output ever holds an encrypt: plaintext, a key, a buildkey or a challenge', async () => {
    const { net: n, d } = await setup(['vault', 'sealed', 'broken'], { gatewaycRequestTimeout: 1, gatewaycMaxRequestBytes: 4096, gatewaycMaxAttempts: 2 }, { encryptAnswers: true });
    const vault = lond(n, 'vault');
    const secret = (tag: string): string => `SECRET${tag}${crypto.randomBytes(6).toString('hex')}`;
    const secrets: string[] = [];
    const s = (tag: string): string => {
      const v = secret(tag);
      secrets.push(v);
      return v;
    };
    // Round trips (answers come back enc: and are decrypted: their plaintext is secret too).
    const c = await Client.connect(d.socketPath('vault'));
    for (let i = 0; i < 5; i++) {
      const v = s(`rt${i}`);
      assert.equal(await c.ask(`encrypt:echo:${v}`), v);
    }
    // A lost encrypted request (lond stalls), an over-long one, one to a down peer.
    vault.faults.stallRequests = true;
    assert.equal(await c.ask(`encrypt:put:${s('lost')}`), 'con_lost');
    vault.faults.stallRequests = false;
    assert.equal(await c.ask(`encrypt:put:${s('long')}${'z'.repeat(5000)}`), 'error: request longer than gatewaycMaxRequestBytes (4096 bytes)');
    assert.equal(await c.ask(`encrypt:echo:${s('after')}`), secrets.at(-1));
    c.close();
    // Delayed encrypted messages, delivered and refused.
    fs.writeFileSync(path.join(d.spoolDir, '1900000000.1.1.put.vault'), `encrypt:put:${s('spool')}\n`);
    await waitUntil(() => spoolFiles(d).length === 0, 5000, 'delayed delivered');
    // A lond that rejects our challenge echo, and one that sends a strange buildkey and a malformed enc: answer.
    const broken = lond(n, 'broken');
    broken.faults.rejectChallenge = true;
    broken.killAll();
    assert.equal(await ask(d.socketPath('broken'), `encrypt:put:${s('down')}`), 'con_lost');
    const sealed = lond(n, 'sealed');
    sealed.faults.buildkey = `ZZ${crypto.randomBytes(8).toString('hex').toUpperCase()}`;
    sealed.killAll();
    await sealed.waitFor(() => sealed.stats.handshakes >= 2, 5000, 'rekeyed session');
    assert.equal(await ask(d.socketPath('sealed'), `encrypt:echo:${s('oddkey')}`), secrets.at(-1));
    sealed.faults.garbage = Buffer.from('enc:8:0123456789abcdeg\n');
    assert.equal(await ask(d.socketPath('sealed'), `encrypt:put:${s('badenc')}`), 'con_lost');
    delete sealed.faults.garbage;
    await d.waitLog((x) => x.peer === 'broken' && x.event === 'peer.down', 8000, 'broken down');
    const status = JSON.stringify(await control(d, { op: 'status' }));
    const delayed = JSON.stringify(await control(d, { op: 'delayed' }));
    await d.stop();

    const output = d.rawOutput.join('') + status + delayed;
    // The daemon ran at gatewaycLogLevel debug (the test default); it has no debug lines
    // today, and any added later falls under this test.
    assert.ok(d.logs.length > 10, 'the daemon logged');
    const keys = [vault, sealed, broken].flatMap((l) => l.sessionKeys.filter(Boolean).flatMap((k) => [k.toString('hex'), k.toString('hex').toUpperCase(), k.toString('base64')]));
    const challenges = [vault, sealed, broken].flatMap((l) => l.challenges);
    const buildkeys = [vault, sealed, broken].flatMap((l) => l.buildkeys);
    assert.ok(keys.length >= 3 && challenges.length >= 3 && buildkeys.length >= 3);
    for (const [kind, list] of [['plaintext', secrets], ['session key', keys], ['challenge', challenges], ['buildkey', buildkeys]] as const) {
      for (const v of list) assert.ok(!output.includes(v), `a ${kind} appears in the daemon's output`);
    }
    // The secret's distinctive prefix alone must not show up either (a truncated leak).
    assert.ok(!output.includes('SECRET'), 'part of a plaintext appears in the output');
  });
});
