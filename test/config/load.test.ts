import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../src/config/diag';
import { loadAll } from '../../src/config/load';

const exampleDir = path.resolve(__dirname, '../../../example');

function tempTree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-config-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

function loadError(files: string[], opts?: { requireHostId?: boolean }): ConfigError {
  try {
    loadAll(files, opts);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

test('the bundled example: demo1 with peers demo2 and demo3, paths under example/', () => {
  // A relative path from wherever the tests run: the paths must not depend on the cwd.
  const conf = path.relative(process.cwd(), path.join(exampleDir, 'gatewayc.conf'));
  const loaded = loadAll([conf]);
  assert.equal(loaded.settings.lonHostID, 'demo1');
  assert.deepEqual(loaded.peers.map((p) => [p.id, p.address]), [['demo2', '127.0.0.2'], ['demo3', '127.0.0.3']]);
  assert.deepEqual(loaded.warnings, []);
  assert.equal(loaded.settings.lonTabDir, exampleDir);
  assert.equal(loaded.hostsFile, path.join(exampleDir, 'hosts.tab'));
  assert.equal(loaded.settings.lonSockDir, path.join(exampleDir, 'run/sockets'));
  assert.ok(path.isAbsolute(loaded.settings.controlSocket));
  assert.equal(loaded.settings.keyMode, 'insecure');
  assert.deepEqual(loaded.files, [conf]);
});

test('real files: includes, overrides from a second --config, warnings from every stage in order', () => {
  const dir = tempTree({
    'etc/gatewayc.conf': 'PerlSetVar lonHostID msu1\nPerlSetVar lonTabDir tab\nIncludeOptional conf.d/*.conf\nPerlSetVar gatewaycTypo 1\n',
    'etc/conf.d/10-port.conf': 'PerlSetVar londPort 6000\n',
    'etc/conf.d/20-sessions.conf': 'PerlSetVar gatewaycMaxSessions 2\n',
    'etc/tab/hosts.tab': 'msu1:msu:library:h1:10.0.0.1\nmsu2:msu:library:h2:10.0.0.2\nbroken\nmsu3:msu:access:h3.example.org:https:msu\n',
    'override.conf': 'PerlSetVar gatewaycMaxSessions 8\n',
  });
  try {
    const main = path.join(dir, 'etc/gatewayc.conf');
    const loaded = loadAll([main, path.join(dir, 'override.conf')]);
    assert.equal(loaded.settings.londPort, 6000);
    assert.equal(loaded.settings.maxSessions, 8);
    assert.equal(loaded.hostsFile, path.join(dir, 'etc/tab/hosts.tab'));
    assert.deepEqual(loaded.files, [main, path.join(dir, 'etc/conf.d/10-port.conf'), path.join(dir, 'etc/conf.d/20-sessions.conf'), path.join(dir, 'override.conf')]);
    assert.deepEqual(loaded.peers.map((p) => [p.id, p.address, p.line]), [['msu2', '10.0.0.2', 2], ['msu3', 'h3.example.org', 4]]);
    assert.deepEqual(loaded.warnings.map((w) => [w.file, w.line, w.severity]), [
      [main, 4, 'warning'],
      [loaded.hostsFile, 3, 'warning'],
    ]);
    assert.match(loaded.warnings[0].message, /^unknown key gatewaycTypo/);
    assert.match(loaded.warnings[1].message, /^malformed line skipped/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('hosts.tab ids that cannot become socket paths are skipped with a warning', () => {
  const long = 'p'.repeat(60);
  const dir = tempTree({
    'g.conf': `PerlSetVar lonHostID me\nPerlSetVar lonTabDir .\nPerlSetVar lonSockDir /run/${'s'.repeat(50)}\n`,
    'hosts.tab': `${long}:d:r:h:1.1.1.1\nok:d:r:h:1.1.1.2\n`,
  });
  try {
    const loaded = loadAll([path.join(dir, 'g.conf')]);
    assert.deepEqual(loaded.peers.map((p) => p.id), ['ok']);
    assert.equal(loaded.warnings.length, 1);
    assert.match(loaded.warnings[0].message, /UNIX socket path can be at most 107 bytes/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('no config file given', () => {
  const e = loadError([]);
  assert.equal(e.message, 'no config file given (use --config FILE)');
  assert.equal(e.diag.file, '');
});

test('a missing config file, a missing hosts.tab, a bad value: ConfigError naming the file', () => {
  const dir = tempTree({
    'set.conf': 'PerlSetVar lonHostID msu1\n\nPerlSetVar lonTabDir nothere\n',
    'default.conf': 'PerlSetVar lonHostID msu1\n',
    'bad.conf': 'PerlSetVar lonHostID msu1\nPerlSetVar lonTabDir .\nPerlSetVar gatewaycConnectTimeout soon\n',
    'hosts.tab': '',
  });
  try {
    const missing = path.join(dir, 'missing.conf');
    assert.equal(loadError([missing]).message, `${missing}: cannot read ${missing}: no such file or directory`);

    const hostsFile = path.join(dir, 'nothere/hosts.tab');
    const e = loadError([path.join(dir, 'set.conf')]);
    assert.equal(e.diag.file, hostsFile);
    assert.equal(e.diag.message, `cannot read ${hostsFile}: no such file or directory (lonTabDir is set at ${path.join(dir, 'set.conf')}:3)`);

    const b = loadError([path.join(dir, 'bad.conf')]);
    assert.equal(b.message, `${path.join(dir, 'bad.conf')}:3: gatewaycConnectTimeout must be a number of seconds greater than 0, got "soon"`);

    // requireHostId: false lets `gatewayctl check`-like callers load without an id.
    fs.writeFileSync(path.join(dir, 'noid.conf'), 'PerlSetVar lonTabDir .\n');
    assert.equal(loadAll([path.join(dir, 'noid.conf')], { requireHostId: false }).settings.lonHostID, '');
    assert.match(loadError([path.join(dir, 'noid.conf')]).message, /noid\.conf: lonHostID is not set/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing hosts.tab at the default lonTabDir says so', { skip: fs.existsSync('/etc/gatewayc/hosts.tab') }, () => {
  const dir = tempTree({ 'g.conf': 'PerlSetVar lonHostID msu1\n' });
  try {
    const e = loadError([path.join(dir, 'g.conf')]);
    assert.equal(e.diag.file, '/etc/gatewayc/hosts.tab');
    assert.match(e.diag.message, /^cannot read \/etc\/gatewayc\/hosts\.tab: .*\(lonTabDir is not set; that is its default\)$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
