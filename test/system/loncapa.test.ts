/**
 * gatewayc as a drop-in on a LON-CAPA server (issue 13), proven in booted Debian 12 and
 * 13 containers: LON-CAPA's layout (user and group www, /home/httpd/perl/sockets with the
 * spool in it and a socket an old lonc left behind, hosts.tab in /home/httpd/lonTabs,
 * LON-CAPA's keys in /etc/apache2/loncapa.conf), the package installed and configured as
 * README "Replacing LON-CAPA's connection daemon" says, then: the web server (www) gets
 * answers through /home/httpd/perl/sockets/<peer>, its delayed messages are delivered,
 * everybody else is refused, the hardening is what it was, and going back frees the
 * socket paths for lonc. The fake londs run on the host's loopback.
 *
 * The proofs of one release run in order on one container and build on each other: after
 * a failure the rest of that release is skipped rather than failing for the same reason.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeLond, LondNetwork, startLondNetwork } from '../support/fake-lond';
import { buildDeb, Container, DEBIAN_NUMBER, Release, RELEASES, step, systemTestsUnavailable } from './harness';
import { CLIENT_JS, entryMessage, JournalEntry, secondsSince, Systemd, waitFor } from './systemd-helpers';

const SOCKETS = '/home/httpd/perl/sockets';
const SPOOL = `${SOCKETS}/delayed`;
const TABS = '/home/httpd/lonTabs';
const LONCAPA_CONF = '/etc/apache2/loncapa.conf';
const CONF = '/etc/gatewayc/gatewayc.conf';
const PEERS = ['alpha', 'beta'] as const;
/** Added to hosts.tab while the service runs: its socket is the daemon's, not systemd's. */
const NEW_PEER = 'gamma';
const BROKEN = 'Include /etc/apache2/no-such-file.conf';
/** An unprivileged user who is not the web server. */
const OTHER = 'mallory';

const unavailable = systemTestsUnavailable();


function releaseSuite(release: Release): void {
  const n = DEBIAN_NUMBER[release];
  // Container name = host name = lonHostID. Loopback addresses apart from the other
  // system tests' (20+, 30+, 40+, 50+): all may run at once.
  const hostId = `gwlc${n}`;
  const firstAddress = 60 + 10 * (n - 12);
  const say = (what: string): void => step(`[${release}] ${what}`);

  let c: Container | undefined;
  let sd: Systemd | undefined;
  let londs: LondNetwork | undefined;
  let failed: string | undefined;
  const t0 = Date.now();

  const box = (): Systemd => {
    if (!sd) throw new Error('no container');
    return sd;
  };
  const lond = (id: string): FakeLond => {
    const l = londs?.londs.get(id);
    if (!l) throw new Error(`no fake lond ${id}`);
    return l;
  };
  const out = (script: string): Promise<string> => box().out(script);
  const stat = (p: string): Promise<string> => out(`stat -c '%U:%G %a %F' ${p}`);
  /** One request through a peer socket, as `user`; the answer, or the client's error (exit 1). */
  const attempt = async (id: string, request: string, user: string): Promise<{ code: number; answer: string; error: string }> => {
    const r = await box().c.exec(['node', '-e', CLIENT_JS, `${SOCKETS}/${id}`], { user, input: request, allowFail: true, timeoutMs: 60_000 });
    return { code: r.code, answer: r.stdout, error: r.stderr.trim() };
  };
  const hostsLine = (id: string): string => `${id}:testdom:library:${id}.example:${londs?.addressOf(id) ?? ''}`;
  const ask = async (id: string, request: string, user = 'www'): Promise<string> => {
    const r = await attempt(id, request, user);
    assert.equal(r.code, 0, `${user} asking ${id}: ${r.error}`);
    return r.answer;
  };
  /** LON-CAPA's lonnet writes a delayed message: as www, umask 027 (readable by its group only). */
  const writeDelayed = (name: string, request: string, user = 'www') =>
    box().c.exec(['sh', '-c', 'umask 027; printf "%s\\n" "$1" > "$2"', 'sh', request, `${SPOOL}/${name}`], { user, allowFail: true });
  const spoolFiles = async (): Promise<string[]> => (await out(`ls -A ${SPOOL}`)).split('\n').filter(Boolean);
  const exposure = async (args: string): Promise<string> => {
    const text = await out(`systemd-analyze security ${args} 2>&1 | grep 'Overall exposure level'`);
    const m = /Overall exposure level for gatewayc\.service: (\d+\.\d+)/.exec(text);
    assert.ok(m, `systemd-analyze security ${args}: ${text}`);
    return m[1] as string;
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

  describe(`Debian ${n} (${release})`, { timeout: 30 * 60_000, concurrency: 1 }, () => {
    before(async () => {
      let t = Date.now();
      const deb = await buildDeb(release);
      say(`scripts/build-deb ${release}: ${path.basename(deb)} in ${secondsSince(t)}`);
      t = Date.now();
      c = await Container.boot(release, hostId);
      sd = new Systemd(c);
      say(`container ${hostId} booted in ${secondsSince(t)}`);

      // LON-CAPA's layout, as its installer leaves it: the web server's user www owns
      // /home/httpd/perl/sockets (0755, lonc ran as www) and the spool in it.
      londs = await startLondNetwork([...PEERS, NEW_PEER], hostId, { firstAddress, encryptAnswers: true });
      await box().sh([
        'useradd --system --user-group --home-dir /home/httpd --no-create-home --shell /usr/sbin/nologin www',
        `useradd --system --user-group --no-create-home --shell /usr/sbin/nologin ${OTHER}`,
        `install -d -m 0755 /home/httpd /home/httpd/perl /etc/apache2`,
        `install -d -m 0755 -o www -g www ${SOCKETS} ${SPOOL} ${TABS} /home/httpd/perl/logs`,
      ].join(' && '));
      await box().sh(`cat > ${LONCAPA_CONF}`, {
        input: [
          '# loncapa.conf: LON-CAPA\'s settings (a test copy of its layout)',
          '<IfModule mod_perl.c>',
          `PerlSetVar lonHostID ${hostId}`,
          'PerlSetVar lonDaemons /home/httpd/perl',
          `PerlSetVar lonSockDir ${SOCKETS}`,
          `PerlSetVar lonTabDir ${TABS}`,
          'PerlSetVar lonIDsDir /home/httpd/lonIDs',
          'PerlSetVar lonDocRoot /home/httpd/html',
          'PerlSetVar lonCertificateDirectory /home/httpd/lonCerts',
          `PerlSetVar londPort ${londs.port}`,
          'PerlModule Apache::lonnet',
          '</IfModule>',
          '',
        ].join('\n'),
      });
      const hosts = [`${hostId}:testdom:library:${hostId}.example:127.0.0.1`, ...PEERS.map(hostsLine)];
      await box().sh(`cat > ${TABS}/hosts.tab`, { input: `${hosts.join('\n')}\n` });
      // What the old lonc leaves behind: a socket file of its own, and a message it had
      // not delivered yet.
      await box().c.exec(['node', '-e', `require('net').createServer().listen(${JSON.stringify(`${SOCKETS}/alpha`)}, () => process.exit(0))`], { user: 'www' });
      assert.equal((await writeDelayed('lonc-era-1.alpha', 'put:testdom:delayed:written-under-lonc')).code, 0);

      t = Date.now();
      const inside = `/srv/${path.basename(deb)}`;
      await c.copyIn(deb, inside);
      await c.exec(['apt-get', 'install', '-y', '--no-install-recommends', inside], { timeoutMs: 300_000 });
      say(`LON-CAPA layout made (users www and ${OTHER}, ${SOCKETS} www:www 0755 with a stale lonc socket and an undelivered message, ${LONCAPA_CONF}); apt install in ${secondsSince(t)}`);
    });

    after(async () => {
      try {
        await c?.poweroff();
      } finally {
        await londs?.stop();
      }
      say(`whole release: ${secondsSince(t0)}`);
    });

    proof("1. the README's procedure: Include loncapa.conf, group www, the spool in <lonSockDir>/delayed; gatewayctl check; daemon-reload and restart", async () => {
      await box().sh(`cat >> ${CONF}`, {
        input: [
          '',
          '# LON-CAPA (README: Replacing LON-CAPA\'s connection daemon)',
          `Include ${LONCAPA_CONF}`,
          'PerlSetVar gatewaycSocketGroup www',
          `PerlSetVar gatewaycDelayedDir ${SPOOL}`,
          '# system test: the fake lond on the host, insecure keys, quick timeouts and scans',
          'PerlSetVar gatewaycKeyMode insecure',
          'PerlSetVar gatewaycConnectTimeout 2',
          'PerlSetVar gatewaycHandshakeTimeout 3',
          'PerlSetVar gatewaycRequestTimeout 15',
          'PerlSetVar gatewaycRetryMax 2',
          'PerlSetVar gatewaycRescanInterval 1',
          '',
        ].join('\n'),
      });
      const check = await box().sh('gatewayctl check', { allowFail: true });
      assert.equal(check.code, 0, `gatewayctl check:\n${check.stdout}${check.stderr}`);
      const t = Date.now();
      await box().sh('systemctl daemon-reload && systemctl restart gatewayc', { timeoutMs: 60_000 });
      say(`gatewayctl check passes; daemon-reload and restart in ${secondsSince(t)}`);

      const st = await box().show('gatewayc', ['ActiveState', 'SubState', 'MainPID', 'SupplementaryGroups', 'ProtectHome']);
      assert.deepEqual([st.ActiveState, st.SubState, st.SupplementaryGroups, st.ProtectHome], ['active', 'running', 'www', 'tmpfs']);
      assert.equal(await out(`ps -o user=,group=,supgrp= -p ${st.MainPID}`).then((s) => s.split(/\s+/).join(' ')), 'gatewayc gatewayc gatewayc,www');
      assert.equal(await box().prop('gatewayc-dirs.service', 'Result'), 'success');
      say(`gatewayc runs as gatewayc with supplementary group www, ProtectHome=tmpfs; gatewayc-dirs.service succeeded`);

      const listed = (await out('systemctl list-sockets --no-legend --plain --all')).split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[1]?.startsWith('gatewayc@'));
      assert.deepEqual(listed.map((f) => `${f[0]} ${f[1]}`).sort(), PEERS.map((id) => `${SOCKETS}/${id} gatewayc@${id}.socket`));
      for (const id of PEERS) assert.equal(await stat(`${SOCKETS}/${id}`), 'gatewayc:www 660 socket');
      assert.equal(await stat(SOCKETS), 'www:www 2775 directory');
      assert.equal(await stat(SPOOL), 'www:www 2770 directory');
      assert.equal(await stat('/run/gatewayc/keys'), 'gatewayc:www 2770 directory');
      say(`systemd listens on ${PEERS.map((id) => `${SOCKETS}/${id}`).join(', ')} (gatewayc:www srw-rw----, the stale lonc socket replaced); ${SOCKETS} www:www 2775, ${SPOOL} www:www 2770, /run/gatewayc/keys gatewayc:www 2770`);

      const status = await box().sh('gatewayctl status --json', { allowFail: true });
      assert.equal(status.code, 0, status.stderr);
      const peers = (JSON.parse(status.stdout) as { peers: { id: string }[] }).peers.map((p) => p.id).sort();
      assert.deepEqual(peers, [...PEERS]);
      const text = await out('gatewayctl status');
      say(`gatewayctl status lists ${peers.join(', ')}:\n${text.replace(/^/gm, '      ')}`);
    });

    proof('2. the web server (www) gets answers through /home/httpd/perl/sockets/<peer>, plain and encrypted', async () => {
      for (const id of PEERS) {
        assert.equal(await ask(id, 'ping'), id);
        assert.equal(await ask(id, `echo:from www to ${id}`), `from www to ${id}`);
      }
      const secret = `lc-${crypto.randomBytes(6).toString('hex')}`;
      assert.equal(await ask('alpha', `encrypt:echo:${secret}`), secret);
      const got = lond('alpha').received.find((r) => r.plain.toString() === `echo:${secret}`);
      assert.ok(got?.encrypted, 'the request went out encrypted');
      say(`as www: ping and echo answered by ${PEERS.join(' and ')}, encrypt:echo came back decrypted`);
    });

    proof('3. delayed messages written by www into /home/httpd/perl/sockets/delayed are delivered and removed', async () => {
      const alpha = lond('alpha');
      await alpha.waitFor(() => alpha.received.some((r) => r.plain.toString() === 'put:testdom:delayed:written-under-lonc'), 30_000, 'the message lonc left');
      const t = Date.now();
      assert.equal((await writeDelayed('lonnet-1.beta', 'put:testdom:delayed:written-by-www')).code, 0);
      const beta = lond('beta');
      await beta.waitFor(() => beta.received.some((r) => r.plain.toString() === 'put:testdom:delayed:written-by-www'), 30_000, 'the new message');
      const took = secondsSince(t);
      await waitFor('an empty spool', 15_000, async () => ((await spoolFiles()).length === 0 ? true : undefined), 200);
      say(`the message lonc left (www:www 0640) reached alpha; one written by www now (umask 027) reached beta ${took} later; the spool is empty`);
    });

    proof('4. everybody else is refused: another user gets EACCES on the socket and cannot write the spool', async () => {
      for (const user of [OTHER, 'www-data']) {
        for (const id of PEERS) {
          const r = await attempt(id, 'ping', user);
          assert.equal(r.code, 1, `${user} must not get an answer from ${id}: ${r.answer}`);
          assert.match(r.error, /EACCES/, `${user} on ${id}`);
        }
        const w = await writeDelayed(`intruder.${PEERS[0]}`, 'put:testdom:delayed:intruder', user);
        assert.notEqual(w.code, 0, `${user} wrote into the spool`);
        assert.match(w.stderr, /Permission denied/);
        const ls = await box().sh(`ls ${SPOOL}`, { user, allowFail: true });
        assert.notEqual(ls.code, 0, `${user} can list the spool`);
      }
      assert.deepEqual(await spoolFiles(), []);
      assert.ok(!lond('alpha').received.some((r) => r.plain.toString().includes('intruder')));
      say(`${OTHER} and www-data: EACCES on every peer socket, "Permission denied" writing or listing the spool`);
    });

    proof('5. a peer added to hosts.tab, systemctl reload: the daemon makes its socket in the directory, group www from it', async () => {
      const cursor = await box().cursor();
      await box().sh(`cat >> ${TABS}/hosts.tab`, { input: `${hostsLine(NEW_PEER)}\n` });
      await box().sh('systemctl reload gatewayc', { timeoutMs: 60_000 });
      assert.equal(await stat(`${SOCKETS}/${NEW_PEER}`), 'gatewayc:www 660 socket');
      assert.equal(await ask(NEW_PEER, 'ping'), NEW_PEER);
      const refused = await attempt(NEW_PEER, 'ping', OTHER);
      assert.match(refused.error, /EACCES/);
      const warnings = await box().messages('gatewayc', { after: cursor, maxPriority: 4 });
      say(`${NEW_PEER} added and reloaded: the daemon's socket is gatewayc:www 0660 (set-group-id directory), www gets answers, ${OTHER} EACCES; warnings logged: ${warnings.length === 0 ? 'none' : warnings.map((w) => `"${w}"`).join(', ')}`);
    });

    proof('6. systemd-analyze security gatewayc.service: the exposure of the default unit', async () => {
      const unitDir = release === 'bookworm' ? '/lib/systemd/system' : '/usr/lib/systemd/system';
      const live = await exposure('gatewayc.service');
      const plain = await exposure(`--offline=true ${unitDir}/gatewayc.service`);
      assert.equal(live, plain, 'the drop-ins (group www, ProtectHome=tmpfs with two paths bound) keep the exposure');
      assert.ok(Number(live) <= 1.1, `exposure ${live}`);
      const dirs = await out("systemd-analyze security gatewayc-dirs.service 2>&1 | grep 'Overall exposure level'");
      say(`exposure of gatewayc.service as running here: ${live}; the packaged unit without drop-ins: ${plain}; (${dirs.replace(/^→ /, '')})`);
    });

    proof('7. a broken gatewayc.conf does not break the boot: the generator falls back to the defaults and says why', async () => {
      await box().sh(`echo '${BROKEN}' >> ${CONF}`);
      const t = Date.now();
      await box().c.reboot();
      say(`with "${BROKEN}" in ${CONF}: rebooted in ${secondsSince(t)}, the system reached is-system-running (degraded: gatewayc refuses the file)`);
      const st = await box().show('gatewayc', ['ActiveState', 'Result', 'ExecMainStatus']);
      assert.deepEqual([st.ActiveState, st.Result, st.ExecMainStatus], ['failed', 'exit-code', '78'], 'the daemon refuses the file itself (EX_CONFIG), without restarting');
      // The generator logs to /dev/kmsg, which a container lacks; gatewayc-dirs.service
      // repeats its warnings in the journal before every start of gatewayc.
      const said = (await box().journal(['-b', '-u', 'gatewayc-dirs.service'])).filter((e) => entryMessage(e).startsWith('gatewayc-generator: '));
      assert.ok(said.length >= 1, 'the journal says why');
      const why = entryMessage(said[said.length - 1] as JournalEntry);
      assert.match(why, /gatewayc\.conf:\d+: cannot include \/etc\/apache2\/no-such-file\.conf: no such file: the daemon will refuse this configuration; using the default settings$/);
      assert.equal(said[said.length - 1]?.PRIORITY, '4', 'a warning');
      assert.equal(await box().prop('gatewayc-dirs.service', 'Description'), 'gatewayc directories for group www-data', 'the defaults');
      const sockets = await out('systemctl list-sockets --no-legend --plain --all');
      assert.doesNotMatch(sockets, /\/home\//, 'no unit listens under /home (lonTabDir is the default, /etc/gatewayc, without peers)');
      say(`gatewayc failed with status 78; journalctl -u gatewayc-dirs says "${why}" (priority 4); the units are the defaults`);

      await box().sh(`sed -i '\\|^${BROKEN}$|d' ${CONF} && systemctl daemon-reload && systemctl reset-failed gatewayc && systemctl restart gatewayc`, { timeoutMs: 60_000 });
      for (const id of [...PEERS, NEW_PEER]) {
        assert.equal(await waitFor(`${id} answers`, 30_000, async () => {
          const r = await attempt(id, 'ping', 'www');
          return r.code === 0 && r.answer === id ? r.answer : undefined;
        }, 500), id);
      }
      say('the line removed, daemon-reload and restart: all three peers answer www again');
    });

    proof('8. going back: disable and stop gatewayc and its sockets; the paths are free for lonc again', async () => {
      await box().sh("systemctl disable --now gatewayc && systemctl stop 'gatewayc@*.socket' gatewayc-control.socket", { timeoutMs: 60_000 });
      const active = await out("systemctl list-units --no-legend --plain 'gatewayc*'");
      assert.equal(active, '', `nothing of gatewayc is loaded and active:\n${active}`);
      assert.equal(await out('systemctl is-enabled gatewayc || true'), 'disabled');
      assert.equal((await box().sh('pgrep -u gatewayc', { allowFail: true })).code, 1, 'no process of user gatewayc');
      // lonc, as www, takes its socket path back (it removes what is there and listens).
      const lonc = await box().c.exec(['node', '-e', `const p = ${JSON.stringify(`${SOCKETS}/alpha`)}; require('fs').rmSync(p, { force: true }); require('net').createServer((s) => s.end('lonc\\n')).listen(p, () => { require('net').connect(p).on('data', (d) => { process.stdout.write(String(d)); process.exit(0); }); });`], { user: 'www', allowFail: true });
      assert.equal(lonc.code, 0, lonc.stderr);
      assert.equal(lonc.stdout.trim(), 'lonc');
      assert.equal(await stat(SOCKETS), 'www:www 2775 directory');
      say('systemctl disable --now gatewayc, stop its sockets: nothing active or enabled, no gatewayc process; www can listen on its socket path again');
    });
  });
}

describe('gatewayc as a drop-in on a LON-CAPA server, in booted containers', { skip: unavailable ?? false, concurrency: process.env.GATEWAYC_SYSTEM_SERIAL ? 1 : true }, () => {
  for (const release of RELEASES) releaseSuite(release);
});
