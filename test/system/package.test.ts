/**
 * The Debian package, proven in booted Debian 12 and 13 containers (issue 4): install,
 * configure two peers, upgrade under load, reboot, remove and purge; plus lintian. The
 * proofs of one release build on each other in order, so after a failure the rest of
 * that release is skipped rather than failing for the same reason again.
 * The checks of the package's files against the code run everywhere, without root.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KEYS } from '../../src/config/settings';
import { ask, sleep } from '../support/daemon';
import { secondsSince } from './systemd-helpers';
import { FakeLond, LondNetwork, startLondNetwork } from '../support/fake-lond';
import { buildDeb, cacheDir, Container, DEBIAN_NUMBER, Release, RELEASES, REPO, run, step, systemTestsUnavailable } from './harness';

const SPOOL = '/var/spool/gatewayc/delayed';
const SOCKETS = '/run/gatewayc/sockets';
const PEERS = ['alpha', 'beta'] as const;

// ---------------------------------------------------------------------------------------
// The package's files against the code (no root, no containers)

function read(rel: string): string {
  return fs.readFileSync(path.join(REPO, rel), 'utf8');
}

describe('package files follow the code', () => {
  it('/etc/gatewayc/gatewayc.conf shows every key of KEYS, commented out, at its default', () => {
    const conf = read('debian/conf/gatewayc.conf');
    const shown = [...conf.matchAll(/^#PerlSetVar (\S+)\s+(.*)$/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(shown.map(([k]) => k), KEYS.map((k) => k.key), 'the keys, in the order of KEYS (debian/gen-keys rewrites the list)');
    for (const k of KEYS) {
      const value = shown.find(([key]) => key === k.key)?.[1];
      if (k.default !== undefined) assert.equal(value, k.default, `default of ${k.key} (run debian/gen-keys)`);
    }
    assert.doesNotMatch(conf, /^\s*PerlSetVar/m, 'nothing is set: every line is at its default');
    step('gatewayc.conf lists the keys of KEYS with their defaults, all commented out');
  });

  it('gatewayc.conf(5) documents every key of KEYS with its default', () => {
    const whole = read('man/gatewayc.conf.5');
    const man = whole.slice(whole.indexOf('.\\" keys:start'), whole.indexOf('.\\" keys:end'));
    const documented = [...man.matchAll(/^\.BI "(\S+) " .*\n(?:.*\n)*?Default: (.*)$/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(documented.map(([k]) => k), KEYS.map((k) => k.key), 'the keys, in the order of KEYS (debian/gen-keys rewrites the list)');
    for (const k of KEYS) {
      if (k.default === undefined) continue;
      const text = documented.find(([key]) => key === k.key)?.[1] ?? '';
      assert.equal(text.replace(/\\fB|\\fR|\\-/g, (s) => (s === '\\-' ? '-' : '')), `${k.default}.`, `default of ${k.key} (run debian/gen-keys)`);
    }
    step('gatewayc.conf(5) documents the keys of KEYS with their defaults');
  });

  it('debian/copyright has a stanza for every production dependency in package-lock.json', () => {
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
    const production = Object.entries(lock.packages)
      .filter(([p, info]) => p.startsWith('node_modules/') && !info.dev && !info.devOptional)
      .map(([p]) => p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length))
      .sort();
    const listed = [...read('debian/copyright').matchAll(/^Files: node_modules\/(.+)\/\*$/gm)].map((m) => m[1]).sort();
    assert.deepEqual(listed, production);
    step(`debian/copyright lists the ${production.length} bundled npm packages`);
  });
});

// ---------------------------------------------------------------------------------------
// The proofs in booted containers

const unavailable = systemTestsUnavailable();

/** A node client run inside the container (as the web server would): one request, one answer. */
const CLIENT_JS = `
const s = require('net').connect(process.argv[1]);
let buf = '';
s.on('connect', () => s.write(process.argv[2] + '\\n'));
s.on('data', (d) => { buf += d; if (buf.includes('\\n')) { process.stdout.write(buf.split('\\n')[0]); s.destroy(); } });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

interface Counts { ok: number; conLost: number; wrong: string[]; errors: Map<string, number>; missing: number }

/** Asks the peer socket over and over (lonnet's way: one connection a request) until stopped. */
function keepAsking(socketPath: string, watch: string[]): { stop(): Promise<Counts> } {
  const counts: Counts = { ok: 0, conLost: 0, wrong: [], errors: new Map(), missing: 0 };
  let running = true;
  const asking = (async () => {
    for (let i = 0; running; i++) {
      try {
        const answer = await Promise.race([
          ask(socketPath, `echo:n${i}`),
          sleep(30_000).then(() => { throw Object.assign(new Error('no answer in 30 s'), { code: 'HANG' }); }),
        ]);
        if (answer === `n${i}`) counts.ok++;
        else if (answer === 'con_lost') counts.conLost++;
        else counts.wrong.push(answer);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        counts.errors.set(code, (counts.errors.get(code) ?? 0) + 1);
      }
      await sleep(20);
    }
  })();
  const watching = (async () => {
    while (running) {
      for (const p of watch) {
        try {
          if (!fs.statSync(p).isSocket()) counts.missing++;
        } catch {
          counts.missing++;
        }
      }
      await sleep(10);
    }
  })();
  return {
    async stop(): Promise<Counts> {
      running = false;
      await Promise.all([asking, watching]);
      return counts;
    },
  };
}

function describeCounts(c: Counts): string {
  const errors = [...c.errors].map(([k, n]) => `${k}×${n}`).join(', ') || 'none';
  return `${c.ok} answered, ${c.conLost} con_lost, ${c.wrong.length} wrong, errors: ${errors}, socket missing ${c.missing}×`;
}


function releaseSuite(release: Release): void {
  const n = DEBIAN_NUMBER[release];
  const hostId = `gwpkg${n}`;
  // Each release's fake londs on their own loopback addresses: both suites may run at once.
  const firstAddress = 20 + 10 * (n - 12);
  const say = (what: string): void => step(`[${release}] ${what}`);

  let deb = '';
  let c: Container | undefined;
  let londs: LondNetwork | undefined;
  let failed: string | undefined;
  const container = (): Container => {
    if (!c) throw new Error('no container');
    return c;
  };

  /** A proof that needs the ones before it. */
  const proof = (name: string, fn: () => Promise<void>): void => {
    it(name, async (t) => {
      if (failed !== undefined) {
        t.skip(`needs "${failed}", which failed`);
        return;
      }
      try {
        await fn();
      } catch (err) {
        failed = name;
        throw err;
      }
    });
  };

  const sh = (script: string, opts: { allowFail?: boolean; user?: string; timeoutMs?: number } = {}) =>
    container().exec(['sh', '-c', script], opts);
  const out = async (script: string): Promise<string> => (await sh(script)).stdout.trim();
  const show = (unit: string, prop: string): Promise<string> => out(`systemctl show -p ${prop} --value ${unit}`);
  const stat = (p: string): Promise<string> => out(`stat -c '%U:%G %a %F' ${p}`);
  const peerPath = (id: string): string => container().hostPath(`${SOCKETS}/${id}`);
  const installed = async (): Promise<string> => (await sh("dpkg-query -W -f='${db:Status-Abbrev}${Version}' gatewayc", { allowFail: true })).stdout;

  const askInside = async (id: string, request: string, user = 'www-data'): Promise<string> =>
    (await container().exec(['node', '-e', CLIENT_JS, `${SOCKETS}/${id}`, request], { user })).stdout;

  const lond = (id: string): FakeLond => {
    const l = londs?.londs.get(id);
    if (!l) throw new Error(`no fake lond ${id}`);
    return l;
  };
  /** Brings a stopped fake lond back on its address and port. */
  const restartLond = async (id: string): Promise<FakeLond> => {
    if (!londs) throw new Error('no londs');
    const l = await FakeLond.start({ id, clientId: hostId, host: londs.addressOf(id), port: londs.port });
    londs.londs.set(id, l);
    return l;
  };
  /** The web server drops a delayed message into the spool, as LON-CAPA does. */
  const writeDelayed = async (name: string, request: string): Promise<void> => {
    await container().exec(['sh', '-c', 'umask 002; printf "%s\\n" "$1" > "$2"', 'sh', request, `${SPOOL}/${name}`], { user: 'www-data' });
  };
  const spoolFiles = async (): Promise<string[]> => (await out(`ls -A ${SPOOL}`)).split('\n').filter(Boolean);

  // concurrency 1: the proofs build on each other (the releases themselves run side by side).
  describe(`Debian ${n} (${release})`, { timeout: 45 * 60_000, concurrency: 1 }, () => {
    before(async () => {
      let t0 = Date.now();
      deb = await buildDeb(release);
      say(`scripts/build-deb ${release} built ${path.basename(deb)} (${Math.round(fs.statSync(deb).size / 1024)} KiB) in ${secondsSince(t0)}`);
      t0 = Date.now();
      c = await Container.boot(release, hostId);
      say(`container ${hostId} booted from a fresh tree in ${secondsSince(t0)}`);
    });

    after(async () => {
      await c?.poweroff();
      await londs?.stop();
    });

    it('lintian -I --pedantic: no errors and no warnings', async (t) => {
      if ((await run(['sh', '-c', 'command -v lintian'], { allowFail: true })).code !== 0) {
        t.skip('lintian is not installed');
        return;
      }
      const r = await run(['lintian', '-I', '--pedantic', deb], { allowFail: true, timeoutMs: 300_000 });
      const bad = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l));
      assert.deepEqual(bad, [], `lintian:\n${r.stdout}${r.stderr}`);
      say(`lintian: no errors, no warnings (${r.stdout.split('\n').filter((l) => /^[IP]: /.test(l)).length} info/pedantic tags)`);
    });

    proof('1. a fresh system: apt install gives user, units, sockets, conffiles, man pages and a running service', async () => {
      const inside = `/srv/${path.basename(deb)}`;
      await container().copyIn(deb, inside);
      const t0 = Date.now();
      await container().exec(['apt-get', 'install', '-y', '--no-install-recommends', inside], { timeoutMs: 300_000 });
      say(`apt install ./${path.basename(deb)} in ${secondsSince(t0)}, no network needed`);
      assert.match(await installed(), /^ii /);

      const files = new Set((await out('dpkg -L gatewayc')).split('\n'));
      const unitDir = release === 'bookworm' ? '/lib/systemd/system' : '/usr/lib/systemd/system';
      const units = fs.readdirSync(path.join(REPO, 'systemd')).filter((f) => /\.(service|socket|target|timer|path)$/.test(f));
      const manPages = fs.readdirSync(path.join(REPO, 'man')).filter((f) => /\.[1-8]$/.test(f));
      const want = [
        '/usr/sbin/gatewayc', '/usr/sbin/gatewayctl', `${unitDir}-generators/gatewayc-generator`,
        ...units.map((u) => `${unitDir}/${u}`),
        ...manPages.map((m) => `/usr/share/man/man${m.slice(-1)}/${m}.gz`),
      ];
      for (const f of want) assert.ok(files.has(f), `the package installs ${f}`);
      for (const f of files) assert.doesNotMatch(f, /\/build\/test\/|\.map$|\.ts$/, 'no tests, source maps or TypeScript');
      say(`installed: both commands, ${units.join(', ')}, the generator, man pages ${manPages.join(', ')}`);

      assert.match(await out('getent passwd gatewayc'), /^gatewayc:x:\d+:\d+:.*:\/usr\/sbin\/nologin$/);
      assert.match(await out('getent group gatewayc'), /^gatewayc:x:\d+:/);
      say('system user and group gatewayc exist (nologin)');

      const conffiles = await out("dpkg-query -W -f='${Conffiles}' gatewayc");
      assert.match(conffiles, /\/etc\/gatewayc\/gatewayc\.conf [0-9a-f]{32}/);
      assert.match(conffiles, /\/etc\/gatewayc\/hosts\.tab [0-9a-f]{32}/);
      say('conffiles: /etc/gatewayc/gatewayc.conf, /etc/gatewayc/hosts.tab');

      assert.equal(await stat(SPOOL), 'gatewayc:www-data 2770 directory');
      assert.equal(await stat(SOCKETS), 'gatewayc:www-data 2755 directory');
      assert.equal(await stat('/run/gatewayc/keys'), 'gatewayc:www-data 2770 directory');
      say(`${SPOOL} gatewayc:www-data 2770, ${SOCKETS} gatewayc:www-data 2755, /run/gatewayc/keys gatewayc:www-data 2770`);

      assert.equal(await out('systemctl is-enabled gatewayc'), 'enabled');
      assert.equal(await out('systemctl is-active gatewayc'), 'active');
      assert.equal(await out('systemctl is-active gatewayc-control.socket'), 'active');
      assert.equal(await stat('/run/gatewayc/control'), 'root:gatewayc 660 socket');
      const mainPid = await show('gatewayc', 'MainPID');
      assert.equal(await out(`ps -o user= -p ${mainPid}`), 'gatewayc');
      say('gatewayc.service enabled and active as user gatewayc; control socket root:gatewayc 0660');

      assert.equal(await out("systemctl list-units --all --no-legend --plain 'gatewayc@*'"), '', 'no peer sockets without peers');
      const status = await show('gatewayc', 'StatusText');
      assert.match(status, /hosts\.tab/, 'with no peers, the STATUS line says what to edit');
      const ctl = await sh('gatewayctl status');
      assert.match(ctl.stdout, /hosts\.tab/, 'with no peers, gatewayctl status says what to edit');
      say(`no peers yet: STATUS "${status}", and gatewayctl status names hosts.tab`);
    });

    proof('2. two peers (fake lond on the host): reload, requests work through both', async () => {
      londs = await startLondNetwork([...PEERS], hostId, { firstAddress });
      const local = [
        '',
        '# Local settings of the system test: the fake lond, no certificates, quick retries.',
        `PerlSetVar londPort ${londs.port}`,
        'PerlSetVar gatewaycKeyMode insecure',
        'PerlSetVar gatewaycConnectTimeout 2',
        'PerlSetVar gatewaycHandshakeTimeout 3',
        'PerlSetVar gatewaycRequestTimeout 15',
        'PerlSetVar gatewaycRetryMax 2',
        'PerlSetVar gatewaycRescanInterval 1',
      ];
      const hosts = [
        `${hostId}:testdom:library:${hostId}.example:127.0.0.1`,
        ...PEERS.map((id) => `${id}:testdom:library:${id}.example:${londs?.addressOf(id)}`),
      ];
      await container().exec(['sh', '-c', 'cat >> /etc/gatewayc/gatewayc.conf'], { input: `${local.join('\n')}\n` });
      await container().exec(['sh', '-c', 'cat >> /etc/gatewayc/hosts.tab'], { input: `${hosts.join('\n')}\n` });
      await sh('gatewayctl check');
      await sh('systemctl reload gatewayc');
      say(`edited gatewayc.conf and hosts.tab (peers ${PEERS.join(', ')} on 127.0.0.${firstAddress}+, port ${londs.port}); gatewayctl check and systemctl reload pass`);

      for (const id of PEERS) {
        assert.equal(await ask(peerPath(id), 'ping'), id);
        assert.equal(await askInside(id, `echo:from www-data to ${id}`), `from www-data to ${id}`);
        assert.ok(lond(id).received.some((r) => r.plain.toString() === `echo:from www-data to ${id}`));
      }
      say('after the reload both peers answer, also to www-data inside the container');

      // What an admin does to hand the new peers' sockets to systemd (gatewayc(8)).
      await sh('systemctl daemon-reload && systemctl restart gatewayc');
      const sockets = await out('systemctl list-sockets --no-legend --plain');
      for (const id of PEERS) {
        assert.match(sockets, new RegExp(`^${SOCKETS}/${id}\\s+gatewayc@${id}\\.socket\\s`, 'm'));
        assert.equal(await stat(`${SOCKETS}/${id}`), 'gatewayc:www-data 660 socket');
        assert.equal(await ask(peerPath(id), 'ping'), id);
      }
      say('after daemon-reload and restart systemd holds both peer sockets (gatewayc:www-data 0660), both answer');
    });

    proof('3. upgrade under load: conffile edits stay, peer sockets never go away, new version runs, delayed messages delivered', async () => {
      const version = /_([^_]+)_[^_]+\.deb$/.exec(deb)?.[1] ?? '';
      const newVersion = version.replace(/u(\d+)$/, (_m, u: string) => `u${Number(u) + 1}`);
      assert.notEqual(newVersion, version);
      let t0 = Date.now();
      const newDeb = await buildDeb(release, { version: newVersion, outdir: path.join(cacheDir(), `upgrade-${release}`) });
      say(`rebuilt as ${newVersion} in ${secondsSince(t0)}`);
      assert.equal((await run(['dpkg', '--compare-versions', newVersion, 'gt', version], { allowFail: true })).code, 0);

      // alpha is down during the upgrade, so its delayed message cannot go out before it.
      await lond('alpha').stop();
      await writeDelayed('upgrade-1.alpha', 'put:testdom:upgrade:written-before');
      await sleep(2500); // a few spool scans: the message must stay while alpha is down
      assert.deepEqual(await spoolFiles(), ['upgrade-1.alpha']);

      const confBefore = await out('cat /etc/gatewayc/gatewayc.conf');
      const tabBefore = await out('cat /etc/gatewayc/hosts.tab');
      const pidBefore = await show('gatewayc', 'MainPID');
      const socketUnits = [...PEERS.map((id) => `gatewayc@${id}.socket`), 'gatewayc-control.socket'];
      const since = async (): Promise<string[]> => Promise.all(socketUnits.map((u) => show(u, 'ActiveEnterTimestampMonotonic')));
      const socketsSince = await since();

      const inside = `/srv/${path.basename(newDeb)}`;
      await container().copyIn(newDeb, inside);
      const client = keepAsking(peerPath('beta'), PEERS.map((id) => peerPath(id)));
      await sleep(1000);
      t0 = Date.now();
      await container().exec(['apt-get', 'install', '-y', '--no-install-recommends', inside], { timeoutMs: 300_000 });
      const upgradeTime = secondsSince(t0);
      await sleep(3000);
      const counts = await client.stop();
      say(`apt install of ${newVersion} over ${version} in ${upgradeTime} while a client asked beta: ${describeCounts(counts)}`);

      assert.equal(counts.missing, 0, 'a peer socket path disappeared during the upgrade');
      assert.deepEqual([...counts.errors], [], 'connecting to the peer socket failed during the upgrade');
      assert.deepEqual(counts.wrong, [], 'every answer is the right one or con_lost');
      assert.ok(counts.ok > 20, 'the client was answered throughout');
      assert.deepEqual(await since(), socketsSince, 'the socket units were never restarted');
      say('the peer and control sockets stayed up (same units, never restarted, paths always there)');

      assert.match(await installed(), new RegExp(`^ii ${newVersion.replace(/[.+~]/g, '\\$&')}$`));
      assert.equal(await out('cat /etc/gatewayc/gatewayc.conf'), confBefore);
      assert.equal(await out('cat /etc/gatewayc/hosts.tab'), tabBefore);
      assert.equal(await out('ls /etc/gatewayc | grep -c dpkg || true'), '0');
      say('the admin\'s edits of gatewayc.conf and hosts.tab are untouched, no .dpkg-* files');

      assert.equal(await out('systemctl is-active gatewayc'), 'active');
      const pidAfter = await show('gatewayc', 'MainPID');
      assert.notEqual(pidAfter, pidBefore, 'the service was restarted');
      const maps = await out(`grep /usr/lib/gatewayc /proc/${pidAfter}/maps || true`);
      assert.doesNotMatch(maps, /\(deleted\)/, 'the running daemon maps no file of the old package');
      assert.equal(await ask(peerPath('beta'), 'ping'), 'beta');
      say(`the service runs the new package (pid ${pidBefore} -> ${pidAfter}, no deleted files mapped)`);

      t0 = Date.now();
      const alpha = await restartLond('alpha');
      await alpha.waitFor(() => alpha.received.some((r) => r.plain.toString() === 'put:testdom:upgrade:written-before'), 60_000, 'the delayed message');
      const deadline = Date.now() + 30_000;
      while ((await spoolFiles()).length > 0 && Date.now() < deadline) await sleep(200);
      assert.deepEqual(await spoolFiles(), [], 'the delivered message left the spool');
      say(`the delayed message written before the upgrade reached alpha ${secondsSince(t0)} after it came back, and left the spool`);
    });

    proof('5. reboot: service, peer sockets and requests come back by themselves', async () => {
      const t0 = Date.now();
      await container().reboot();
      say(`rebooted in ${secondsSince(t0)}`);
      assert.equal(await out('systemctl is-active gatewayc'), 'active');
      const sockets = await out('systemctl list-sockets --no-legend --plain');
      for (const id of PEERS) {
        assert.match(sockets, new RegExp(`^${SOCKETS}/${id}\\s+gatewayc@${id}\\.socket\\s`, 'm'));
        assert.equal(await stat(`${SOCKETS}/${id}`), 'gatewayc:www-data 660 socket');
        assert.equal(await ask(peerPath(id), 'ping'), id);
      }
      assert.equal(await stat(SPOOL), 'gatewayc:www-data 2770 directory');
      say('after the reboot: gatewayc active, systemd holds both peer sockets, both peers answer');
    });

    proof('4. remove stops service and sockets and keeps config and spool; purge removes config, keeps undelivered messages', async () => {
      await lond('alpha').stop();
      await writeDelayed('undelivered-1.alpha', 'put:testdom:purge:never-delivered');
      await container().exec(['apt-get', 'remove', '-y', 'gatewayc'], { timeoutMs: 300_000 });
      assert.match(await installed(), /^rc /);
      for (const unit of ['gatewayc.service', 'gatewayc-control.socket', ...PEERS.map((id) => `gatewayc@${id}.socket`)]) {
        assert.notEqual((await sh(`systemctl is-active ${unit}`, { allowFail: true })).stdout.trim(), 'active', `${unit} stopped`);
      }
      assert.equal((await sh('pgrep -u gatewayc', { allowFail: true })).code, 1, 'no process of user gatewayc is left');
      for (const id of PEERS) {
        const refused = await new Promise<string>((resolve) => {
          const s = net.connect(peerPath(id));
          s.on('connect', () => { s.destroy(); resolve('connected'); });
          s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        });
        assert.ok(refused === 'ECONNREFUSED' || refused === 'ENOENT', `nobody listens on ${id}'s socket (${refused})`);
      }
      say('apt remove: service, control socket and both peer sockets stopped, no process left');
      assert.match(await out('cat /etc/gatewayc/gatewayc.conf'), /^PerlSetVar gatewaycKeyMode insecure$/m);
      assert.match(await out('cat /etc/gatewayc/hosts.tab'), /^alpha:/m);
      assert.deepEqual(await spoolFiles(), ['undelivered-1.alpha']);
      say('apt remove kept the edited configuration and the spool');

      const purge = await container().exec(['apt-get', 'purge', '-y', 'gatewayc'], { timeoutMs: 300_000 });
      assert.match(purge.stdout + purge.stderr, /kept 1 undelivered delayed message\(s\) in \/var\/spool\/gatewayc\/delayed/);
      assert.equal(await out('ls -A /etc/gatewayc 2>/dev/null || true'), '', 'purge removed the configuration');
      assert.deepEqual(await spoolFiles(), ['undelivered-1.alpha']);
      assert.equal(await out('cat ' + `${SPOOL}/undelivered-1.alpha`), 'put:testdom:purge:never-delivered');
      assert.doesNotMatch(await installed(), /^(ii|rc) /);
      say('apt purge removed the configuration and kept the undelivered message, saying so');
    });
  });
}

describe('gatewayc Debian package in booted containers', { skip: unavailable ?? false, concurrency: process.env.GATEWAYC_SYSTEM_SERIAL ? 1 : true }, () => {
  for (const release of RELEASES) releaseSuite(release);
});
