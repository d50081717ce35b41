import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { controlRequest } from '../../src/ctl/client';
import { checkSchema, STATUS_SCHEMA } from '../../src/ctl/schema';
import { startLondNetwork } from '../support/fake-lond';
import { ROOT, startDaemon, tempDir, TestDaemon, waitUntil, writeHostsTab } from '../support/daemon';

const CTL = path.join(ROOT, 'bin', 'gatewayctl');
const HOST = 'gwctl1';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** bin/gatewayctl as a child process, as an administrator runs it (asynchronously: the fake londs live in this process). */
function ctl(args: string[], opts: { input?: string; uid?: number; gid?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CTL, ...args], {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, NODE_OPTIONS: '' },
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    if (opts.input !== undefined) {
      child.stdin?.on('error', () => undefined); // a child that fails early closes its stdin: its exit status says why
      child.stdin?.end(opts.input);
    }
  });
}

interface PeerJson {
  id: string;
  state: string;
  failures: number;
  delayed: number;
}

type Network = Awaited<ReturnType<typeof startLondNetwork>>;

describe('gatewayctl against the real daemon and fake londs', () => {
  let net: Network;
  let d: TestDaemon;
  let conf: string;
  const cleanups: (() => Promise<unknown> | void)[] = [];

  const peers = async (): Promise<PeerJson[]> => ((await controlRequest(d.controlPath, { op: 'status' })).peers ?? []) as PeerJson[];
  const stateOf = async (id: string): Promise<string | undefined> => (await peers()).find((p) => p.id === id)?.state;
  const lond = (id: string) => net.londs.get(id) ?? assert.fail(`no fake lond ${id}`);

  before(async () => {
    // delta is not in hosts.tab yet: the reload test adds it.
    net = await startLondNetwork(['alpha', 'beta', 'gamma', 'delta'], HOST);
    cleanups.push(() => net.stop());
    lond('gamma').faults.refuseInit = true;
    // A down peer is retried only every gatewaycRetryMax: 30 s, so that a peer back within
    // seconds of `gatewayctl retry` came back because of it.
    d = await startDaemon({ hostId: HOST, port: net.port, peers: ['alpha', 'beta', 'gamma'].map((id) => ({ id, address: net.addressOf(id) })), settings: { gatewaycRetryMax: 30 } });
    cleanups.push(async () => {
      await d.stop();
      d.cleanup();
    });
    conf = d.configFile;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const ps = await peers();
      if (ps.map((p) => p.state).join(' ') === 'up up down') return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`peers did not settle as up, up, down: ${JSON.stringify(await peers())}`);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('status: a header and one line per peer, the down one with its failures, next try and error', async (t) => {
    const r = await ctl(['status', '--config', conf]);
    t.diagnostic(`gatewayctl status:\n${r.stdout}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] as string, /^gatewayc \d+\.\d+\.\d+\S* \(pid \d+\), up \d+ s, host id gwctl1$/);
    assert.equal(lines[1], `config: ${conf}`);
    assert.equal(lines[2], `peers:  3 in ${path.join(d.dir, 'hosts.tab')}: 2 up, 1 down`);
    assert.equal(lines[3], '');
    assert.match(lines[4] as string, /^PEER +STATE +KEY +SESSIONS +QUEUE +FAILS +NEXT TRY +HANDSHAKE +P50 +P99 +DELAYED +REQUESTS +CON_LOST +LAST ERROR$/);
    assert.match(lines[5] as string, /^alpha +up \d+ s +insecure +1\/4 +0 +0\/3 +- +[\d.]+ ms +- +- +0 +0 +0 +-$/);
    assert.match(lines[6] as string, /^beta +up \d+ s +insecure +1\/4 +0 +0\/3 +- +[\d.]+ ms +- +- +0 +0 +0 +-$/);
    assert.match(lines[7] as string, /^gamma +down +insecure +0\/4 +0 +3\/3 +in \d+ s +- +- +- +0 +0 +0 +(\d+ s ago|just now): handshake failed( \([^)]*\))?: peer answered refused to init \(does its hosts\.tab know this server\?\)$/);
    assert.equal(lines.length, 8);
    assert.ok(!r.stdout.includes('\x1b'), 'no colour into a pipe');
  });

  test('status --json: the documented schema, exactly', async () => {
    const r = await ctl(['status', '--json', '--config', conf]);
    assert.equal(r.code, 0, r.stderr);
    const st = JSON.parse(r.stdout) as { hostId: string; peers: PeerJson[] };
    assert.deepEqual(checkSchema(st, STATUS_SCHEMA), [], 'a field the daemon added or renamed must be documented in src/ctl/schema.ts');
    assert.equal(st.hostId, HOST);
    assert.deepEqual(st.peers.map((p) => [p.id, p.state]), [['alpha', 'up'], ['beta', 'up'], ['gamma', 'down']]);
    assert.ok((st.peers[2] as PeerJson).failures >= 3);

    const one = await ctl(['status', 'gamma', '--config', conf]);
    assert.equal(one.code, 0);
    assert.deepEqual(one.stdout.trimEnd().split('\n').slice(5).map((l) => l.split(' ')[0]), ['gamma']);
    const unknown = await ctl(['status', 'zeta', '--config', conf]);
    assert.deepEqual(unknown, { code: 1, stdout: '', stderr: 'gatewayctl: unknown peer zeta (configured: alpha, beta, gamma)\n' });
  });

  test('send: plain, encrypt:, con_lost (exit 2), and requests from stdin', async () => {
    assert.deepEqual(await ctl(['send', 'alpha', 'ping', '--config', conf]), { code: 0, stdout: 'alpha\n', stderr: '' });

    assert.deepEqual(await ctl(['send', 'beta', 'encrypt:echo:top secret', '--config', conf]), { code: 0, stdout: 'top secret\n', stderr: '' });
    const last = lond('beta').received.at(-1);
    assert.equal(last?.encrypted, true, 'encrypt: went over the wire as enc:');
    assert.equal(last?.plain.toString('utf8'), 'echo:top secret');

    const lost = await ctl(['send', 'gamma', 'ping', '--config', conf]);
    assert.equal(lost.code, 2);
    assert.equal(lost.stdout, 'con_lost\n');
    assert.equal(lost.stderr, 'gatewayctl: the answer was con_lost: gamma is not reachable now (gatewayctl status gamma)\n');

    const piped = await ctl(['send', 'alpha', '-', '--config', conf], { input: 'ping\necho:one\n\nencrypt:echo:two\necho:grüße' });
    assert.deepEqual(piped, { code: 0, stdout: 'alpha\none\ntwo\ngrüße\n', stderr: '' });

    const none = await ctl(['send', 'zeta', 'ping', '--config', conf]);
    assert.equal(none.code, 3);
    assert.equal(none.stderr, `gatewayctl: there is no socket for zeta at ${d.socketPath('zeta')}: is zeta in hosts.tab, and is gatewayc running? (gatewayctl status)\n`);
  });

  test('delayed: name, peer, age and size of each waiting message, never its content', async () => {
    const name = '1800000000.12.1.gamma';
    fs.writeFileSync(path.join(d.spoolDir, name), 'echo:delayed payload\n');
    const deadline = Date.now() + 10_000;
    while (((await controlRequest(d.controlPath, { op: 'delayed' })).files as unknown[]).length === 0) {
      if (Date.now() > deadline) assert.fail('the spool scan did not pick the file up');
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await ctl(['delayed', '--config', conf]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] as string, /^NAME +PEER +AGE +SIZE$/);
    assert.match(lines[1] as string, new RegExp(`^${name.replace(/\./g, '\\.')} +gamma +\\d+ s +21 B$`));
    assert.equal(lines.at(-1), `1 message waiting (21 B) in ${d.spoolDir}`);
    assert.ok(!r.stdout.includes('payload'), 'the content is never shown');

    assert.deepEqual(await ctl(['delayed', 'alpha', '--config', conf]), { code: 0, stdout: `No delayed messages waiting for alpha in ${d.spoolDir}.\n`, stderr: '' });
    const json = JSON.parse((await ctl(['delayed', 'gamma', '--json', '--config', conf])).stdout) as { files: { name: string; size: number }[] };
    assert.deepEqual(json.files.map((f) => [f.name, f.size]), [[name, 21]]);
    assert.equal((await peers()).find((p) => p.id === 'gamma')?.delayed, 1, 'status counts it too');
  });

  test('retry: an unknown peer is refused; retrying the down peer brings it back and its delayed message goes out', async () => {
    assert.deepEqual(await ctl(['retry', 'zeta', '--config', conf]), { code: 1, stdout: '', stderr: 'gatewayctl: unknown peer: zeta\n' });
    assert.equal(await stateOf('gamma'), 'down', 'nothing was retried');

    lond('gamma').faults.refuseInit = false;
    const r = await ctl(['retry', 'gamma', '--config', conf]);
    assert.deepEqual(r, { code: 0, stdout: 'retry: attempt counters reset, peers that are not up reconnect now: gamma\n', stderr: '' });
    const deadline = Date.now() + 5000;
    while ((await stateOf('gamma')) !== 'up') {
      if (Date.now() > deadline) assert.fail('gamma did not come back after retry');
      await new Promise((res) => setTimeout(res, 20));
    }
    await lond('gamma').waitFor(() => lond('gamma').received.some((x) => x.plain.toString() === 'echo:delayed payload'), 5000, 'the delayed message');
    await waitUntil(() => fs.readdirSync(d.spoolDir).length === 0, 5000, 'the delayed file removed');
    const after = await ctl(['delayed', '--config', conf]);
    assert.equal(after.stdout, `No delayed messages waiting in ${d.spoolDir}.\n`);
    const st = await ctl(['status', 'gamma', '--config', conf]);
    assert.match(st.stdout.trimEnd().split('\n')[5] as string, /^gamma +up \d+ s +insecure +1\/4 +0 +0\/3 +- +[\d.]+ ms /);
  });

  test('reload: prints what changed in one line; a broken config is refused with the reason and exit 1', async () => {
    writeHostsTab(d.dir, HOST, ['alpha', 'gamma', 'delta'].map((id) => ({ id, address: net.addressOf(id) })));
    assert.deepEqual(await ctl(['reload', '--config', conf]), { code: 0, stdout: 'reloaded: added delta; removed beta\n', stderr: '' });
    assert.deepEqual((await peers()).map((p) => p.id).sort(), ['alpha', 'delta', 'gamma']);
    assert.deepEqual(await ctl(['reload', '--config', conf]), { code: 0, stdout: 'reloaded: no peers added, removed or reconnected\n', stderr: '' });

    const good = fs.readFileSync(conf, 'utf8');
    const badLine = good.trimEnd().split('\n').length + 1;
    fs.writeFileSync(conf, `${good}PerlSetVar gatewaycMaxSessions zero\n`);
    try {
      const r = await ctl(['reload', '--config', conf]);
      assert.deepEqual(r, {
        code: 1,
        stdout: '',
        stderr: `gatewayctl: reload refused, the running configuration stays: ${conf}:${badLine}: gatewaycMaxSessions must be a positive integer, got "zero"\n`,
      });
      assert.deepEqual((await peers()).map((p) => p.id).sort(), ['alpha', 'delta', 'gamma'], 'the daemon carries on');
    } finally {
      fs.writeFileSync(conf, good);
    }
  });

  test('check: the daemon\'s own config passes; errors and warnings as file:line', async () => {
    const ok = await ctl(['check', '--config', conf]);
    assert.deepEqual(ok, { code: 0, stdout: `configuration OK: 3 peers in ${path.join(d.dir, 'hosts.tab')}, host id ${HOST}\n`, stderr: '' });
    assert.deepEqual(await ctl(['check', '--quiet', '--config', conf]), { code: 0, stdout: '', stderr: '' });

    const dir = tempDir('gatewayctl-check-');
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const broken = path.join(dir, 'broken.conf');
    fs.writeFileSync(broken, `Include ${conf}\nPerlSetVar gatewaycConnectTimeout -1\n`);
    const bad = await ctl(['check', '--config', broken]);
    assert.deepEqual(bad, {
      code: 1,
      stdout: `${broken}:2: error: gatewaycConnectTimeout must be a number of seconds greater than 0, got "-1"\nconfiguration refused: gatewayc would not start or reload with it\n`,
      stderr: '',
    });

    fs.writeFileSync(path.join(dir, 'hosts.tab'), `${HOST}:d:library:me:127.0.0.1\nalpha:d:library:a:127.0.0.2\nalpha-no-fields\n`);
    const warned = path.join(dir, 'warned.conf');
    fs.writeFileSync(warned, `Include ${conf}\nPerlSetVar lonTabDir ${dir}\nPerlSetVar gatewaycRetryMaks 3\n`);
    const w = await ctl(['check', '--config', warned]);
    assert.equal(w.code, 0, 'warnings do not fail the check');
    assert.deepEqual(w.stdout.trimEnd().split('\n'), [
      `${warned}:3: warning: unknown key gatewaycRetryMaks (did you mean gatewaycRetryMax?)`,
      `${path.join(dir, 'hosts.tab')}:3: warning: malformed line skipped: expected id:domain:role:name:address (or id:domain:role:hostname:protocol:...), got 1 field`,
      `configuration OK: 1 peer in ${path.join(dir, 'hosts.tab')}, host id ${HOST}, 2 warnings`,
    ]);
  });

  test('an unprivileged user is refused the control socket, in one sentence', { skip: process.getuid?.() !== 0 && 'needs root to run gatewayctl as another user' }, async () => {
    const r = await ctl(['status', '--socket', d.controlPath], { uid: 65534, gid: 65534 });
    assert.deepEqual(r, {
      code: 4,
      stdout: '',
      stderr: `gatewayctl: permission denied on the control socket ${d.controlPath}: it is for root and the members of the group gatewayc (run as root, or add yourself to gatewayc)\n`,
    });
  });

  test('a daemon that is not running: exit 3 and what to do, never a stack trace', async () => {
    await d.stop();
    for (const command of [['status'], ['reload'], ['retry'], ['delayed']]) {
      const r = await ctl([...command, '--config', conf]);
      assert.deepEqual(r, { code: 3, stdout: '', stderr: `gatewayctl: cannot reach the gatewayc daemon at ${d.controlPath}: is it running? (systemctl status gatewayc)\n` }, command[0]);
    }
    const send = await ctl(['send', 'alpha', 'ping', '--config', conf]);
    assert.equal(send.code, 3);
    assert.equal(send.stderr.split('\n').length, 2);
  });
});

describe('gatewayctl status with no peers configured', () => {
  test('says which file to edit instead of printing an empty table', async () => {
    const d = await startDaemon({ hostId: HOST, port: 1, peers: [] });
    try {
      const r = await ctl(['status', '--config', d.configFile]);
      assert.equal(r.code, 0, r.stderr);
      const hosts = path.join(d.dir, 'hosts.tab');
      assert.ok(!r.stdout.includes('PEER'), r.stdout);
      assert.ok(r.stdout.includes(`peers:  none configured in ${hosts}\n`), r.stdout);
      assert.ok(r.stdout.includes(`No peers configured: add the other servers of the network to ${hosts} (id:domain:role:name:address, one a line), then run: systemctl reload gatewayc\n`), r.stdout);
    } finally {
      await d.stop();
      d.cleanup();
    }
  });
});
