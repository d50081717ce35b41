import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const GENERATOR = path.resolve(__dirname, '../../../systemd/gatewayc-generator');
const PEERS = 'gatewayc.service.d/50-gatewayc-peers.conf';
const PATHS = 'gatewayc.service.d/50-gatewayc-paths.conf';
const SHORT_HOST = os.hostname().split('.')[0] as string;

interface Result {
  status: number | null;
  stderr: string;
  /** Units the generated peers drop-in makes gatewayc.service want, in order. */
  wants: string[];
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

/** Runs the generator as systemd does (three output directories) and collects what it wrote. */
function generate(root: string, conf: string, args?: string[]): Result {
  const out = path.join(root, 'out');
  fs.rmSync(out, { recursive: true, force: true });
  const started = Date.now();
  const r = spawnSync(GENERATOR, args ?? [out, path.join(root, 'early'), path.join(root, 'late')], {
    env: { PATH: process.env.PATH, GATEWAYC_CONF: conf },
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
  return { status: r.status, stderr: r.stderr, wants, files, ms };
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
      'IncludeOptional conf.d/*.conf',
      '<IfModule mod_perl.c>',
      '  PerlSetVar lonHostID \\',
      '     me',
      '</IfModule>',
      'PerlSetVar lonSockDir',
      'Include "loop.conf"',
      '',
    ].join('\n'),
    'etc/sub/first.conf': `PerlSetVar lonTabDir ${root}/wrong\nPerlSetVar lonHostID first\n`,
    'etc/conf.d/10-a.conf': 'PerlSetVar lonHostID a\n',
    'etc/conf.d/20-b.conf': 'PerlSetVar lonHostID b\n',
    'etc/conf.d/.hidden.conf': 'PerlSetVar lonHostID hidden\n',
    'etc/loop.conf': 'Include loop.conf\n',
    'tab dir/hosts.tab': 'me:d:library:h:10.0.0.1\nb:d:library:h:10.0.0.2\na:d:library:h:10.0.0.3\nfirst:d:library:h:10.0.0.4\n',
    'wrong/hosts.tab': 'wrong:d:library:h:10.0.0.1\n',
  });
  const r = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(r.status, 0, r.stderr);
  // lonHostID "me" (set last, across a continuation line) is skipped; "b" from the
  // include is not the final id, so it is a peer.
  assert.deepEqual(instances(r), [inst('a'), inst('b'), inst('first')]);
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
  const dropin = r.files.get('gatewayc@.socket.d/50-gatewayc-generator.conf') ?? '';
  assert.match(dropin, /^\[Socket\]\nListenStream=\nListenStream=\/srv\/gw%%1\/sockets\/%I\n$/m);
  assert.match(r.files.get(PATHS) ?? '', /^ReadWritePaths= -\/srv\/gw%%1\/sockets$/m);
  assert.doesNotMatch(r.files.get(PATHS) ?? '', /ProtectHome/);

  fs.writeFileSync(path.join(root, 'etc/gatewayc.conf'), `PerlSetVar lonTabDir ${root}/etc\nPerlSetVar lonSockDir /run/gatewayc/sockets//\n`);
  const d = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(d.files.size, 0, 'the default, however spelled, needs no drop-in');
  assert.equal(d.wants.length, 1);
});

test("LON-CAPA's own layout under /home opens /home read-only and the socket and spool paths read-write", (t) => {
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
  const service = r.files.get(PATHS) ?? '';
  assert.match(service, /^\[Service\]$/m);
  assert.match(service, /^ReadWritePaths= -\/home\/httpd\/sockets -\/home\/httpd\/sockets\/delayed -\/home\/httpd\/sockets$/m);
  assert.match(service, /^ProtectHome=read-only$/m);
  assert.match(r.files.get('gatewayc-control.socket.d/50-gatewayc-generator.conf') ?? '', /^ListenStream=\nListenStream=\/home\/httpd\/sockets\/gatewayc-control$/m);
  assert.match(r.files.get('gatewayc@.socket.d/50-gatewayc-generator.conf') ?? '', /^ListenStream=\/home\/httpd\/sockets\/%I$/m);
  assert.deepEqual(instances(r), [inst('msul1')]);

  // Only reading from /home (hosts.tab, certificates) is enough for read-only too.
  fs.writeFileSync(path.join(root, 'etc/gatewayc.conf'), `PerlSetVar lonTabDir ${root}/etc\nPerlSetVar lonCertificateDirectory /home/httpd/lonCerts\n`);
  const c = generate(root, path.join(root, 'etc/gatewayc.conf'));
  assert.equal(c.files.get(PATHS), `# Written by gatewayc-generator from ${root}/etc/gatewayc.conf\n[Service]\nProtectHome=read-only\n`);
});

test('an unusable lonSockDir makes no instances (the daemon then creates every socket)', (t) => {
  const root = tmp(t);
  for (const dir of ['relative/sockets', '"/with space"', '/back\\slash']) {
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
