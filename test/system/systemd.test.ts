/**
 * gatewayc as systemd runs it (issue 3), proven in booted Debian 12 and 13 containers:
 * READY and STATUS, the per-peer socket units, requests through them, socket activation,
 * a synchronous reload that refuses a broken configuration, the watchdog, journald
 * priorities without secrets, and a clean stop. gatewayc comes from the release's .deb;
 * the fake londs run on the host's loopback, which the containers share.
 *
 * The proofs of one release run in order on one container and share its state (the
 * service, the peers, the fake londs); each one first puts back what it needs, so one
 * failing proof does not hide the result of the next.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testPki } from '../support/certs';
import { FakeLond, LondNetwork, startLondNetwork } from '../support/fake-lond';
import { buildDeb, Container, DEBIAN_NUMBER, Release, RELEASES, step, systemTestsUnavailable } from './harness';
import { entryMessage, entryText, secondsSince, sleep, Systemd, waitFor } from './systemd-helpers';

const SOCKETS = '/run/gatewayc/sockets';
const CONF = '/etc/gatewayc/gatewayc.conf';
const HOSTS = '/etc/gatewayc/hosts.tab';
/** The peers at start; NEW_PEER is added to hosts.tab by the reload proof. */
const PEERS = ['alpha', 'beta'] as const;
const NEW_PEER = 'gamma';
const BROKEN_LINE = 'PerlSetVar gatewaycMaxSessions lots';
const WATCHDOG_DROPIN = '/etc/systemd/system/gatewayc.service.d/90-system-test-watchdog.conf';

const unavailable = systemTestsUnavailable();


function releaseSuite(release: Release): void {
  const n = DEBIAN_NUMBER[release];
  // Container name = host name = lonHostID. Distinct from package.test.ts's names and
  // loopback addresses (20+, 30+): both files and both releases may run at once.
  const hostId = `gwsd${n}`;
  const firstAddress = 40 + 10 * (n - 12);
  const say = (what: string): void => step(`[${release}] ${what}`);

  let c: Container | undefined;
  let sd: Systemd | undefined;
  let londs: LondNetwork | undefined;
  /** Plaintexts of encrypted requests sent during the test: none may reach the journal. */
  const secrets: string[] = [];
  /** NRestarts once the 3 s watchdog is armed: a healthy daemon must never be restarted again. */
  let restartsAfterWatchdog: string | undefined;
  /** The journal proof stops beta's fake lond; the stop proof brings it back. */
  let betaStopped = false;

  const box = (): Systemd => {
    if (!sd) throw new Error('no container');
    return sd;
  };
  const lond = (id: string): FakeLond => {
    const l = londs?.londs.get(id);
    if (!l) throw new Error(`no fake lond ${id}`);
    return l;
  };
  const hostsLine = (id: string): string => `${id}:testdom:library:${id}.example:${londs?.addressOf(id) ?? ''}`;
  const peerSocket = (id: string): string => `${SOCKETS}/${id}`;
  const ask = (id: string, request: string, user = 'www-data'): Promise<string> => box().ask(peerSocket(id), request, user);
  const secret = (): string => {
    const s = `sekrit${crypto.randomBytes(8).toString('hex')}`;
    secrets.push(s);
    return s;
  };
  const mainPid = async (): Promise<string> => box().prop('gatewayc', 'MainPID');
  /**
   * `systemctl start gatewayc`. systemd 257 in these containers now and then fails to spawn
   * a process at all ("Failed to spawn executor: No such file or directory", result
   * 'resources', before gatewayc runs); that one case is retried once, and said.
   */
  const start = async (): Promise<void> => {
    const r = await box().sh('systemctl start gatewayc', { timeoutMs: 60_000, allowFail: true });
    if (r.code === 0) return;
    const result = await box().prop('gatewayc', 'Result');
    const why = (await box().out('journalctl -u gatewayc -n 20 --no-pager', { allowFail: true })) ?? '';
    if (result !== 'resources' || !/Failed to spawn executor/.test(why)) throw new Error(`systemctl start gatewayc failed (${result}):\n${r.stderr}\n${why}`);
    say('systemd could not spawn the executor (container quirk of systemd 257, result resources): starting once more');
    await box().sh('systemctl reset-failed gatewayc');
    await box().sh('systemctl start gatewayc', { timeoutMs: 60_000 });
  };
  /** Starts the service unless it runs (a proof before may have left it stopped). */
  const ensureRunning = async (): Promise<void> => {
    if ((await box().out('systemctl is-active gatewayc', { allowFail: true })) !== 'active') await start();
  };
  const waitStatus = (pattern: RegExp, timeoutMs = 15_000): Promise<string> => {
    let last = '';
    return waitFor(`STATUS matching ${String(pattern)}`, timeoutMs, async () => {
      last = await box().prop('gatewayc', 'StatusText');
      return pattern.test(last) ? last : undefined;
    }, 250, () => JSON.stringify(last));
  };
  /** Brings a stopped fake lond back on its address and port. */
  const restartLond = async (id: string): Promise<FakeLond> => {
    if (!londs) throw new Error('no londs');
    const l = await FakeLond.start({ id, clientId: hostId, host: londs.addressOf(id), port: londs.port, encryptAnswers: true });
    londs.londs.set(id, l);
    return l;
  };

  // concurrency 1: subtests inherit the parent's concurrency, and these proofs share one container.
  describe(`Debian ${n} (${release})`, { timeout: 20 * 60_000, concurrency: 1 }, () => {
    before(async () => {
      let t0 = Date.now();
      const deb = await buildDeb(release);
      say(`scripts/build-deb ${release}: ${path.basename(deb)} in ${secondsSince(t0)}`);
      t0 = Date.now();
      c = await Container.boot(release, hostId);
      sd = new Systemd(c);
      say(`container ${hostId} booted in ${secondsSince(t0)}`);

      t0 = Date.now();
      const inside = `/srv/${path.basename(deb)}`;
      await c.copyIn(deb, inside);
      await c.exec(['apt-get', 'install', '-y', '--no-install-recommends', inside], { timeoutMs: 300_000 });
      // The package starts the service with no peers; the proofs start it themselves.
      await box().sh('systemctl stop gatewayc');

      // Encrypted answers too, so the daemon's decryption is on the path.
      londs = await startLondNetwork([...PEERS, NEW_PEER], hostId, { firstAddress, encryptAnswers: true });
      const conf = [
        '',
        '# system test: the fake lond on the host, insecure keys, quick timeouts',
        `PerlSetVar lonHostID ${hostId}`,
        `PerlSetVar londPort ${londs.port}`,
        'PerlSetVar gatewaycKeyMode insecure',
        'PerlSetVar gatewaycConnectTimeout 2',
        'PerlSetVar gatewaycHandshakeTimeout 3',
        'PerlSetVar gatewaycRequestTimeout 15',
        'PerlSetVar gatewaycMaxAttempts 2',
        'PerlSetVar gatewaycRetryMax 2',
      ];
      const hosts = [`${hostId}:testdom:library:${hostId}.example:127.0.0.1`, ...PEERS.map(hostsLine)];
      await box().sh(`cat >> ${CONF}`, { input: `${conf.join('\n')}\n` });
      await box().sh(`cat >> ${HOSTS}`, { input: `${hosts.join('\n')}\n` });
      await box().sh('systemctl daemon-reload');
      say(`apt installed the package, configured peers ${PEERS.join(', ')} (fake londs on 127.0.0.${firstAddress}+:${londs.port}), daemon-reload in ${secondsSince(t0)}`);
    });

    after(async () => {
      try {
        await c?.poweroff();
      } finally {
        await londs?.stop();
      }
    });

    it('1. systemctl start returns after READY; STATUS line; one socket unit per peer, gatewayc:www-data 0660', async () => {
      const t0 = Date.now();
      await start();
      const took = secondsSince(t0);
      // Type=notify: the start job ends on READY=1, so the unit is already running.
      const st = await box().show('gatewayc', ['ActiveState', 'SubState', 'Type', 'MainPID']);
      assert.deepEqual([st.ActiveState, st.SubState, st.Type], ['active', 'running', 'notify']);
      assert.notEqual(st.MainPID, '0');
      assert.equal(await box().out(`ps -o user= -p ${st.MainPID}`), 'gatewayc');
      say(`systemctl start returned in ${took} with the unit active/running (Type=notify: after READY=1), main pid ${st.MainPID} runs as gatewayc`);

      const status = await waitStatus(/^2\/2 peers up, \d+ sessions/);
      const shown = await box().out('systemctl status --no-pager --lines=0 gatewayc');
      assert.ok(shown.includes(`Status: "${status}"`) || /Status: "2\/2 peers up/.test(shown), `systemctl status shows the STATUS line:\n${shown}`);
      say(`StatusText "${status}", also in systemctl status`);

      const listed = (await box().out('systemctl list-sockets --no-legend --plain --all'))
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[1]?.startsWith('gatewayc@'));
      assert.deepEqual(
        listed.map((f) => f.slice(0, 3).join(' ')).sort(),
        PEERS.map((id) => `${peerSocket(id)} gatewayc@${id}.socket gatewayc.service`).sort(),
      );
      for (const id of PEERS) {
        assert.equal(await box().out(`stat -c '%U:%G %a %A' ${peerSocket(id)}`), 'gatewayc:www-data 660 srw-rw----');
        assert.equal(await box().prop(`gatewayc@${id}.socket`, 'ActiveState'), 'active');
      }
      say(`systemctl list-sockets: exactly ${listed.map((f) => f[1]).join(', ')} activating gatewayc.service; each gatewayc:www-data srw-rw----`);
    });

    it('2. a plain and an encrypted request through a peer socket get the lond\'s answers', async () => {
      await ensureRunning();
      for (const id of PEERS) {
        assert.equal(await ask(id, 'ping'), id);
        assert.equal(await ask(id, `echo:plain to ${id}`), `plain to ${id}`);
      }
      say(`plain requests as www-data: ping and echo answered by ${PEERS.join(' and ')}`);

      const s = secret();
      const before = lond('alpha').received.length;
      assert.equal(await ask('alpha', `encrypt:echo:${s}`), s);
      const got = lond('alpha').received.slice(before).find((r) => r.plain.toString() === `echo:${s}`);
      assert.ok(got, 'the fake lond received the request');
      assert.ok(got.encrypted, 'it came as enc:');
      assert.ok(!got.raw.includes(s), 'the plaintext is not on the wire');
      say(`encrypt:echo:<marker> went out as ${got.raw.toString('latin1').slice(0, 24)}..., the encrypted answer came back decrypted`);
    });

    it('3. socket activation: service stopped, a client connects, the service starts and answers it', async () => {
      await ensureRunning();
      await box().sh('systemctl stop gatewayc', { timeoutMs: 60_000 });
      assert.equal(await box().out('systemctl is-active gatewayc', { allowFail: true }), 'inactive');
      for (const id of PEERS) {
        assert.equal(await box().prop(`gatewayc@${id}.socket`, 'ActiveState'), 'active', `gatewayc@${id}.socket stays`);
        assert.equal(await box().out(`stat -c %F ${peerSocket(id)}`), 'socket');
      }
      say('systemctl stop gatewayc: the service is inactive, both peer socket units still listen');

      const t0 = Date.now();
      assert.equal(await ask('beta', 'echo:woke me up'), 'woke me up');
      const took = secondsSince(t0);
      const st = await box().show('gatewayc', ['ActiveState', 'SubState', 'MainPID']);
      assert.deepEqual([st.ActiveState, st.SubState], ['active', 'running']);
      say(`a client's request to beta started gatewayc (pid ${st.MainPID}) and was answered in ${took}`);
    });

    it('4. reload: a new peer answers at once, the others keep their sessions; a broken config is refused', async () => {
      await ensureRunning();
      // The sessions the other peers have now must survive the reload.
      for (const id of PEERS) assert.equal(await ask(id, 'ping'), id);
      const pid = await mainPid();
      const connections = PEERS.map((id) => lond(id).stats.connections);

      await box().sh(`cat >> ${HOSTS}`, { input: `${hostsLine(NEW_PEER)}\n` });
      const t0 = Date.now();
      await box().sh('systemctl reload gatewayc', { timeoutMs: 60_000 });
      const took = secondsSince(t0);
      // Synchronous: when systemctl returns, the new peer's socket is there.
      assert.equal(await box().out(`stat -c %F ${peerSocket(NEW_PEER)}`), 'socket');
      assert.equal(await ask(NEW_PEER, 'ping'), NEW_PEER);
      assert.equal(await ask(NEW_PEER, `echo:hello ${NEW_PEER}`), `hello ${NEW_PEER}`);
      assert.deepEqual(PEERS.map((id) => lond(id).stats.connections), connections, 'no new connections to the other peers');
      assert.equal(await mainPid(), pid, 'reload kept the process');
      await waitStatus(/^3\/3 peers up/);
      say(`systemctl reload (${took}) with ${NEW_PEER} added: its socket existed on return, it answers; ${PEERS.join(', ')} kept their sessions (connections ${connections.join(', ')} unchanged), same pid ${pid}`);

      const cursor = await box().cursor();
      await box().sh(`echo '${BROKEN_LINE}' >> ${CONF}`);
      try {
        const r = await box().sh('systemctl reload gatewayc', { allowFail: true, timeoutMs: 60_000 });
        assert.notEqual(r.code, 0, 'systemctl reload fails on a broken configuration');
        const st = await box().show('gatewayc', ['ActiveState', 'SubState', 'MainPID']);
        assert.deepEqual([st.ActiveState, st.SubState, st.MainPID], ['active', 'running', pid]);
        for (const id of [...PEERS, NEW_PEER]) assert.equal(await ask(id, 'ping'), id);
        const refused = (await box().messages('gatewayc', { after: cursor, maxPriority: 3 })).filter((m) => m.includes('gatewaycMaxSessions'));
        assert.ok(refused.length > 0, 'the journal says why the reload was refused');
        say(`with "${BROKEN_LINE}": systemctl reload exited ${r.code}, the journal says "${refused[0]}", still pid ${pid}, all 3 peers answer`);
      } finally {
        await box().sh(`sed -i '/^${BROKEN_LINE}$/d' ${CONF}`);
      }
      await box().sh('systemctl reload gatewayc', { timeoutMs: 60_000 });
    });

    it('5. watchdog: SIGSTOP the daemon, systemd kills it (Result=watchdog) and restarts it, it serves again', async () => {
      await box().sh(`mkdir -p ${path.posix.dirname(WATCHDOG_DROPIN)} && printf '[Service]\\nWatchdogSec=3s\\n' > ${WATCHDOG_DROPIN}`);
      await box().sh('systemctl daemon-reload && systemctl restart gatewayc', { timeoutMs: 60_000 });
      assert.equal(await box().prop('gatewayc', 'WatchdogUSec'), '3s');
      // What an admin does after editing hosts.tab (gatewayc.service): now systemd holds NEW_PEER's socket too.
      const sockets = await box().out('systemctl list-sockets --no-legend --plain');
      assert.match(sockets, new RegExp(`^${peerSocket(NEW_PEER)}\\s+gatewayc@${NEW_PEER}\\.socket\\s`, 'm'));
      for (const id of [...PEERS, NEW_PEER]) assert.equal(await ask(id, 'ping'), id);
      say(`drop-in WatchdogSec=3s, daemon-reload, restart: all 3 peers answer, systemd now holds ${NEW_PEER}'s socket too`);

      // A healthy daemon pings every 1.5 s: it must survive a few periods.
      const restarts = await box().prop('gatewayc', 'NRestarts');
      const pid = await mainPid();
      await sleep(4000);
      assert.equal(await mainPid(), pid, 'a healthy daemon is not killed by the watchdog');

      const cursor = await box().cursor();
      const t0 = Date.now();
      await box().sh(`kill -STOP ${pid}`);
      let sawWatchdog = false;
      let last: Record<string, string> = {};
      const newPid = await waitFor('a new main pid, active/running', 30_000, async () => {
        last = await box().show('gatewayc', ['ActiveState', 'SubState', 'Result', 'MainPID']);
        if (last.Result === 'watchdog') sawWatchdog = true;
        return last.MainPID !== pid && last.MainPID !== '0' && last.ActiveState === 'active' && last.SubState === 'running' ? last.MainPID : undefined;
      }, 100, () => JSON.stringify(last));
      const took = secondsSince(t0);
      const log = await box().messages('gatewayc.service', { after: cursor });
      const journal = `the journal since kill -STOP:\n${log.join('\n')}`;
      assert.equal(log.filter((m) => /[Ww]atchdog timeout/.test(m)).length, 1, `one "Watchdog timeout" in ${journal}`);
      const results = log.map((m) => /Failed with result '([^']+)'/.exec(m)?.[1]).filter((r) => r !== undefined);
      assert.equal(results[0], 'watchdog', `"Failed with result 'watchdog'" in ${journal}`);
      // systemd 257 in these containers now and then fails to spawn the restarted process
      // ("Failed to spawn executor: No such file or directory", result 'resources') and
      // restarts once more by itself; anything else is a second failure of the daemon.
      assert.deepEqual(results.slice(1).filter((r) => r !== 'resources'), [], `no failure but the watchdog in ${journal}`);
      assert.equal(Number(await box().prop('gatewayc', 'NRestarts')), Number(restarts) + results.length, `one restart per failure in ${journal}`);
      const spawnRetries = results.length - 1;
      assert.equal(await box().out(`ps -o pid= -p ${pid}`, { allowFail: true }), '', 'the frozen process is gone');
      say(`kill -STOP ${pid}: journal has "Watchdog timeout" and "Failed with result 'watchdog'"${sawWatchdog ? ' (Result=watchdog seen)' : ''}; restarted as pid ${newPid} ${took} later${spawnRetries > 0 ? ` (after ${spawnRetries} failed spawn(s) of systemd's executor, retried by Restart=)` : ''}`);

      for (const id of [...PEERS, NEW_PEER]) assert.equal(await ask(id, 'ping'), id);
      restartsAfterWatchdog = await box().prop('gatewayc', 'NRestarts');
      say('the restarted daemon serves all 3 peers again');
    });

    it('6. journald: a peer going down is a warning, -p warning shows nothing below; no encrypted plaintext anywhere', async () => {
      await ensureRunning();
      const cursor = await box().cursor();
      await lond('beta').stop();
      betaStopped = true;
      let warnings: string[] = [];
      await waitFor('a warning that beta is down', 30_000, async () => {
        warnings = await box().messages('gatewayc', { after: cursor, maxPriority: 4 });
        return warnings.some((m) => /^peer beta: down\b/.test(m)) ? true : undefined;
      }, 250, () => JSON.stringify(warnings));
      say(`fake lond beta stopped: journalctl -u gatewayc -p warning shows ${warnings.map((w) => `"${w}"`).join(', ')}`);

      // An encrypted request that fails: error paths must not leak it either.
      const s = secret();
      const answer = await ask('beta', `encrypt:echo:${s}`);
      assert.equal(answer, 'con_lost');
      // A reload logs a line after it on the same stream: once that line is in the
      // journal, so is anything logged for the request.
      await box().sh('systemctl reload gatewayc', { timeoutMs: 60_000 });
      await waitFor('the reload line in the journal', 10_000, async () =>
        (await box().messages('gatewayc', { after: cursor })).some((m) => m.startsWith('reloaded:')) ? true : undefined);

      const filtered = await box().journal(['-u', 'gatewayc', '-p', 'warning']);
      const tooLow = filtered.filter((e) => !(Number(e.PRIORITY) <= 4));
      assert.deepEqual(tooLow.map(entryMessage), [], 'journalctl -p warning shows nothing below warning');
      assert.ok(filtered.some((e) => /^peer beta: down\b/.test(entryMessage(e))), 'journalctl -u gatewayc -p warning shows beta going down');
      const all = await box().journal(['-u', 'gatewayc']);
      const ours = all.filter((e) => e.SYSLOG_IDENTIFIER === 'gatewayc');
      const info = ours.filter((e) => e.PRIORITY === '6');
      assert.ok(info.some((e) => /ready: \d+ peers/.test(entryMessage(e))), 'the daemon\'s info lines are stored at priority 6');
      assert.ok(ours.some((e) => e.PRIORITY === '4' && /^peer beta: /.test(entryMessage(e))));
      assert.deepEqual(ours.filter((e) => /^<\d>/.test(entryMessage(e))).map(entryMessage), [], 'the <N> prefixes were taken as priorities');
      say(`-p warning: ${filtered.length} entries, all PRIORITY <= 4; the unit's ${ours.length} daemon lines include ${info.length} info lines (PRIORITY 6) that -p warning hid`);

      const everything = await box().journal(['--all']);
      const consoleLog = fs.readFileSync(box().c.bootLog, 'utf8');
      for (const x of secrets) {
        const leaks = everything.filter((e) => entryText(e).includes(x))
          .map((e) => `${String(e.SYSLOG_IDENTIFIER ?? e._COMM)} [${String(e.PRIORITY)}]: ${entryMessage(e).split(x).join('<plaintext>')}`);
        assert.deepEqual(leaks, [], 'journal entries with an encrypted request\'s plaintext');
        assert.ok(!consoleLog.includes(x), 'an encrypted request\'s plaintext is on the console');
      }
      say(`none of the ${secrets.length} encrypted plaintexts (one answered, one con_lost) is anywhere in the journal (${everything.length} entries, all units) or on the console`);

      if (restartsAfterWatchdog !== undefined) {
        assert.equal(await box().prop('gatewayc', 'NRestarts'), restartsAfterWatchdog, 'no watchdog restart of a healthy daemon');
      }
    });

    it('7. systemctl stop: every session says exit, the unit is inactive, no process is left', async () => {
      await ensureRunning();
      if (betaStopped) {
        await restartLond('beta');
        betaStopped = false;
      }
      // beta's lond is back: the daemon retries it within gatewaycRetryMax (2 s).
      await waitFor('beta up again', 30_000, async () => ((await ask('beta', 'ping')) === 'beta' ? true : undefined), 500);
      for (const id of [...PEERS, NEW_PEER]) assert.equal(await ask(id, 'ping'), id);
      await sleep(200);
      const ids = [...PEERS, NEW_PEER];
      const open = ids.map((id) => lond(id).stats.open);
      const exits = ids.map((id) => lond(id).stats.exits);
      for (const [i, id] of ids.entries()) assert.ok((open[i] ?? 0) >= 1, `${id} has a session`);

      const t0 = Date.now();
      await box().sh('systemctl stop gatewayc', { timeoutMs: 60_000 });
      const took = secondsSince(t0);
      await waitFor('every session closed', 10_000, async () => (ids.every((id) => lond(id).stats.open === 0) ? true : undefined), 50);
      assert.deepEqual(ids.map((id, i) => lond(id).stats.exits - (exits[i] ?? 0)), open, 'one exit per open session');
      say(`systemctl stop (${took}): sessions ${ids.map((id, i) => `${id} ${open[i]}`).join(', ')} each sent exit before closing`);

      const st = await box().show('gatewayc', ['ActiveState', 'SubState', 'Result', 'MainPID']);
      assert.deepEqual([st.ActiveState, st.SubState, st.Result, st.MainPID], ['inactive', 'dead', 'success', '0']);
      const left = await box().sh('pgrep -u gatewayc', { allowFail: true });
      assert.equal(left.code, 1, `no process of user gatewayc is left: ${left.stdout}`);
      say('the unit is inactive/dead with Result=success, pgrep -u gatewayc finds nothing');
    });

    it('8. ssl key mode: with the network\'s certificates installed, a peer negotiates its key over TLS', async () => {
      const pki = testPki();
      const own = pki.host(hostId);
      const certs = '/etc/gatewayc/certs';
      await box().sh(`mkdir -p ${certs}`);
      await box().sh(`cat > ${certs}/loncapaCA.pem`, { input: pki.ca.cert });
      await box().sh(`cat > ${certs}/lonhostcert.pem`, { input: own.cert });
      // The private key: readable by the service's group only.
      await box().sh(`umask 077 && cat > ${certs}/lonhostkey.pem && chgrp gatewayc ${certs}/lonhostkey.pem && chmod 0640 ${certs}/lonhostkey.pem`, { input: own.key });
      const alpha = lond('alpha');
      alpha.keyModes = { ssl: { ca: pki.ca.cert, cert: pki.host('alpha').cert, key: pki.host('alpha').key } };
      await box().sh(`cat >> ${CONF}`, { input: 'PerlSetVar gatewaycKeyMode auto\n' });
      const check = await box().sh('gatewayctl check', { allowFail: true });
      assert.equal(check.code, 0, `gatewayctl check accepts the certificates:\n${check.stdout}${check.stderr}`);
      await start();
      const marker = `tls-${crypto.randomBytes(4).toString('hex')}`;
      const answer = await waitFor('alpha answers over a TLS-negotiated key', 30_000, async () => {
        const a = await ask('alpha', `encrypt:echo:${marker}`);
        return a === marker ? a : undefined;
      }, 500);
      assert.equal(answer, marker);
      assert.ok(alpha.tlsReports.length >= 1, 'the fake lond ran the TLS part');
      const status = JSON.parse(await box().out('gatewayctl status --json alpha')) as { peers: { id: string; keyMode: string }[] };
      assert.equal(status.peers.find((p) => p.id === 'alpha')?.keyMode, 'ssl');
      say(`certificates in ${certs} (CN ${hostId}, key 0640 root:gatewayc): gatewayctl check OK, alpha's key negotiated over TLS, encrypted request answered, status shows key mode ssl`);
      await box().sh('systemctl stop gatewayc', { timeoutMs: 60_000 });
    });
  });
}

describe('gatewayc under systemd in booted containers', { skip: unavailable ?? false, concurrency: process.env.GATEWAYC_SYSTEM_SERIAL ? 1 : true }, () => {
  for (const release of RELEASES) releaseSuite(release);
});
