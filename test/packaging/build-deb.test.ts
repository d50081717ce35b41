// scripts/build-deb up to the point where it needs a release's archive: its arguments,
// the known releases and their version suffixes (--dry-run: no root, no network), and
// the errors when the keyring or the archive is not there. Those run as root, with a
// throw-away cache, against archives that cannot answer (a closed port on 127.0.0.1, a
// name under .invalid), so they take seconds and never build or remove a root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

const REPO = path.resolve(__dirname, '..', '..', '..');
const BUILD_DEB = path.join(REPO, 'scripts', 'build-deb');
const upstream = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const revision = /^gatewayc \([^)]*-([^)-]+)\)/.exec(fs.readFileSync(path.join(REPO, 'debian', 'changelog'), 'utf8'))?.[1];
const arch = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout.trim();

interface Result { code: number | null; stdout: string; stderr: string }

function buildDeb(args: string[], env: NodeJS.ProcessEnv = {}): Result {
  const r = spawnSync(BUILD_DEB, args, { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function dryRun(args: string[]): Record<string, string> {
  const r = buildDeb([...args, '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

test('the known releases: Debian 12 and 13 from the default archive, Ubuntu 24.04 from its own with universe', () => {
  assert.ok(revision, 'debian/changelog has a revision');
  assert.deepEqual(dryRun(['bookworm']), {
    release: 'bookworm', vendor: 'debian', number: '12', suffix: '~deb12u1', version: `${upstream}-${revision}~deb12u1`,
    mirror: 'default', keyring: 'default', components: 'main', package: `gatewayc_${upstream}-${revision}~deb12u1_${arch}.deb`,
  });
  const trixie = dryRun(['trixie']);
  assert.equal(trixie.suffix, '~deb13u1');
  assert.equal(trixie.version, `${upstream}-${revision}~deb13u1`);
  assert.deepEqual(dryRun(['noble']), {
    release: 'noble', vendor: 'ubuntu', number: '24.04', suffix: '~ubuntu24.04.1', version: `${upstream}-${revision}~ubuntu24.04.1`,
    mirror: 'http://archive.ubuntu.com/ubuntu', keyring: '/usr/share/keyrings/ubuntu-archive-keyring.gpg', components: 'main,universe',
    package: `gatewayc_${upstream}-${revision}~ubuntu24.04.1_${arch}.deb`,
  });
});

test('the versions order as they must: a later upstream or Debian revision wins; Debian 12 < 13', () => {
  const cmp = (a: string, op: string, b: string): boolean => spawnSync('dpkg', ['--compare-versions', a, op, b]).status === 0;
  assert.ok(cmp(`${upstream}-${revision}~deb12u1`, 'lt', `${upstream}-${revision}~deb13u1`));
  // ~ sorts before everything: the rebuild for a release is older than the plain revision
  assert.ok(cmp(`${upstream}-${revision}~ubuntu24.04.1`, 'lt', `${upstream}-${revision}`));
  assert.ok(cmp(`${upstream}-${revision}~ubuntu24.04.1`, 'lt', `${upstream}-${revision}~ubuntu24.04.2`));
});

test('any other release: with its suffix, and its archive, keyring and components as parameters', () => {
  assert.deepEqual(
    dryRun(['plucky', '--suffix', '~ubuntu25.04.1', '--mirror', 'http://mirror.example/ubuntu', '--keyring', '/etc/k.gpg', '--components', 'main,universe']),
    {
      release: 'plucky', vendor: 'unknown', number: 'unknown', suffix: '~ubuntu25.04.1', version: `${upstream}-${revision}~ubuntu25.04.1`,
      mirror: 'http://mirror.example/ubuntu', keyring: '/etc/k.gpg', components: 'main,universe', package: `gatewayc_${upstream}-${revision}~ubuntu25.04.1_${arch}.deb`,
    },
  );
  // a known release's archive can be overridden too (a local mirror)
  const mirrored = dryRun(['noble', '--mirror', 'http://mirror.example/ubuntu']);
  assert.equal(mirrored.mirror, 'http://mirror.example/ubuntu');
  assert.equal(mirrored.keyring, '/usr/share/keyrings/ubuntu-archive-keyring.gpg');
  // --version wins over the suffix
  assert.equal(dryRun(['trixie', '--version', '9.9-1~test1']).version, '9.9-1~test1');
  assert.equal(dryRun(['forky', '--version', '9.9-1']).package, `gatewayc_9.9-1_${arch}.deb`);
});

test('bad arguments: usage (exit 2) with the reason, nothing built', () => {
  const cases: [string[], RegExp][] = [
    [[], /no release given/],
    [['--dry-run'], /the release comes first/],
    [['Noble'], /'Noble' is not a release name/],
    [['forky'], /unknown release 'forky': give its version suffix \(--suffix/],
    [['noble', '--mirror'], /--mirror needs a value/],
    [['noble', '--mirror', 'archive.ubuntu.com'], /--mirror wants the archive's URL/],
    [['noble', '--components', 'main universe'], /--components wants a list/],
    [['noble', '--suffix', '~ubuntu 24'], /--suffix wants Debian version characters/],
    [['trixie', '--version', 'x y'], /'x y' is not a Debian version/],
    [['trixie', '--bogus'], /unknown argument '--bogus'/],
  ];
  for (const [args, reason] of cases) {
    const r = buildDeb(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, reason, args.join(' '));
    assert.match(r.stderr, /^usage: .*build-deb RELEASE/m);
    assert.match(r.stderr, /known releases: bookworm trixie noble/);
    assert.equal(r.stdout, '');
  }
});

const asRoot = { skip: process.getuid?.() === 0 ? false : 'build-deb checks the archive only as root (before that it refuses)' };

function withCache(fn: (cache: string) => void): void {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-build-deb-'));
  try {
    fn(cache);
    // Nothing was built or downloaded: at most the lock file of the root.
    assert.deepEqual(fs.readdirSync(cache).filter((f) => !f.startsWith('.lock-')), []);
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

test('an archive out of reach is one clear error naming the release, the URL and why, before any root is built', asRoot, () => {
  withCache((cache) => {
    const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
    const refused = buildDeb(['noble', '--mirror', 'http://127.0.0.1:9/ubuntu', '--keyring', fs.existsSync(keyring) ? keyring : BUILD_DEB], { GATEWAYC_CACHE: cache });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /^build-deb: the archive of noble is out of reach from this machine: http:\/\/127\.0\.0\.1:9\/ubuntu\/dists\/noble\/InRelease cannot be fetched \(.*(refused|connect).*\); build on a machine that reaches it, or name a mirror of it \(build-deb --mirror URL/m);
    assert.doesNotMatch(refused.stderr, /mmdebstrap|roots: building/, 'mmdebstrap never ran');
    assert.equal(refused.stdout, '');

    const unknownHost = buildDeb(['trixie', '--mirror', 'http://archive.invalid/debian'], { GATEWAYC_CACHE: cache });
    assert.equal(unknownHost.code, 1, unknownHost.stderr);
    assert.match(unknownHost.stderr, /^build-deb: the archive of trixie is out of reach from this machine: http:\/\/archive\.invalid\/debian\/dists\/trixie\/InRelease cannot be fetched \(.*archive\.invalid.*\)/m);
  });
});

test("a release's keyring that is not on this machine is named, with what to do", asRoot, () => {
  withCache((cache) => {
    const r = buildDeb(['noble', '--keyring', '/nonexistent/ubuntu-archive-keyring.gpg'], { GATEWAYC_CACHE: cache });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^build-deb: the keyring of noble's archive, \/nonexistent\/ubuntu-archive-keyring\.gpg, is not there: install the vendor's keyring package \(ubuntu-keyring for Ubuntu\) or name the file/m);
  });
});
