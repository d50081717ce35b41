/**
 * The unit files as systemd itself reads them, offline (`systemd-analyze verify` and
 * `security --offline`): no running systemd is needed, but systemd-analyze is. The real
 * behaviour is proven in booted containers by the system tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const UNITS = path.resolve(__dirname, '../../../systemd');
const GENERATOR = path.join(UNITS, 'gatewayc-generator');
const UNIT_FILES = ['gatewayc.service', 'gatewayc@.socket', 'gatewayc-control.socket'];

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const noAnalyze = analyze.error ? 'systemd-analyze is not installed' : false;

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-units-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The units plus the generator's output for `conf` and `hosts`, in one directory, as systemd would merge them. */
function unitDir(t: { after: (fn: () => void) => void }, confLines: string[], hosts: string[]): string {
  const root = tmp(t);
  const units = path.join(root, 'units');
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc/gatewayc.conf'), [`PerlSetVar lonTabDir ${root}/etc`, 'PerlSetVar lonHostID me', ...confLines, ''].join('\n'));
  fs.writeFileSync(path.join(root, 'etc/hosts.tab'), hosts.map((id) => `${id}:dom:library:${id}.example.edu:10.0.0.1\n`).join(''));
  // LON-CAPA's web server group, which this machine need not have.
  fs.writeFileSync(path.join(root, 'group'), 'www-data:x:33:\nwww:x:1001:\n');
  const r = spawnSync(GENERATOR, [units, path.join(root, 'early'), path.join(root, 'late')], {
    env: { PATH: process.env.PATH, GATEWAYC_CONF: path.join(root, 'etc/gatewayc.conf'), GATEWAYC_GROUP_FILE: path.join(root, 'group') },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  for (const f of UNIT_FILES) fs.copyFileSync(path.join(UNITS, f), path.join(units, f));
  return units;
}

/** `systemd-analyze verify` of the service and the named units; at debug level it dumps each unit on stdout. */
function verify(dir: string, names: string[]): { status: number | null; stderr: string; dump: string } {
  const run = (debug: boolean): ReturnType<typeof spawnSync> =>
    spawnSync('systemd-analyze', ['verify', '--man=no', './gatewayc.service', ...names], {
      cwd: dir,
      env: { PATH: process.env.PATH, ...(debug ? { SYSTEMD_LOG_LEVEL: 'debug' } : {}) },
      encoding: 'utf8',
    });
  const plain = run(false);
  return { status: plain.status, stderr: String(plain.stderr), dump: String(run(true).stdout) };
}

/** The dumped settings of one unit: "-> Unit NAME:" followed by indented "Key: value" lines. */
function settings(dump: string, unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const lines = dump.split('\n');
  const start = lines.findIndex((l) => l.trim() === `-> Unit ${unit}:`);
  assert.ok(start >= 0, `no dump of ${unit}`);
  for (const l of lines.slice(start + 1)) {
    const m = /^\t\t([A-Za-z]+): (.*)$/.exec(l);
    if (!m) {
      if (/^\s*-> Unit /.test(l)) break;
      continue;
    }
    // Dependencies carry where they came from: "Wants: x.socket (origin-file)".
    const value = (m[2] as string).replace(/ \((origin|destination)-[^)]*\)$/, '');
    out.set(m[1] as string, [...(out.get(m[1] as string) ?? []), value]);
  }
  return out;
}

/** Only complaints about the programs this machine lacks; no syntax warnings. */
function assertClean(stderr: string): void {
  const ours = stderr.split('\n').filter((l) => /gatewayc/.test(l));
  for (const l of ours) assert.match(l, /Command \/usr\/sbin\/gatewayc(tl)? is not executable/, l);
}

const TRICKY = ['msul1', 'foo-bar', 'a.b~c', '.dot', 'pct%20'];
const escaped = (id: string): string => {
  const r = spawnSync('systemd-escape', ['--', id], { encoding: 'utf8' });
  return r.stdout.trim();
};

test('each peer socket listens on <lonSockDir>/<id> and names its descriptor <id>, "-" and odd characters included', { skip: noAnalyze }, (t) => {
  for (const [conf, dir] of [[[], '/run/gatewayc/sockets'], [['PerlSetVar lonSockDir /srv/gw/sock'], '/srv/gw/sock']] as [string[], string][]) {
    const units = unitDir(t, conf, TRICKY);
    const names = TRICKY.map((id) => `gatewayc@${escaped(id)}.socket`);
    const r = verify(units, names);
    assertClean(r.stderr);
    for (const [i, id] of TRICKY.entries()) {
      const s = settings(r.dump, names[i] as string);
      assert.deepEqual(s.get('ListenStream'), [`${dir}/${id}`], `${id} in ${dir}`);
      assert.deepEqual(s.get('FileDescriptorName'), [id]);
      assert.deepEqual(s.get('SocketMode'), ['0660']);
      assert.deepEqual(s.get('SocketGroup'), ['www-data']);
      assert.deepEqual(s.get('RemoveOnStop'), ['no']);
    }
    const service = settings(r.dump, 'gatewayc.service');
    for (const n of names) assert.ok(service.get('Wants')?.includes(n), `gatewayc.service wants ${n}`);
    assert.ok(service.get('Wants')?.includes('gatewayc-control.socket'));
  }
});

test('the control socket is /run/gatewayc/control, named "control", for root and the gatewayc group', { skip: noAnalyze }, (t) => {
  const units = unitDir(t, [], []);
  const r = verify(units, ['gatewayc-control.socket']);
  assertClean(r.stderr);
  const s = settings(r.dump, 'gatewayc-control.socket');
  assert.deepEqual(s.get('ListenStream'), ['/run/gatewayc/control']);
  assert.deepEqual(s.get('FileDescriptorName'), ['control']);
  assert.deepEqual(s.get('SocketMode'), ['0660']);
  assert.deepEqual(s.get('SocketUser'), ['root']);
  assert.deepEqual(s.get('SocketGroup'), ['gatewayc']);
});

/** LON-CAPA's layout: the sockets and the spool under /home/httpd/perl/sockets, the web server's group www. */
const LONCAPA = [
  'PerlSetVar lonSockDir /home/httpd/perl/sockets',
  'PerlSetVar gatewaycDelayedDir /home/httpd/perl/sockets/delayed',
  'PerlSetVar lonCertificateDirectory /home/httpd/lonCerts',
  'PerlSetVar gatewaycSocketGroup www',
];

test("a LON-CAPA layout: the sockets' group and path, the service's group and the paths its sandbox opens", { skip: noAnalyze }, (t) => {
  const units = unitDir(t, LONCAPA, ['msul1']);
  const r = verify(units, ['gatewayc@msul1.socket', 'gatewayc-dirs.service']);
  assertClean(r.stderr);
  const s = settings(r.dump, 'gatewayc.service');
  assert.deepEqual(s.get('ProtectHome'), ['tmpfs']);
  assert.deepEqual(s.get('SupplementaryGroups'), ['www']);
  assert.ok(s.get('Wants')?.includes('gatewayc-dirs.service'));
  assert.ok(s.get('After')?.includes('gatewayc-dirs.service'));
  const socket = settings(r.dump, 'gatewayc@msul1.socket');
  assert.deepEqual(socket.get('ListenStream'), ['/home/httpd/perl/sockets/msul1']);
  assert.deepEqual(socket.get('SocketGroup'), ['www']);
  assert.deepEqual(socket.get('SocketMode'), ['0660']);
  // Not in systemd-analyze 252's dump: read from the files systemd reads.
  const dropins = fs.readdirSync(path.join(units, 'gatewayc.service.d')).map((f) => fs.readFileSync(path.join(units, 'gatewayc.service.d', f), 'utf8')).join('');
  assert.match(dropins, /^BindPaths= -\/home\/httpd\/perl\/sockets$/m);
  assert.match(dropins, /^BindReadOnlyPaths= -\/home\/httpd\/lonCerts$/m);
  const dirs = settings(r.dump, 'gatewayc-dirs.service');
  assert.deepEqual(dirs.get('Type'), ['oneshot']);
  assert.ok(dirs.get('Before')?.includes('gatewayc.service'));
});

/** `systemd-analyze security --offline` of gatewayc.service in `dir` (its drop-ins included); undefined if unavailable. */
function exposure(dir: string): number | undefined {
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', './gatewayc.service'], { cwd: dir, encoding: 'utf8' });
  const m = /Overall exposure level for gatewayc\.service: (\d+\.\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}

test('hardening: the LON-CAPA layout (group www, paths under /home) keeps the exposure of the default', { skip: noAnalyze }, (t) => {
  const base = exposure(unitDir(t, [], ['msul1']));
  if (base === undefined) {
    t.skip('systemd-analyze security --offline is not available here');
    return;
  }
  const loncapa = exposure(unitDir(t, LONCAPA, ['msul1']));
  t.diagnostic(`exposure: default ${base}, LON-CAPA layout ${String(loncapa)}`);
  assert.equal(loncapa, base);
});

test('the service as systemd reads it: notify, watchdog, restart policy, user, command lines', { skip: noAnalyze }, (t) => {
  const r = verify(unitDir(t, [], []), []);
  assertClean(r.stderr);
  const s = settings(r.dump, 'gatewayc.service');
  assert.deepEqual(s.get('Type'), ['notify']);
  assert.deepEqual(s.get('NotifyAccess'), ['main']);
  assert.deepEqual(s.get('WatchdogSec'), ['30s']);
  // Longer than the daemon's own stop bound (gatewaycShutdownTimeout, 5 s), short enough
  // that a wedged daemon is killed soon after its watchdog timeout.
  assert.deepEqual(s.get('TimeoutAbortSec'), ['10s']);
  assert.deepEqual(s.get('Restart'), ['on-failure']);
  assert.deepEqual(s.get('User'), ['gatewayc']);
  assert.deepEqual(s.get('UMask'), ['0007']);
  const commands = [...r.dump.matchAll(/^\t\t-> (Exec\w+):\n\t\t\tCommand Line: (.*)$/gm)].map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(commands, [
    `ExecStart /usr/sbin/gatewayc --config /etc/gatewayc/gatewayc.conf --default-host-id ${os.hostname().split('.')[0]}`,
    'ExecReload /usr/sbin/gatewayctl reload',
  ]);
});

test('decisions the unit comments explain stay made', () => {
  const service = fs.readFileSync(path.join(UNITS, 'gatewayc.service'), 'utf8');
  // V8's JIT needs W+X memory; the socket directory must survive service stops.
  assert.doesNotMatch(service, /^MemoryDenyWriteExecute=/m);
  assert.doesNotMatch(service, /^RuntimeDirectory=/m);
  // Not dumped by systemd-analyze 252, so checked here: a broken config (exit 78) must
  // not restart in a loop; journal lines carry the daemon's name.
  assert.match(service, /^RestartPreventExitStatus=78$/m);
  assert.match(service, /^SyslogIdentifier=gatewayc$/m);
  // A watchdog timeout is an ordinary stop, so a daemon that still runs answers what it
  // accepted (SIGABRT, the default, would lose it); not dumped by systemd-analyze either.
  assert.match(service, /^WatchdogSignal=SIGTERM$/m);
  for (const f of ['gatewayc@.socket', 'gatewayc-control.socket']) {
    const socket = fs.readFileSync(path.join(UNITS, f), 'utf8');
    // Sockets outlive restarts of the service, so clients never see the path vanish.
    assert.doesNotMatch(socket, /^(PartOf|BindsTo|Requires)=/m, f);
    assert.doesNotMatch(socket, /^RemoveOnStop=yes/m, f);
    assert.match(socket, /^Service=gatewayc\.service$/m, f);
  }
});

test('hardening: exposure at most 2.0 in systemd-analyze security', { skip: noAnalyze }, (t) => {
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', path.join(UNITS, 'gatewayc.service')], { encoding: 'utf8' });
  const m = /Overall exposure level for gatewayc\.service: (\d+\.\d+)/.exec(r.stdout);
  if (!m) {
    t.skip(`systemd-analyze security --offline is not available here: ${r.stderr.trim().split('\n')[0] ?? ''}`);
    return;
  }
  t.diagnostic(`exposure ${m[1]}`);
  assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]}`);
});

test("gatewayc-dirs.service repeats the generator's warnings verbatim, whatever characters the configuration holds", { skip: noAnalyze }, (t) => {
  const units = unitDir(t, ['PerlSetVar lonSockDir "/odd \\"dir\\" %i $HOME \\\\ 100%"'], []);
  const r = verify(units, ['gatewayc-dirs.service']);
  assertClean(r.stderr);
  const dirs = fs.readFileSync(path.join(units, 'gatewayc-dirs.service'), 'utf8');
  const notes = [...dirs.matchAll(/^ExecStartPre=(.*)$/gm)].map((m) => m[1] as string);
  assert.equal(notes.length, 3, dirs);
  // What echo will print, as systemd parses the line (specifiers, "$$", C escapes).
  const shown = [...r.dump.matchAll(/^\t\t\tCommand Line: echo (.*)$/gm)].map((m) => m[1] as string);
  assert.equal(shown.length, 3, r.dump);
  for (const s of shown) assert.ok(s.includes('/odd \\"dir\\" %i \\$\\$HOME \\\\ 100%'), s);
});
