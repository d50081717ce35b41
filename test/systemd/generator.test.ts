import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const GENERATOR = path.resolve(__dirname, '../../../systemd/gatewayc-generator');
const PEERS = 'gatewayc.service.d/50-gatewayc-peers.conf';
const PATHS = 'gatewayc.service.d/50-gatewayc-paths.conf';
const GROUP = 'gatewayc.service.d/50-gatewayc-group.conf';
const SOCKET = 'gatewayc@.socket.d/50-gatewayc-generator.conf';
const DIRS_UNIT = 'gatewayc-dirs.service';
const DIRS_DROPIN = 'gatewayc.service.d/50-gatewayc-dirs.conf';
const SHORT_HOST = os.hostname().split('.')[0] as string;
/** The package's directories, as debian/gatewayc.tmpfiles makes them for group www-data. */
const DEFAULT_DIRS = [
  'd /run/gatewayc/sockets 2755 gatewayc www-data -',
  'd /var/spool/gatewayc/delayed 2770 gatewayc www-data -',
  'd /run/gatewayc/keys 2770 gatewayc www-data -',
];
/** A group file with LON-CAPA's web server group (tests cannot rely on the machine's). */
const GROUPS = 'root:x:0:\nwww-data:x:33:\nwww:x:1001:\ngatewayc:x:999:\n';

interface Result {
  status: number | null;
  stderr: string;
  /** Units the generated peers drop-in makes gatewayc.service want, in order. */
  wants: string[];
  /** The systemd-tmpfiles lines of gatewayc-dirs.service, in order. */
  dirs: string[];
  /** The warnings gatewayc-dirs.service repeats in the journal at each start (ExecStartPre=echo). */
  notes: string[];
  /** Path relative to the output directory → content, for every other file written. */
  files: Map<string, string>;
  ms: number;
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-gen-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(root: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    const p = path.join(root, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
  }
}

function groupFile(root: string): string {
  const file = path.join(root, 'group');
  if (!fs.existsSync(file)) fs.writeFileSync(file, GROUPS);
  return file;
}

/** Runs the generator as systemd does (three output directories) and collects what it wrote. */
function generate(root: string, conf: string, args?: string[]): Result {
  const out = path.join(root, 'out');
  fs.rmSync(out, { recursive: true, force: true });
  const started = Date.now();
  const r = spawnSync(GENERATOR, args ?? [out, path.join(root, 'early'), path.join(root, 'late')], {
    env: { PATH: process.env.PATH, GATEWAYC_CONF: conf, GATEWAYC_GROUP_FILE: groupFile(root) },
    encoding: 'utf8',
  });
  const ms = Date.now() - started;
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      assert.ok(e.isDirectory() || e.isFile(), `unexpected ${p}`);
      if (e.isDirectory()) walk(p);
      else files.set(path.relative(out, p), fs.readFileSync(p, 'utf8'));
    }
  };
  walk(out);
  let wants: string[] = [];
  const peers = files.get(PEERS);
  if (peers !== undefined) {
    files.delete(PEERS);
    const lines = peers.split('\n');
    assert.match(lines[0] as string, /^# Written by gatewayc-generator from .*hosts\.tab: one socket per peer$/);
    assert.equal(lines[1], '[Unit]');
    assert.equal(lines.at(-1), '', 'ends with a newline');
    wants = lines.slice(2, -1).map((l) => {
      const m = /^Wants=(gatewayc@[^\s]+\.socket)$/.exec(l);
      assert.ok(m, `not a Wants= line: ${l}`);
      return m[1] as string;
    });
  }
  let dirs: string[] = [];
  let notes: string[] = [];
  const unit = files.get(DIRS_UNIT);
  if (unit !== undefined) {
    files.delete(DIRS_UNIT);
    assert.equal(files.get(DIRS_DROPIN), `# Written by gatewayc-generator from ${conf}\n[Unit]\nWants=gatewayc-dirs.service\nAfter=gatewayc-dirs.service\n`);
    files.delete(DIRS_DROPIN);
    assert.match(unit, /^\[Service\]\nType=oneshot\nExecStart=systemd-tmpfiles --create -\n/m);
    assert.match(unit, /^Before=gatewayc\.service$/m);
    dirs = [...unit.matchAll(/^StandardInputText=(.*)$/gm)].map((m) => m[1] as string);
    notes = [...unit.matchAll(/^ExecStartPre=echo "<4>gatewayc-generator: (.*)"$/gm)].map((m) => (m[1] as string).replace(/\\(.)/g, '$1').replace(/%%/g, '%').replace(/\$\$/g, '$'));
    const mounts = /^RequiresMountsFor=(.*)$/m.exec(unit)?.[1] ?? '';
    assert.deepEqual(mounts.split(' ').filter(Boolean), dirs.map((d) => (d.split(' ')[1] as string).replace(/%%%%/g, '%%')), 'the directories\' file systems are mounted first');
  }
  return { status: r.status, stderr: r.stderr, wants, dirs, notes, files, ms };
}

/** What the generator prints with --settings: key → value. */
function settingsOf(root: string, conf: string): { settings: Map<string, string>; stderr: string } {
  const r = spawnSync(GENERATOR, ['--settings'], { env: { PATH: process.env.PATH, GATEWAYC_CONF: conf, GATEWAYC_GROUP_FILE: groupFile(root) }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { settings: new Map(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])), stderr: r.stderr };
}

const instances = (r: Result): string[] => [...r.wants].sort();
const inst = (escaped: string): string => `gatewayc@${escaped}.socket`;

test('the generator is executable POSIX sh that dash accepts', () => {
  assert.ok(fs.statSync(GENERATOR).mode & 0o111, 'executable');
  assert.match(fs.readFileSync(GENERATOR, 'utf8'), /^#!\/bin\/sh\n/);
  for (const shell of ['dash', 'sh']) {
    const r = spawnSync(shell, ['-n', GENERATOR], { encoding: 'utf8' });
    if (r.error) continue;
    assert.equal(r.status, 0, `${shell} -n: ${r.stderr}`);
  }
});

test('one socket per peer of hosts.tab, wanted by gatewayc.service', (t) => {
  const root = tmp(t);
  write(root, {
    'etc/gatewayc.conf': `# a comment\nPerlSetVar lonTabDir ${root}/etc\nPerlSetVar lonHostID msul0\n`,
    'etc/hosts.tab': [
      '\uFEFF# LON-CAPA hosts',
      '',
      '   # indented comment',
      'msul0:msu:library:msul0.example.edu:10.0.0.0',
      'msul1:msu:library:msul1.example.edu:10.0.0.1',
      'msul2:msu:access:msul2.example.edu:https:msu',
      ' msul3 : msu : library : msul3.example.edu : 10.0.0.3 \r',
      'msul1:msu:library:msul1.example.edu:10.0.0.11',
      'short:msu:library',
      'noaddress:msu:library::',
      'bad/id:msu:library:h:10.0.0.9',
      '..:msu:library:h:10.0.0.9',
      '.:msu:library:h:10.0.0.9',
      'white space:msu:library:h:10.0.0.9',
      'ctl\u0001x:msu:library:h:10.0.0.9',
      'badaddr:msu:library:h:10.0.0 .9',
      `${'x'.repeat(65)}:msu:library:h:10.0.0.9`,
      `${'y'.repeat(64)}:msu:library:h:10.0.0.9`,
      'm\u00fcller:msu:library:h:10.0.0.9',
      '',
    ].join('\n'),
  });
  const r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.wants, [inst('msul1'), inst('msul2'), inst('msul3'), inst('y'.repeat(64))], 'in hosts.tab order, once each');
  assert.deepEqual([...r.files.keys()], [], 'no drop-ins for the default paths');
  assert.deepEqual(r.dirs, DEFAULT_DIRS, "the package's directories, group www-data");
  assert.deepEqual(r.notes, [], 'nothing to say');
});

test('instance names are escaped exactly as systemd-escape does, "-" included', (t) => {
  const root = tmp(t);
  const ids = ['foo-bar', 'a.b~c', '.dot', 'x+y=z', 'back\\slash', 'UP_low.9', 'pct%20', 'a..b', '[br]', 'q"uote'];
  write(root, {
    'etc/gatewayc.conf': `PerlSetVar lonTabDir ${root}/etc\nPerlSetVar lonHostID me\n`,
    'etc/hosts.tab': ids.map((id) => `${id}:d:library:h.example:10.1.1.1\n`).join(''),
  });
  const r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(r.status, 0, r.stderr);
  const esc = spawnSync('systemd-escape', ['--', ...ids], { encoding: 'utf8' });
  const expected = esc.error
    ? ['foo\\x2dbar', 'a.b\\x7ec', '\\x2edot', 'x\\x2by\\x3dz', 'back\\x5cslash', 'UP_low.9', 'pct\\x2520', 'a..b', '\\x5bbr\\x5d', 'q\\x22uote']
    : esc.stdout.trim().split(/\s+/);
  assert.deepEqual(instances(r), expected.map(inst).sort());
});

test('the own id is skipped: lonHostID, else the short host name (as --default-host-id %l)', (t) => {
  const root = tmp(t);
  write(root, {
    'etc/gatewayc.conf': `PerlSetVar lonTabDir ${root}/etc\n`,
    'etc/hosts.tab': `${SHORT_HOST}:d:library:h:10.0.0.1\nother:d:library:h:10.0.0.2\n`,
  });
  let r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.deepEqual(instances(r), [inst('other')]);
  fs.appendFileSync(path.join(root, 'etc/gatewayc.conf'), 'PerlSetVar lonHostID other\n');
  r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.ok(r.wants.includes(inst(SHORT_HOST.replace(/-/g, '\\x2d'))) || /[^A-Za-z0-9_.-]/.test(SHORT_HOST));
  assert.ok(!r.wants.includes(inst('other')));
});

test('never fails: no arguments, no config, no hosts.tab, no output directory', (t) => {
  const root = tmp(t);
  let r = generate(root, path.join(root, 'missing.conf'));
  assert.equal(r.status, 0);
  assert.equal(r.wants.length, 0);
  assert.equal(r.files.size, 0);
  assert.deepEqual(r.dirs, DEFAULT_DIRS);
  assert.match(r.stderr, /cannot read .*missing\.conf: using the default settings/);

  write(root, { 'etc/gatewayc.conf': `PerlSetVar lonTabDir ${root}/nowhere\n` });
  r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(r.status, 0);
  assert.equal(r.wants.length, 0);

  r = generate(root, path.join(root, 'etc/gatewayc.conf'), []);
  assert.equal(r.status, 0);

  write(root, { 'etc/hosts.tab': 'p1:d:library:h:10.0.0.1\n', 'file': '' });
  fs.writeFileSync(path.join(root, 'etc/gatewayc.conf'), `PerlSetVar lonTabDir ${root}/etc\n`);
  r = generate(root, path.join(root, 'etc/gatewayc.conf'), [path.join(root, 'file', 'out'), 'x', 'y']);
  assert.equal(r.status, 0, 'an output directory that cannot be made is not fatal either');
});

test('the default config path is /etc/gatewayc/gatewayc.conf', () => {
  const r = spawnSync('grep', ['-c', 'GATEWAYC_CONF:-/etc/gatewayc/gatewayc.conf', GENERATOR], { encoding: 'utf8' });
  assert.equal(r.stdout.trim(), '1');
});

test('config syntax as the daemon reads it: includes, last value wins, quotes, continuations, case', (t) => {
  const root = tmp(t);
  write(root, {
    'etc/gatewayc.conf': [
      'Include sub/first.conf',
      'perlsetvar lonTabDir   "' + root + '/tab dir"',
      'IncludeOptional /nonexistent/dir/*.conf',
      'IncludeOptional /nonexistent/file.conf',
      'IncludeOptional conf.d/*.conf',
      'IncludeOptional conf.d/*.none',
      '<IfModule mod_perl.c>',
      '  PerlSetVar lonHostID \\',
      '     me',
      '</IfModule>',
      '\tPerlSetVar\vlonCertificateDirectory \f "/srv/gw \\"certs\\"" \r',
      'Include sub/../sub/./second.conf',
      '',
    ].join('\r\n'),
    'etc/sub/first.conf': `PerlSetVar lonTabDir ${root}/wrong\nPerlSetVar lonHostID first\n`,
    'etc/sub/second.conf': 'PerlSetVar gatewaycDelayedDir ../spool/\n',
    'etc/conf.d/10-a.conf': 'PerlSetVar lonHostID a\n',
    'etc/conf.d/20-b.conf': 'PerlSetVar lonHostID b\n',
    'etc/conf.d/sub.conf/x': 'PerlSetVar lonHostID in-a-directory\n',
    'etc/conf.d/.hidden.conf': 'PerlSetVar lonHostID hidden\n',
    'tab dir/hosts.tab': 'me:d:library:h:10.0.0.1\nb:d:library:h:10.0.0.2\na:d:library:h:10.0.0.3\nfirst:d:library:h:10.0.0.4\n',
    'wrong/hosts.tab': 'wrong:d:library:h:10.0.0.1\n',
  });
  const r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(r.status, 0, r.stderr);
  // lonHostID "me" (set last, across a continuation line) is skipped; "b" from the
  // include is not the final id, so it is a peer.
  assert.deepEqual(instances(r), [inst('a'), inst('b'), inst('first')]);
  const { settings } = settingsOf(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(settings.get('lonCertificateDirectory'), '/srv/gw "certs"', 'a quoted value, its escapes, any ASCII whitespace');
  assert.equal(settings.get('gatewaycDelayedDir'), `${root}/etc/spool`, 'a relative path is relative to the file that sets it');
  assert.equal(r.stderr, '');
});

test('a lonSockDir other than the default gets a template drop-in and a writable path', (t) => {
  const root = tmp(t);
  write(root, {
    'etc/gatewayc.conf': `PerlSetVar lonTabDir ${root}/etc\nPerlSetVar lonSockDir /srv/gw%1/sockets/\nPerlSetVar lonHostID me\n`,
    'etc/hosts.tab': 'p-1:d:library:h:10.0.0.1\n',
  });
  const r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(instances(r), [inst('p\\x2d1')]);
  const dropin = r.files.get(SOCKET) ?? '';
  assert.match(dropin, /^\[Socket\]\nListenStream=\nListenStream=\/srv\/gw%%1\/sockets\/%I\n$/m);
  assert.doesNotMatch(dropin, /SocketGroup/, 'the template says www-data already');
  assert.match(r.files.get(PATHS) ?? '', /^ReadWritePaths= -\/srv\/gw%%1\/sockets$/m);
  assert.doesNotMatch(r.files.get(PATHS) ?? '', /ProtectHome/);
  // Specifiers are expanded in the unit file and again by systemd-tmpfiles. Not the
  // package's directory: its owner stays, its group may write.
  assert.deepEqual(r.dirs, ['d /srv/gw%%%%1/sockets 2775 :gatewayc www-data -', ...DEFAULT_DIRS.slice(1)]);

  fs.writeFileSync(path.join(root, 'etc/gatewayc.conf'), `PerlSetVar lonTabDir ${root}/etc\nPerlSetVar lonSockDir /run/gatewayc/sockets//\n`);
  const d = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(d.files.size, 0, 'the default, however spelled, needs no drop-in');
  assert.equal(d.wants.length, 1);
});

test('paths under /home: ProtectHome=tmpfs with exactly those paths bound, read-write or read-only', (t) => {
  const root = tmp(t);
  write(root, {
    'etc/gatewayc.conf': [
      `PerlSetVar lonTabDir ${root}/etc`,
      'PerlSetVar lonSockDir /home/httpd/sockets',
      'PerlSetVar gatewaycDelayedDir /home/httpd/sockets/delayed',
      'PerlSetVar gatewaycControlSocket /home/httpd/sockets/gatewayc-control',
      'PerlSetVar lonHostID me',
      '',
    ].join('\n'),
    'etc/hosts.tab': 'msul1:d:library:h:10.0.0.1\n',
  });
  const r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(r.status, 0, r.stderr);
  // The spool and the control socket are inside the socket directory: one bind.
  assert.equal(r.files.get(PATHS), `# Written by gatewayc-generator from ${root}/etc/gatewayc.conf\n[Service]\nProtectHome=tmpfs\nBindPaths= -/home/httpd/sockets\n`);
  assert.match(r.files.get('gatewayc-control.socket.d/50-gatewayc-generator.conf') ?? '', /^ListenStream=\nListenStream=\/home\/httpd\/sockets\/gatewayc-control$/m);
  assert.match(r.files.get('gatewayc@.socket.d/50-gatewayc-generator.conf') ?? '', /^ListenStream=\/home\/httpd\/sockets\/%I$/m);
  assert.deepEqual(instances(r), [inst('msul1')]);

  // Only reading from /home (certificates, a key elsewhere) binds those read-only.
  fs.writeFileSync(path.join(root, 'etc/gatewayc.conf'), `PerlSetVar lonTabDir ${root}/etc\nPerlSetVar lonCertificateDirectory /home/httpd/lonCerts\nPerlSetVar lonnetPrivateKey /home/keys/host.pem\nPerlSetVar lonnetCertificate cert.pem\n`);
  const c = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(c.files.get(PATHS), `# Written by gatewayc-generator from ${root}/etc/gatewayc.conf\n[Service]\nProtectHome=tmpfs\nBindReadOnlyPaths= -/home/httpd/lonCerts -/home/keys/host.pem\n`);
});

test('an unusable lonSockDir makes no instances (the daemon then creates every socket)', (t) => {
  const root = tmp(t);
  for (const dir of ['"/with space"', '/back\\slash', '"/tab\there"', '/n\u00e4me']) {
    write(root, {
      'etc/gatewayc.conf': `PerlSetVar lonTabDir ${root}/etc\nPerlSetVar lonSockDir ${dir}\n`,
      'etc/hosts.tab': 'msul1:d:library:h:10.0.0.1\n',
    });
    const r = generate(root, path.join(root, 'etc/gatewayc.conf'));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.wants.length, 0, dir);
    assert.match(r.stderr, /lonSockDir .* not usable/);
  }
});

test('a socket path longer than sun_path allows gets no instance', (t) => {
  const root = tmp(t);
  const dir = `/run/${'d'.repeat(90)}`; // 95 bytes + "/" + id
  write(root, {
    'etc/gatewayc.conf': `PerlSetVar lonTabDir ${root}/etc\nPerlSetVar lonSockDir ${dir}\n`,
    'etc/hosts.tab': `${'a'.repeat(11)}:d:library:h:10.0.0.1\n${'b'.repeat(12)}:d:library:h:10.0.0.1\n`,
  });
  const r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.deepEqual(instances(r), [inst('a'.repeat(11))]);
});

test('fast: 2000 peers in well under a second', (t) => {
  const root = tmp(t);
  const lines = Array.from({ length: 2000 }, (_, i) => `host${i}:dom:library:host${i}.example.edu:10.0.${i >> 8}.${i & 255}\n`);
  write(root, { 'etc/gatewayc.conf': `PerlSetVar lonTabDir ${root}/etc\n`, 'etc/hosts.tab': lines.join('') });
  const r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.wants.length, 2000);
  assert.ok(r.ms < 1000, `${r.ms} ms`);
  t.diagnostic(`2000 peers: ${r.ms} ms`);
});

/** LON-CAPA's own config file, as a LON-CAPA server has it (Apache directives around PerlSetVar lines). */
function loncapaConf(root: string): string {
  return [
    '# loncapa.conf (test copy)',
    '<IfModule mod_perl.c>',
    'PerlSetVar lonHostID msul1',
    'PerlSetVar lonDaemons /home/httpd/perl',
    'PerlSetVar lonSockDir /home/httpd/perl/sockets',
    `PerlSetVar lonTabDir ${root}/home/httpd/lonTabs`,
    'PerlSetVar lonCertificateDirectory /home/httpd/lonCerts',
    'PerlSetVar lonDocRoot /home/httpd/html',
    'PerlModule Apache::lonnet',
    '</IfModule>',
    '',
  ].join('\n');
}

test("a LON-CAPA server: its loncapa.conf included, group www, the spool in <lonSockDir>/delayed", (t) => {
  const root = tmp(t);
  write(root, {
    'etc/apache2/loncapa.conf': loncapaConf(root),
    'etc/gatewayc/gatewayc.conf': [
      'Include ../apache2/loncapa.conf',
      'PerlSetVar gatewaycSocketGroup www',
      'PerlSetVar gatewaycDelayedDir /home/httpd/perl/sockets/delayed',
      '',
    ].join('\n'),
    'home/httpd/lonTabs/hosts.tab': 'msul1:msu:library:a.example:10.0.0.1\nmsul2:msu:library:b.example:10.0.0.2\n',
  });
  const conf = path.join(root, 'etc/gatewayc/gatewayc.conf');
  const header = `# Written by gatewayc-generator from ${conf}\n`;
  const r = generate(root, conf);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.deepEqual(r.wants, [inst('msul2')], "LON-CAPA's lonHostID and lonTabDir");
  assert.equal(r.files.get(SOCKET), `${header}[Socket]\nListenStream=\nListenStream=/home/httpd/perl/sockets/%I\nSocketGroup=www\n`);
  assert.equal(r.files.get(GROUP), `${header}[Service]\nSupplementaryGroups=\nSupplementaryGroups=www\n`);
  // lonTabDir is under the test's root, not /home: only the sockets (and the spool in them)
  // and the certificates are opened.
  assert.equal(r.files.get(PATHS), `${header}[Service]\nProtectHome=tmpfs\nBindPaths= -/home/httpd/perl/sockets\nBindReadOnlyPaths= -/home/httpd/lonCerts\n`);
  assert.deepEqual(r.dirs, [
    'd /home/httpd/perl/sockets 2775 :gatewayc www -',
    'd /home/httpd/perl/sockets/delayed 2770 :gatewayc www -',
    'd /run/gatewayc/keys 2770 gatewayc www -',
  ]);
  assert.deepEqual([...r.files.keys()].sort(), [GROUP, PATHS, SOCKET].sort());

  const { settings } = settingsOf(root, conf);
  assert.deepEqual(Object.fromEntries(settings), {
    lonTabDir: `${root}/home/httpd/lonTabs`,
    lonSockDir: '/home/httpd/perl/sockets',
    gatewaycDelayedDir: '/home/httpd/perl/sockets/delayed',
    gatewaycControlSocket: '/run/gatewayc/control',
    gatewaycLocalKeyDir: '/run/gatewayc/keys',
    lonCertificateDirectory: '/home/httpd/lonCerts',
    lonHostID: 'msul1',
    gatewaycSocketGroup: 'www',
  });
});

test('the group: a number is taken as it is; a group that does not exist falls back to www-data, and says so', (t) => {
  const root = tmp(t);
  const conf = path.join(root, 'etc/gatewayc.conf');
  write(root, { 'etc/gatewayc.conf': 'PerlSetVar gatewaycSocketGroup 1001\n' });
  let r = generate(root, conf);
  assert.equal(r.stderr, '');
  assert.match(r.files.get(SOCKET) ?? '', /^SocketGroup=1001$/m);
  assert.match(r.files.get(GROUP) ?? '', /^SupplementaryGroups=1001$/m);
  assert.deepEqual(r.dirs, DEFAULT_DIRS.map((d) => d.replace('www-data', '1001')), "the package's directories get the group");

  write(root, { 'etc/gatewayc.conf': 'PerlSetVar gatewaycSocketGroup apache\n' });
  r = generate(root, conf);
  assert.match(r.stderr, /gatewaycSocketGroup apache: no such group in .*; using www-data/);
  assert.equal(r.files.get(SOCKET), undefined);
  assert.equal(r.files.get(GROUP), undefined);
  assert.deepEqual(r.dirs, DEFAULT_DIRS);
});

test('a configuration the daemon would refuse: every setting at its default, and a warning naming the file and line', (t) => {
  const root = tmp(t);
  const conf = path.join(root, 'etc/gatewayc.conf');
  write(root, {
    'etc/sockets.conf': 'PerlSetVar lonSockDir /home/httpd/perl/sockets\nPerlSetVar gatewaycSocketGroup www\n',
    'etc/loop.conf': 'Include gatewayc.conf\n',
    'etc/deep.conf': 'Include deep.conf\n',
    'etc/dir.d/x.conf': '\n',
    'etc/hosts.tab': 'msul2:msu:library:b.example:10.0.0.2\n',
  });
  // Each is refused by the daemon: src/config/conf.ts and settings.ts say so with the same place.
  const broken: [string, RegExp][] = [
    ['Include missing.conf', /gatewayc\.conf:3: cannot include .*missing\.conf/],
    ['PerlSetVar lonTabDir "/etc/gatewayc', /gatewayc\.conf:3: PerlSetVar lonTabDir: missing closing quote/],
    ['PerlSetVar lonTabDir "/etc" x', /gatewayc\.conf:3: PerlSetVar lonTabDir: unexpected text after the closing quote/],
    ['PerlSetVar lonTabDir', /gatewayc\.conf:3: PerlSetVar lonTabDir has no value/],
    ['PerlSetVar', /gatewayc\.conf:3: PerlSetVar needs a key and a value/],
    ['Include', /gatewayc\.conf:3: Include needs a path/],
    ['Include loop.conf', /loop\.conf:1: include cycle/],
    ['Include dir.d', /gatewayc\.conf:3: cannot include .*dir\.d: it is a directory/],
    ['Include */x.conf', /gatewayc\.conf:3: Include \*\/x\.conf: wildcards are only supported in the last path component/],
    ['Include nodir/*.conf', /gatewayc\.conf:3: cannot include .*nodir\/\*\.conf: cannot list/],
    ['PerlSetVar gatewaycSocketGroup "www data"', /gatewaycSocketGroup must be a group name or number/],
    ['PerlSetVar gatewaycDelayedDir ""', /gatewaycDelayedDir must be a path/],
    [`PerlSetVar lonSockDir /${'s'.repeat(105)}`, /lonSockDir is too long/],
    ['PerlSetVar lonnetPrivateKey ""', /lonnetPrivateKey must be a file name/],
  ];
  for (const [line, why] of broken) {
    fs.writeFileSync(conf, `Include sockets.conf\nPerlSetVar lonTabDir ${root}/etc\n${line}\n`);
    const r = generate(root, conf);
    assert.equal(r.status, 0, line);
    assert.match(r.stderr, why, line);
    assert.match(r.stderr, /the daemon will refuse this configuration; using the default settings\n$/, line);
    assert.deepEqual(r.notes, r.stderr.trim().split('\n').map((l) => l.replace(/^gatewayc-generator: /, '')), 'gatewayc-dirs.service says the same at each start');
    assert.deepEqual([r.wants, r.dirs, [...r.files.keys()]], [[], DEFAULT_DIRS, []], `${line}: the defaults (lonTabDir /etc/gatewayc, no drop-ins)`);
  }
  // Nesting deeper than Apache's 16 levels, without a cycle.
  for (let i = 0; i < 17; i++) fs.writeFileSync(path.join(root, `etc/n${i}.conf`), `Include n${i + 1}.conf\n`);
  fs.writeFileSync(path.join(root, 'etc/n17.conf'), 'PerlSetVar lonTabDir /x\n');
  fs.writeFileSync(conf, 'Include n1.conf\n');
  const deep = generate(root, conf);
  assert.match(deep.stderr, /n16\.conf:1: includes nested more than 16 deep/);
  fs.writeFileSync(conf, 'Include n2.conf\n');
  assert.equal(generate(root, conf).stderr, '', '16 levels are fine');
});
