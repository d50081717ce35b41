// The generator (systemd/gatewayc-generator, sh and awk) reads the configuration on its
// own, at boot, without node. Here it is held to the daemon's reading on random config
// trees written to disk: where the daemon (readConf + buildSettings) accepts a
// configuration, the generator reads the same values for every key it uses; where the
// daemon refuses one, the generator says so and falls back to the defaults. Never the
// other way round: a configuration the daemon runs with must never lose its settings.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { readConf } from '../../src/config/conf';
import { ConfigError } from '../../src/config/diag';
import { fsSource } from '../../src/config/load';
import { buildSettings, Settings } from '../../src/config/settings';
import { forAll, Gen, Rng } from './gen';

const GENERATOR = path.resolve(__dirname, '../../../systemd/gatewayc-generator');
const FALLBACK = /the daemon will refuse this configuration; using the default settings/;

/** The files a tree may have, relative to its root; main.conf always exists. */
const FILES = ['etc/main.conf', 'etc/a.conf', 'etc/sub/b.conf', 'etc/conf.d/x.conf', 'etc/conf.d/y.conf', 'etc/conf.d/.h.conf'];
const PATH_KEYS = ['lonSockDir', 'gatewaycDelayedDir', 'lonTabDir', 'gatewaycControlSocket', 'gatewaycLocalKeyDir', 'lonCertificateDirectory'];
const CERT_KEYS = ['lonnetCertificateAuthority', 'lonnetCertificate', 'lonnetPrivateKey'];
const GROUPS = ['www', 'www-data'];

const ws = (r: Rng): string => r.weighted([[6, ' '], [3, '\t'], [1, '  \t'], [1, '\v'], [1, '\f']]);

function pathValue(r: Rng): string {
  return r.pick(['/abs/sockets', '/abs/sockets/', 'rel/dir', '../up/dir', './here', '/a//b/../c', '/', '.', '""', '"/with space"',
    '"/q\\"uote"', '/nb\u00a0sp', '"\u3000/ideographic"', '"/back\\\\slash"', '/trailing\\x', `/${'x'.repeat(104)}`, `/${'x'.repeat(106)}`, '/home/httpd/perl/sockets', '"rel quoted"']);
}

function value(r: Rng, key: string): string {
  if (PATH_KEYS.includes(key)) return pathValue(r);
  if (CERT_KEYS.includes(key)) return r.pick(['cert.pem', '/abs/key.pem', '../x.pem', '""', 'sub/c.pem']);
  if (key === 'gatewaycSocketGroup') return r.pick(['www', 'www-data', '1001', 'nosuch', '"bad name"', '_svc$', '9x', 'a.b-c', '"www"']);
  return r.pick(['msul1', '"host-2"', 'h.example']); // lonHostID: only ids the daemon accepts
}

function setLine(r: Rng): string {
  const key = r.pick([...PATH_KEYS, ...PATH_KEYS, ...CERT_KEYS, 'gatewaycSocketGroup', 'gatewaycSocketGroup', 'lonHostID']);
  const directive = r.weighted([[8, 'PerlSetVar'], [1, 'perlsetvar'], [1, 'PERLSETVAR']]);
  return `${r.bool(0.2) ? ws(r) : ''}${directive}${ws(r)}${key}${ws(r)}${value(r, key)}${r.bool(0.2) ? ws(r) : ''}`;
}

function includeLine(r: Rng, self: string): string {
  const directive = r.weighted([[4, 'Include'], [4, 'IncludeOptional'], [1, 'include'], [1, 'INCLUDEOPTIONAL']]);
  const dir = path.posix.dirname(self);
  const fromEtc = (p: string): string => path.posix.relative(dir, `etc/${p}`) || '.';
  const target = r.weighted<string>([
    [4, fromEtc('a.conf')],
    [4, fromEtc('sub/b.conf')],
    [4, fromEtc('conf.d/*.conf')],
    [2, fromEtc('conf.d/?.conf')],
    [1, fromEtc('conf.d/.*.conf')],
    [2, fromEtc('conf.d/*.none')],
    [2, fromEtc('missing.conf')],
    [2, '/nonexistent/dir/*.conf'],
    [1, '/nonexistent/file.conf'],
    [1, fromEtc('conf.d')],
    [1, fromEtc('main.conf')],
    [1, `"${fromEtc('a.conf')}"`],
    [1, `${fromEtc('sub')}/../a.conf`],
    [1, '*/x.conf'],
    [1, fromEtc('main.conf/x/*.conf')],
    [1, '"unterminated'],
  ]);
  return `${directive}${ws(r)}${target}`;
}

function otherLine(r: Rng): string {
  return r.pick(['', '   ', '# a comment "with quotes', '#Include nowhere.conf', '<IfModule mod_perl.c>', '</IfModule>',
    'PerlModule Apache::lonnet', 'ServerName example.org', 'PerlSetVar lonDaemons /home/httpd/perl', 'PerlSetVar', 'PerlSetVar lonSockDir',
    'PerlSetVar lonTabDir "unterminated', 'PerlSetVar lonTabDir "/x" y', 'Include', 'PerlSetVar\u00a0lonSockDir /nbsp']);
}

/** One file's text: lines, some split by continuations, LF or CRLF, sometimes a BOM. */
function fileText(r: Rng, size: number, self: string): string {
  const n = r.int(0, Math.max(1, Math.round(10 * size)));
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    let line = r.weighted<() => string>([[6, () => setLine(r)], [2, () => includeLine(r, self)], [2, () => otherLine(r)]])();
    if (r.bool(0.1) && line.includes(' ')) {
      const at = line.indexOf(' ', r.int(0, line.length - 1));
      if (at > 0) line = `${line.slice(0, at)}${r.pick(['\\', ' \\', '\\ '])}\n${line.slice(at)}`;
    }
    lines.push(line);
  }
  const eol = r.pick(['\n', '\r\n']);
  return `${r.bool(0.1) ? '\ufeff' : ''}${lines.join(eol)}${r.bool(0.7) ? eol : ''}`;
}

type Tree = Record<string, string>;
const treeGen: Gen<Tree> = (r, size) =>
  Object.fromEntries(FILES.filter((_f, i) => i === 0 || r.bool(0.6)).map((f) => [f, fileText(r, size, f)]));

function daemonReading(main: string): Settings | undefined {
  try {
    return buildSettings(readConf([main], fsSource), { requireHostId: false }).settings;
  } catch (err) {
    if (err instanceof ConfigError) return undefined;
    throw err;
  }
}

test("the generator reads a configuration as the daemon does, or falls back to the defaults where the daemon refuses it", (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-genprop-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const groupFile = path.join(root, 'group');
  fs.writeFileSync(groupFile, GROUPS.map((g, i) => `${g}:x:${1000 + i}:\n`).join(''));
  let accepted = 0;
  let refused = 0;
  forAll('generator-vs-daemon', treeGen, (tree) => {
    const dir = path.join(root, 't');
    fs.rmSync(dir, { recursive: true, force: true });
    for (const [f, text] of Object.entries(tree)) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), text);
    }
    fs.mkdirSync(path.join(dir, 'etc/conf.d/sub.conf'), { recursive: true }); // a directory a wildcard matches
    const main = path.join(dir, 'etc/main.conf');
    const r = spawnSync(GENERATOR, ['--settings'], { env: { PATH: process.env.PATH, GATEWAYC_CONF: main, GATEWAYC_GROUP_FILE: groupFile }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const got = new Map(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const daemon = daemonReading(main);
    if (daemon === undefined) {
      refused++;
      assert.match(r.stderr, FALLBACK, 'the daemon refuses this configuration: the generator must say so');
      assert.equal(got.get('lonSockDir'), '/run/gatewayc/sockets');
      return;
    }
    accepted++;
    assert.doesNotMatch(r.stderr, FALLBACK, 'the daemon accepts this configuration: the generator must not fall back');
    const group = daemon.socketGroup === undefined ? 'www-data' : daemon.socketGroup;
    const expected: Record<string, string> = {
      lonTabDir: daemon.lonTabDir,
      lonSockDir: daemon.lonSockDir,
      gatewaycDelayedDir: daemon.delayedDir,
      gatewaycControlSocket: daemon.controlSocket,
      gatewaycLocalKeyDir: daemon.localKeyDir,
      lonCertificateDirectory: daemon.certDir,
      gatewaycSocketGroup: /^\d+$/.test(group) || GROUPS.includes(group) ? group : 'www-data',
    };
    if (daemon.lonHostID !== '') expected.lonHostID = daemon.lonHostID;
    for (const [key, want] of Object.entries(expected)) assert.equal(got.get(key), want, `${key}: generator said ${r.stdout} ${r.stderr}`);
  }, { runs: 150, show: (tree) => JSON.stringify(tree, null, 1) });
  t.diagnostic(`${accepted} configurations accepted by the daemon, ${refused} refused`);
  assert.ok(accepted > 25 && refused > 25, `both kinds are exercised: ${accepted} accepted, ${refused} refused`);
});
