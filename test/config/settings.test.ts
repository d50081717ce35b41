import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ConfResult, ConfSource, readConf } from '../../src/config/conf';
import { ConfigError } from '../../src/config/diag';
import { KEYS, MAX_DURATION_SECONDS, Settings, buildSettings, editDistance } from '../../src/config/settings';

/** ConfResult from in-memory files (path → lines). */
function conf(files: Record<string, string[]>, order = Object.keys(files)): ConfResult {
  const src: ConfSource = {
    readFile(p) {
      if (!(p in files)) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
      return files[p].join('\n');
    },
    listDir() {
      throw Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' });
    },
  };
  return readConf(order, src);
}

/** One config file /etc/gatewayc/gatewayc.conf: line 1 sets lonHostID, then `lines` from line 2. */
const one = (...lines: string[]): ConfResult => conf({ '/etc/gatewayc/gatewayc.conf': ['PerlSetVar lonHostID msu1', ...lines] });

function settingsError(c: ConfResult, opts?: { requireHostId?: boolean }): ConfigError {
  try {
    buildSettings(c, opts);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

const DEFAULTS: Settings = {
  lonHostID: 'msu1',
  lonTabDir: '/etc/gatewayc',
  lonSockDir: '/run/gatewayc/sockets',
  londPort: 5663,
  delayedDir: '/var/spool/gatewayc/delayed',
  controlSocket: '/run/gatewayc/control',
  connectTimeoutMs: 10_000,
  handshakeTimeoutMs: 60_000,
  requestTimeoutMs: 300_000,
  maxAttempts: 5,
  maxSessions: 4,
  idleTimeoutMs: 300_000,
  maxRequestBytes: 4194304,
  maxAnswerBytes: 67108864,
  maxClientsPerPeer: 1024,
  maxQueuePerPeer: 1024,
  maxBufferedBytes: 268435456,
  retryMaxMs: 60_000,
  rescanIntervalMs: 60_000,
  shutdownTimeoutMs: 5_000,
  keyMode: 'auto',
  certDir: '/etc/gatewayc/certs',
  caFile: '/etc/gatewayc/certs/loncapaCA.pem',
  certFile: '/etc/gatewayc/certs/lonhostcert.pem',
  keyFile: '/etc/gatewayc/certs/lonhostkey.pem',
  allowInsecure: true,
  tlsPeerName: 'strict',
  localKeyDir: '/run/gatewayc/keys',
  logLevel: 'info',
  socketGroup: undefined,
};

test('defaults: only lonHostID set', () => {
  const { settings, warnings } = buildSettings(one());
  assert.deepEqual(settings, DEFAULTS);
  assert.deepEqual(warnings, []);
});

test('KEYS: one entry per Settings field, unique keys, documented; new keys start with gatewayc', () => {
  assert.deepEqual(KEYS.map((k) => k.field).sort(), Object.keys(DEFAULTS).sort());
  assert.equal(new Set(KEYS.map((k) => k.key)).size, KEYS.length);
  const lonCapaKeys = ['lonHostID', 'lonTabDir', 'lonSockDir', 'londPort', 'lonCertificateDirectory', 'lonnetCertificateAuthority', 'lonnetCertificate', 'lonnetPrivateKey', 'loncAllowInsecure'];
  for (const k of KEYS) {
    assert.ok(k.doc.length > 10, k.key);
    assert.ok(lonCapaKeys.includes(k.key) || k.key.startsWith('gatewayc'), k.key);
    assert.equal(k.kind === 'enum', k.choices !== undefined, k.key);
  }
  assert.equal(KEYS.find((k) => k.key === 'gatewaycMaxSessions')?.default, '4');
});

test('valid values are converted (table)', () => {
  const cases: [string, string, keyof Settings, unknown][] = [
    ['londPort', '1', 'londPort', 1],
    ['londPort', '65535', 'londPort', 65535],
    ['londPort', '05663', 'londPort', 5663],
    ['gatewaycConnectTimeout', '2.5', 'connectTimeoutMs', 2500],
    ['gatewaycConnectTimeout', '.25', 'connectTimeoutMs', 250],
    ['gatewaycConnectTimeout', '3.', 'connectTimeoutMs', 3000],
    ['gatewaycConnectTimeout', '0.001', 'connectTimeoutMs', 1],
    ['gatewaycRequestTimeout', String(MAX_DURATION_SECONDS), 'requestTimeoutMs', MAX_DURATION_SECONDS * 1000],
    ['gatewaycHandshakeTimeout', '1', 'handshakeTimeoutMs', 1000],
    ['gatewaycIdleTimeout', '0.5', 'idleTimeoutMs', 500],
    ['gatewaycRetryMax', '30', 'retryMaxMs', 30000],
    ['gatewaycRescanInterval', '7', 'rescanIntervalMs', 7000],
    ['gatewaycShutdownTimeout', '0.1', 'shutdownTimeoutMs', 100],
    ['gatewaycMaxAttempts', '1', 'maxAttempts', 1],
    ['gatewaycMaxSessions', '16', 'maxSessions', 16],
    ['gatewaycMaxRequestBytes', '100', 'maxRequestBytes', 100],
    ['gatewaycMaxAnswerBytes', '007', 'maxAnswerBytes', 7],
    ['gatewaycMaxClients', '3', 'maxClientsPerPeer', 3],
    ['gatewaycMaxQueue', '9', 'maxQueuePerPeer', 9],
    ['gatewaycKeyMode', 'ssl', 'keyMode', 'ssl'],
    ['gatewaycKeyMode', 'LOCAL', 'keyMode', 'local'],
    ['gatewaycKeyMode', 'Insecure', 'keyMode', 'insecure'],
    ['gatewaycLogLevel', 'DEBUG', 'logLevel', 'debug'],
    ['gatewaycLogLevel', 'trace', 'logLevel', 'trace'],
    ['gatewaycSocketGroup', 'www-data', 'socketGroup', 'www-data'],
    ['gatewaycSocketGroup', '33', 'socketGroup', '33'],
    ['lonHostID', 'msu-2.x_y', 'lonHostID', 'msu-2.x_y'],
    ['lonHostID', 'ü'.repeat(32), 'lonHostID', 'ü'.repeat(32)],
  ];
  for (const b of ['1', 'yes', 'YES', 'on', 'On', 'true', 'TRUE']) cases.push(['loncAllowInsecure', b, 'allowInsecure', true]);
  for (const b of ['0', 'no', 'No', 'off', 'OFF', 'false', 'False']) cases.push(['loncAllowInsecure', b, 'allowInsecure', false]);
  for (const [key, value, field, want] of cases) {
    const { settings } = buildSettings(one(`PerlSetVar ${key} ${value}`));
    assert.deepEqual(settings[field], want, `${key} ${value}`);
  }
});

test('bad values: ConfigError at the file:line that set them, saying what is accepted (table)', () => {
  const cases: [string, string, string][] = [
    ['gatewaycMaxSessions', 'four', 'must be a positive integer'],
    ['gatewaycMaxSessions', '0', 'must be a positive integer'],
    ['gatewaycMaxAttempts', '-1', 'must be a positive integer'],
    ['gatewaycMaxQueue', '1.5', 'must be a positive integer'],
    ['gatewaycMaxClients', '1e3', 'must be a positive integer'],
    ['gatewaycMaxRequestBytes', '99999999999999999999', 'must be a positive integer'],
    ['gatewaycMaxAnswerBytes', '""', 'must be a positive integer'],
    ['londPort', '0', 'must be a port number from 1 to 65535'],
    ['londPort', '65536', 'must be a port number from 1 to 65535'],
    ['londPort', '5663a', 'must be a port number from 1 to 65535'],
    ['londPort', '0x10', 'must be a port number from 1 to 65535'],
    ['gatewaycConnectTimeout', '0', 'must be a number of seconds greater than 0'],
    ['gatewaycConnectTimeout', '-1', 'must be a number of seconds greater than 0'],
    ['gatewaycRequestTimeout', '1e3', 'must be a number of seconds greater than 0'],
    ['gatewaycRequestTimeout', 'Infinity', 'must be a number of seconds greater than 0'],
    ['gatewaycIdleTimeout', '5m', 'must be a number of seconds greater than 0'],
    ['gatewaycHandshakeTimeout', '.', 'must be a number of seconds greater than 0'],
    ['gatewaycRetryMax', String(MAX_DURATION_SECONDS + 1), `must be at most ${MAX_DURATION_SECONDS} seconds`],
    ['gatewaycShutdownTimeout', '0.0001', 'must be at least 0.001 seconds'],
    ['loncAllowInsecure', 'maybe', 'must be one of 1/0, yes/no, on/off, true/false'],
    ['loncAllowInsecure', '2', 'must be one of 1/0, yes/no, on/off, true/false'],
    ['gatewaycKeyMode', 'tls', 'must be one of auto, ssl, local, insecure'],
    ['gatewaycLogLevel', 'verbose', 'must be one of fatal, error, warn, info, debug, trace'],
    ['gatewaycSocketGroup', 'a:b', 'must be a group name or number'],
    ['gatewaycSocketGroup', '""', 'must be a group name or number'],
    ['lonTabDir', '""', 'must be a path'],
    ['gatewaycDelayedDir', '""', 'must be a path'],
    ['lonnetPrivateKey', '""', 'must be a file name in lonCertificateDirectory or an absolute path'],
    ['lonHostID', 'a/b', 'must not contain "/"'],
    ['lonHostID', '..', 'must not be "." or ".."'],
    ['lonHostID', '"a b"', 'must not contain whitespace'],
    ['lonHostID', '""', 'is empty'],
    ['lonHostID', 'x'.repeat(65), 'is longer than 64 bytes'],
  ];
  for (const [key, value, what] of cases) {
    const e = settingsError(one('# comment', `PerlSetVar ${key} ${value}`));
    const shown = value.startsWith('"') ? value.slice(1, -1) : value;
    assert.equal(e.diag.file, '/etc/gatewayc/gatewayc.conf', `${key} ${value}`);
    assert.equal(e.diag.line, 3, `${key} ${value}`);
    assert.equal(e.diag.message, `${key} ${what}, got ${JSON.stringify(shown)}`);
  }
});

test('every key of a checked kind rejects junk (KEYS kinds match the parsing)', () => {
  for (const k of KEYS) {
    if (k.kind === 'path' || k.kind === 'certFile') continue;
    const e = settingsError(one(`PerlSetVar ${k.key} "no/t valid"`));
    assert.equal(e.diag.line, 2, k.key);
    assert.match(e.diag.message, new RegExp(`^${k.key} .*, got "no/t valid"$`), k.key);
  }
});

test('the contract example message', () => {
  const lines = ['PerlSetVar lonHostID msu1', '', '', '', '', '', 'PerlSetVar gatewaycMaxSessions four'];
  const e = settingsError(conf({ 'example.conf': lines }));
  assert.equal(e.message, 'example.conf:7: gatewaycMaxSessions must be a positive integer, got "four"');
});

test('the error names the later file that set the value, not an earlier one', () => {
  const c = conf({ '/a.conf': ['PerlSetVar lonHostID msu1', 'PerlSetVar londPort 1'], '/b.conf': ['', 'PerlSetVar londPort 70000'] });
  const e = settingsError(c);
  assert.equal(e.message, '/b.conf:2: londPort must be a port number from 1 to 65535, got "70000"');
});

test('lonHostID missing: error at the first config file with no line, unless not required', () => {
  const c = conf({ '/etc/gatewayc/gatewayc.conf': ['PerlSetVar lonTabDir /x'], '/etc/other.conf': ['PerlSetVar londPort 1'] });
  const e = settingsError(c);
  assert.equal(e.diag.file, '/etc/gatewayc/gatewayc.conf');
  assert.equal(e.diag.line, undefined);
  assert.match(e.diag.message, /^lonHostID is not set: add "PerlSetVar lonHostID <id>"/);
  const { settings } = buildSettings(c, { requireHostId: false });
  assert.equal(settings.lonHostID, '');
  assert.equal(settings.londPort, 1);
  // Not required does not mean anything goes.
  const bad = settingsError(conf({ '/g.conf': ['PerlSetVar lonHostID a/b'] }), { requireHostId: false });
  assert.equal(bad.diag.line, 1);
});

test('relative paths are resolved against the directory of the file that set them', () => {
  const c = conf({
    '/etc/gatewayc/gatewayc.conf': ['PerlSetVar lonHostID msu1', 'PerlSetVar lonTabDir tabs', 'Include sub/more.conf', 'PerlSetVar gatewaycControlSocket ../run/ctl'],
    '/etc/gatewayc/sub/more.conf': ['PerlSetVar lonSockDir ./sockets', 'PerlSetVar gatewaycDelayedDir /abs/delayed'],
  }, ['/etc/gatewayc/gatewayc.conf']);
  const { settings } = buildSettings(c);
  assert.equal(settings.lonTabDir, '/etc/gatewayc/tabs');
  assert.equal(settings.lonSockDir, '/etc/gatewayc/sub/sockets');
  assert.equal(settings.delayedDir, '/abs/delayed');
  assert.equal(settings.controlSocket, '/etc/run/ctl');

  const rel = conf({ 'example/g.conf': ['PerlSetVar lonHostID demo1', 'PerlSetVar lonTabDir .'] });
  const s = buildSettings(rel).settings;
  assert.ok(path.isAbsolute(s.lonTabDir));
  assert.equal(s.lonTabDir, path.resolve('example'));
});

test('certificate files: names in the cert dir, absolute paths kept; the cert dir itself follows the path rule', () => {
  const { settings } = buildSettings(one(
    'PerlSetVar lonCertificateDirectory certs',
    'PerlSetVar lonnetCertificate host.pem',
    'PerlSetVar lonnetPrivateKey /secure/key.pem',
  ));
  assert.equal(settings.certDir, '/etc/gatewayc/certs');
  assert.equal(settings.caFile, '/etc/gatewayc/certs/loncapaCA.pem');
  assert.equal(settings.certFile, '/etc/gatewayc/certs/host.pem');
  assert.equal(settings.keyFile, '/secure/key.pem');
  const other = buildSettings(one('PerlSetVar lonCertificateDirectory /home/httpd/lonCerts')).settings;
  assert.equal(other.caFile, '/home/httpd/lonCerts/loncapaCA.pem');
});

test('socket paths that can never fit in sun_path are errors at their line', () => {
  const long = '/' + 'd'.repeat(105);
  const e = settingsError(one(`PerlSetVar lonSockDir ${long}`));
  assert.equal(e.diag.line, 2);
  assert.match(e.diag.message, /^lonSockDir is too long: "<lonSockDir>\/<peer id>" must fit in a UNIX socket path of 107 bytes, got "/);
  // 104 bytes + "/x" = 106: still fits.
  assert.equal(buildSettings(one(`PerlSetVar lonSockDir /${'d'.repeat(103)}`)).settings.lonSockDir.length, 104);

  const c = settingsError(one('', '', `PerlSetVar gatewaycControlSocket /${'c'.repeat(107)}`));
  assert.equal(c.diag.line, 4);
  assert.match(c.diag.message, /^gatewaycControlSocket is too long for a UNIX socket path \(at most 107 bytes\)/);
  assert.equal(buildSettings(one(`PerlSetVar gatewaycControlSocket /${'c'.repeat(106)}`)).settings.controlSocket.length, 107);
});

test('unknown keys: gatewayc* warns (with a did-you-mean for near misses), LON-CAPA keys are ignored', () => {
  const { warnings } = buildSettings(one(
    'PerlSetVar gatewaycMaxSesions 4', //      2
    'PerlSetVar lonDaemons /home/httpd/perl', // 3: LON-CAPA's, ignored
    'PerlSetVar gatewaycFrobnicate 1', //      4
    'PerlSetVar lonhostid other', //           5: differs only in case
    'PerlSetVar GatewaycLoglevel debug', //    6
    'PerlSetVar lonExpire 86400', //           7: ignored
    'PerlSetVar gatewaycconnecttimeout 3', //  8
  ));
  assert.deepEqual(warnings.map((w) => [w.file, w.line, w.severity, w.message]), [
    ['/etc/gatewayc/gatewayc.conf', 2, 'warning', 'unknown key gatewaycMaxSesions (did you mean gatewaycMaxSessions?)'],
    ['/etc/gatewayc/gatewayc.conf', 4, 'warning', 'unknown key gatewaycFrobnicate'],
    ['/etc/gatewayc/gatewayc.conf', 5, 'warning', 'unknown key lonhostid (did you mean lonHostID? keys are case-sensitive)'],
    ['/etc/gatewayc/gatewayc.conf', 6, 'warning', 'unknown key GatewaycLoglevel (did you mean gatewaycLogLevel? keys are case-sensitive)'],
    ['/etc/gatewayc/gatewayc.conf', 8, 'warning', 'unknown key gatewaycconnecttimeout (did you mean gatewaycConnectTimeout? keys are case-sensitive)'],
  ]);
});

test('editDistance', () => {
  const cases: [string, string, number][] = [['', '', 0], ['abc', '', 3], ['kitten', 'sitting', 3], ['gatewaycMaxSesions', 'gatewaycMaxSessions', 1], ['ab', 'ba', 2]];
  for (const [a, b, d] of cases) {
    assert.equal(editDistance(a, b), d, `${a}/${b}`);
    assert.equal(editDistance(b, a), d, `${b}/${a}`);
  }
});
