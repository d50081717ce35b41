import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { issue, testPki, writePkiFiles } from '../support/certs';
import { FakeLond, startLondNetwork } from '../support/fake-lond';
import { ask, startDaemon, TestDaemon, waitUntil } from '../support/daemon';
import { control } from '../support/fixture';
import type { FakeTlsOptions } from '../support/fake-lond-tls';

const HOST = 'gwkeys1';
const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A daemon whose certificates are HOST's, from the test CA, against londs with the given TLS behaviour. */
async function sslSetup(ids: string[], tls: (id: string) => FakeTlsOptions, settings: Record<string, string | number> = {}) {
  const pki = testPki();
  const net = await startLondNetwork(ids, HOST, { keyModes: { ssl: tls } });
  cleanups.push(() => net.stop());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-keys-'));
  writePkiFiles(path.join(dir, 'certs'), pki.host(HOST));
  const d = await startDaemon({
    hostId: HOST,
    port: net.port,
    peers: ids.map((id) => ({ id, address: net.addressOf(id) })),
    settings: { lonCertificateDirectory: path.join(dir, 'certs'), gatewaycMaxAttempts: 2, gatewaycRetryMax: 0.5, ...settings },
  });
  cleanups.push(async () => {
    await d.stop();
    d.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { net, d };
}

function good(id: string): FakeTlsOptions {
  const pki = testPki();
  return { ca: pki.ca.cert, cert: pki.host(id).cert, key: pki.host(id).key };
}

function lond(net: { londs: Map<string, FakeLond> }, id: string): FakeLond {
  const l = net.londs.get(id);
  assert.ok(l);
  return l;
}

test('auto with certificates: ssl key exchange, then IDEA in the clear on the same connection', async () => {
  const { net, d } = await sslSetup(['tls1'], good);
  assert.equal(await ask(d.socketPath('tls1'), 'encrypt:echo:over-tls-key'), 'over-tls-key');
  assert.equal(await ask(d.socketPath('tls1'), 'ping'), 'tls1');
  const l = lond(net, 'tls1');
  assert.equal(l.stats.connections, 1, 'one TCP connection carried TLS and the cleartext after it');
  assert.equal(l.received.find((r) => r.encrypted)?.plain.toString(), 'echo:over-tls-key');
  const up = d.logs.find((x) => x.event === 'peer.up');
  assert.equal(up?.peer, 'tls1');
  assert.equal(up?.keyMode, 'ssl', 'the session key came over TLS');
});

test('byte boundary: cleartext in the same TCP write as the end of TLS is read, not lost', async () => {
  const { d } = await sslSetup(['tls2'], (id) => ({ ...good(id), holdCloseNotify: true }));
  // The lond sends its close_notify record glued to the first cleartext answer.
  assert.equal(await ask(d.socketPath('tls2'), 'ping'), 'tls2');
  assert.equal(await ask(d.socketPath('tls2'), 'encrypt:echo:x'), 'x');
});

test('a lond that never sends close_notify, and one that waits for ours', async () => {
  const a = await sslSetup(['tls3'], (id) => ({ ...good(id), closeNotify: false }));
  assert.equal(await ask(a.d.socketPath('tls3'), 'encrypt:echo:a'), 'a');
  const b = await sslSetup(['tls4'], (id) => ({ ...good(id), waitForCloseNotify: true }));
  assert.equal(await ask(b.d.socketPath('tls4'), 'encrypt:echo:b'), 'b');
});

async function refusedWith(id: string, tls: (id: string) => FakeTlsOptions, pattern: RegExp): Promise<TestDaemon> {
  const { d } = await sslSetup([id], tls);
  assert.equal(await ask(d.socketPath(id), 'ping'), 'con_lost');
  const line = await d.waitLog((x) => x.peer === id && (x.event === 'peer.attempt-failed' || x.event === 'peer.down') && pattern.test(String(x.reason)), 10_000, `refusal matching ${pattern}`);
  // A failed attempt is information; the peer going down is worth a warning.
  assert.equal(line.level, line.event === 'peer.down' ? 40 : 30);
  return d;
}

test('refusals: certificate of another CA, expired certificate, refused init:ssl, TLS cut half-way', async () => {
  const pki = testPki();
  await refusedWith('tlsforeign', (id) => ({ ca: pki.ca.cert, cert: pki.foreign(id).cert, key: pki.foreign(id).key }), /ssl key mode/);
  await refusedWith('tlsexpired', (id) => ({ ca: pki.ca.cert, cert: pki.expired(id).cert, key: pki.expired(id).key }), /expired|ssl key mode/);
  await refusedWith('tlsrefuse', (id) => ({ ...good(id), answer: 'refused' }), /refused/);
  await refusedWith('tlscut', (id) => ({ ...good(id), cutAfterBytes: 200 }), /ssl key mode/);
});

test('an expired own certificate is reported at start; ssl mode then refuses to run insecurely', async () => {
  const pki = testPki();
  const net = await startLondNetwork(['tlsown'], HOST, { keyModes: { ssl: good } });
  cleanups.push(() => net.stop());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-keys-'));
  writePkiFiles(path.join(dir, 'certs'), pki.expired(HOST));
  const d = await startDaemon({
    hostId: HOST,
    port: net.port,
    peers: [{ id: 'tlsown', address: net.addressOf('tlsown') }],
    settings: { lonCertificateDirectory: path.join(dir, 'certs'), gatewaycKeyMode: 'ssl', gatewaycMaxAttempts: 1 },
  });
  cleanups.push(async () => {
    await d.stop();
    d.cleanup();
  });
  const err = await d.waitLog((x) => x.event === 'certificates.problem' && x.level === 50, 5000, 'certificate error');
  assert.match(String(err.configFile), /lonhostcert\.pem$/);
  assert.equal(await ask(d.socketPath('tlsown'), 'ping'), 'con_lost');
  assert.equal(lond(net, 'tlsown').stats.connections, 0, 'no connection without usable certificates');
});

test('local key mode for a peer on 127.0.0.1: key file written, used, removed', async () => {
  const net = await startLondNetwork(['loc1'], HOST, { keyModes: { local: true }, firstAddress: 1 });
  cleanups.push(() => net.stop());
  assert.equal(net.addressOf('loc1'), '127.0.0.1');
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-localkeys-'));
  const d = await startDaemon({ hostId: HOST, port: net.port, peers: [{ id: 'loc1', address: '127.0.0.1' }], settings: { gatewaycLocalKeyDir: keyDir } });
  cleanups.push(async () => {
    await d.stop();
    d.cleanup();
    fs.rmSync(keyDir, { recursive: true, force: true });
  });
  assert.equal(await ask(d.socketPath('loc1'), 'encrypt:echo:local-key'), 'local-key');
  await waitUntil(() => fs.readdirSync(keyDir).length === 0, 3000, 'key file removed');
  assert.equal(lond(net, 'loc1').localKeyFiles.length, 1);
});

test('gatewayctl check validates the certificates: expired is an error in ssl mode, expiring soon a warning', async () => {
  const { spawnSync } = await import('node:child_process');
  const { writeConfig, writeHostsTab, GATEWAYC } = await import('../support/daemon');
  const pki = testPki();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-check-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const conf = path.join(dir, 'gatewayc.conf');
  writeHostsTab(dir, HOST, [{ id: 'peer9', address: '127.0.0.9' }]);
  const ctl = path.join(path.dirname(GATEWAYC), 'gatewayctl');
  const run = () => spawnSync(process.execPath, [ctl, 'check', '--config', conf], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });

  writePkiFiles(path.join(dir, 'certs'), pki.expired(HOST));
  writeConfig(conf, dir, { hostId: HOST, port: 5663, settings: { lonCertificateDirectory: path.join(dir, 'certs'), gatewaycKeyMode: 'ssl' } });
  let r = run();
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /lonhostcert\.pem.*error.*expired/i);

  writePkiFiles(path.join(dir, 'certs'), pki.expiringSoon(HOST));
  r = run();
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /lonhostcert\.pem.*warning.*expires/i);
});

// Issue 11, finding 4: a lond holding a network certificate of another host must not get
// the plaintext of encrypt: requests. The certificate has to name the peer.
test('a lond presenting the certificate of another host is refused: no key, no encrypt: plaintext', async () => {
  const pki = testPki();
  const impostor = pki.host('gwother');
  const { net, d } = await sslSetup(['tlsimp'], () => ({ ca: pki.ca.cert, cert: impostor.cert, key: impostor.key }));
  assert.equal(await ask(d.socketPath('tlsimp'), 'encrypt:echo:secret-password'), 'con_lost');
  const l = lond(net, 'tlsimp');
  assert.ok(l.stats.connections >= 1, 'the lond was reached');
  assert.equal(l.received.length, 0, 'nothing was sent after the failed key exchange');
  assert.ok(!l.received.some((r) => r.plain.toString().includes('secret-password')));
  const st = (await control(d, { op: 'status' })) as { peers: { id: string; state: string; lastError: string | null }[] };
  const p = st.peers.find((x) => x.id === 'tlsimp');
  assert.match(p?.lastError ?? '', /certificate is for gwother.*not for tlsimp/);
  assert.match(p?.lastError ?? '', /tlsimp\.example/, 'names the host name it would have accepted');
});

test('a certificate naming the peer by its hosts.tab host name (any case) is accepted', async () => {
  const pki = testPki();
  const byName = issue('TLSNAME.Example', { issuer: pki.ca }, 'host:tlsname');
  const { net, d } = await sslSetup(['tlsname'], () => ({ ca: pki.ca.cert, cert: byName.cert, key: byName.key }));
  assert.equal(await ask(d.socketPath('tlsname'), 'encrypt:echo:by-name'), 'by-name');
  assert.equal(lond(net, 'tlsname').received.find((r) => r.encrypted)?.plain.toString(), 'echo:by-name');
});

test('gatewaycTlsPeerName ca-only accepts any certificate of the network CA, with a warning', async () => {
  const pki = testPki();
  const other = pki.host('gwother');
  const { d } = await sslSetup(['tlsca'], () => ({ ca: pki.ca.cert, cert: other.cert, key: other.key }), { gatewaycTlsPeerName: 'ca-only' });
  assert.equal(await ask(d.socketPath('tlsca'), 'encrypt:echo:relaxed'), 'relaxed');
  await d.waitLog((x) => x.peer === 'tlsca' && x.level === 40 && /certificate for gwother/.test(x.msg), 5000, 'the warning');
  assert.ok(!d.hasLog((x) => /unknown key/.test(x.msg)), 'the key is known');
});

// Issue 11, finding 5: certificates that are there but unusable are an error, not a
// reason to fall back to the 2002 exchange, whose key anyone on the path computes.
test('auto with configured but unusable certificates never falls back to the 2002 exchange', async () => {
  const pki = testPki();
  const net = await startLondNetwork(['tlsdown'], HOST, { keyModes: { ssl: good } });
  cleanups.push(() => net.stop());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-keys-'));
  writePkiFiles(path.join(dir, 'certs'), pki.expired(HOST));
  const d = await startDaemon({
    hostId: HOST,
    port: net.port,
    peers: [{ id: 'tlsdown', address: net.addressOf('tlsdown') }],
    // auto, and loncAllowInsecure on: the 2002 exchange is allowed when there are no certificates.
    settings: { lonCertificateDirectory: path.join(dir, 'certs'), gatewaycKeyMode: 'auto', loncAllowInsecure: 1, gatewaycMaxAttempts: 1 },
  });
  cleanups.push(async () => {
    await d.stop();
    d.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(await ask(d.socketPath('tlsdown'), 'encrypt:echo:not-in-the-clear'), 'con_lost');
  assert.equal(lond(net, 'tlsdown').stats.connections, 0, 'no session at all, least of all an insecure one');
  assert.equal(lond(net, 'tlsdown').buildkeys.length, 0, 'no ekey');
  const st = (await control(d, { op: 'status' })) as { peers: { id: string; keyMode: string; lastError: string | null }[] };
  const p = st.peers.find((x) => x.id === 'tlsdown');
  assert.equal(p?.keyMode, 'none');
  assert.match(p?.lastError ?? '', /certificates .*lonhostcert\.pem.*expired/);
  const err = await d.waitLog((x) => /^certificates: /.test(x.msg) && x.level === 50, 5000, 'certificate error at start');
  assert.match(err.msg, /lonhostcert\.pem/);
});

test('auto with unusable certificates still uses the local key mode for a peer at 127.0.0.1', async () => {
  const pki = testPki();
  const net = await startLondNetwork(['loc2'], HOST, { keyModes: { local: true, ssl: good }, firstAddress: 1 });
  cleanups.push(() => net.stop());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-keys-'));
  writePkiFiles(path.join(dir, 'certs'), pki.expired(HOST));
  const keyDir = path.join(dir, 'keys');
  fs.mkdirSync(keyDir);
  const d = await startDaemon({
    hostId: HOST,
    port: net.port,
    peers: [{ id: 'loc2', address: '127.0.0.1' }],
    settings: { lonCertificateDirectory: path.join(dir, 'certs'), gatewaycLocalKeyDir: keyDir },
  });
  cleanups.push(async () => {
    await d.stop();
    d.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(await ask(d.socketPath('loc2'), 'encrypt:echo:local-still'), 'local-still');
  assert.equal(lond(net, 'loc2').localKeyFiles.length, 1);
  assert.equal(lond(net, 'loc2').buildkeys.length, 0);
});

test('gatewayctl check: under auto, configured but unusable certificates are an error', async () => {
  const { spawnSync } = await import('node:child_process');
  const { writeConfig, writeHostsTab, GATEWAYC } = await import('../support/daemon');
  const pki = testPki();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-check-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const conf = path.join(dir, 'gatewayc.conf');
  writeHostsTab(dir, HOST, [{ id: 'peer9', address: '127.0.0.9' }]);
  writePkiFiles(path.join(dir, 'certs'), pki.expired(HOST));
  writeConfig(conf, dir, { hostId: HOST, port: 5663, settings: { lonCertificateDirectory: path.join(dir, 'certs'), gatewaycKeyMode: 'auto' } });
  const ctl = path.join(path.dirname(GATEWAYC), 'gatewayctl');
  const r = spawnSync(process.execPath, [ctl, 'check', '--config', conf], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /lonhostcert\.pem.*error.*expired/i);
  assert.match(r.stdout, /does not fall back/);
});
