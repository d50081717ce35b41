/**
 * The README's first command as a new user runs it (issue 13), on a fresh Debian 12
 * (nodejs 18.20) and 13 (nodejs 20.19) that have only the distribution's nodejs, npm, git
 * and ca-certificates, installed as `apt install` does (scripts/lib/roots.sh: the user
 * root): a clone of this checkout's committed HEAD, `npm ci`, then `npm run demo` in the
 * background, `gatewayctl send demo2 ping` and `send demo3 encrypt:echo:hello` answered
 * as the README says, and Ctrl-C (SIGINT to the demo's process group, as a terminal sends
 * it) stops everything: exit status 0, nothing of it left running.
 *
 * No boot is needed: systemd-nspawn runs the commands in the unpacked tree. npm ci uses
 * the host's network (the npm registry); the demo runs with --private-network, so its
 * fixed addresses (127.0.0.2/3:15663) meet nothing of the host's, and both releases can
 * run at once. Debian's nodejs has no OpenSSL IDEA: the demo's example lond uses the test
 * side's plain IDEA there (test/support/idea-plain.ts).
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cacheDir, DEBIAN_NUMBER, Release, RELEASES, REPO, run, step, systemTestsUnavailable } from './harness';

const unavailable = systemTestsUnavailable() ?? (fs.existsSync(path.join(REPO, '.git')) ? undefined : 'the demo test clones this checkout, which is not a git checkout');
const HOME = '/home/demo';
const CHECKOUT = `${HOME}/gatewayc`;
const CTL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const seconds = (t0: number): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

/** The cached tar of the release's user root (built on first use). */
async function userRoot(release: Release): Promise<string> {
  const r = await run(['bash', path.join(REPO, 'scripts/lib/roots.sh'), 'user', release], { timeoutMs: 30 * 60_000 });
  return r.stdout.trim().split('\n').pop() ?? assert.fail('roots.sh printed no path');
}

function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function readComm(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => statFields(p)?.[1] === String(pid));
}

/**
 * Inside the container, as its PID 1: starts `npm run demo` as a terminal starts a
 * foreground job (its own session and process group), waits for it, then reports what is
 * left of its process group and exits with npm's status. PID 1 ignores SIGINT, so Ctrl-C
 * reaches only the demo's group.
 */
const WRAPPER = `
setsid -w npm run demo </dev/null & pid=$!
wait $pid; code=$?
echo "[wrapper] npm run demo ended at $(date -u +%FT%T.%N)"
sleep 1
left=
for s in /proc/[0-9]*/stat; do
  line=$(cat "$s" 2>/dev/null) || continue
  rest=\${line##*") "}
  set -- $rest
  [ "$3" = "$pid" ] && [ "$1" != Z ] && left="$left \${s#/proc/}"
done
echo "demo exit status $code; left in its process group:\${left:- none}"
exit $code
`;

function releaseSuite(release: Release): void {
  const n = DEBIAN_NUMBER[release];
  const say = (what: string): void => step(`[${release}] ${what}`);
  let dir = '';
  let root = '';
  let demo: ChildProcess | undefined;
  let demoExited: Promise<number | null> = Promise.resolve(null);
  let output = '';
  let inner: number | undefined; // the container's PID 1 (the wrapper), host pid

  const nspawn = (args: string[]): string[] => ['systemd-nspawn', '--quiet', '-D', root, '--register=no', '--keep-unit', '--console=pipe', ...args];
  const asUser = ['-u', 'demo', `--chdir=${CHECKOUT}`, `--setenv=HOME=${HOME}`, '--setenv=LANG=C.UTF-8'];
  /** A command the user types in another terminal, in the running demo's container. */
  const other = async (cmd: string): Promise<{ code: number; out: string }> => {
    if (inner === undefined) throw new Error('the demo is not running');
    const uid = fs.readFileSync(path.join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('demo:'))?.split(':')[2] ?? '1000';
    const r = await run(['nsenter', '-t', String(inner), '-a', '-S', uid, '-G', uid, '--', 'env', '-i', `PATH=${CTL_PATH}`, `HOME=${HOME}`, 'LANG=C.UTF-8', 'sh', '-c', `cd ${CHECKOUT} && ${cmd}`], { allowFail: true, timeoutMs: 60_000 });
    return { code: r.code, out: `${r.stdout}${r.stderr}`.trim() };
  };

  describe(`Debian ${n} (${release}): git clone, npm ci && npm run demo, as the README says`, { timeout: 40 * 60_000, concurrency: 1 }, () => {
    before(async () => {
      let t0 = Date.now();
      const tar = await userRoot(release);
      dir = fs.mkdtempSync(path.join('/var/tmp', `gatewayc-demo-${release}-`));
      root = path.join(dir, 'root');
      fs.mkdirSync(root);
      await run(['tar', '--numeric-owner', '-xf', tar, '-C', root], { timeoutMs: 5 * 60_000 });
      say(`fresh tree of the user root (nodejs, npm, git, ca-certificates) in ${seconds(t0)}`);
      t0 = Date.now();
      // npm inside must trust this machine's TLS set-up, as the host's does (notes/packaging.md).
      const cas = fs.existsSync('/usr/local/share/ca-certificates') ? fs.readdirSync('/usr/local/share/ca-certificates').filter((f) => f.endsWith('.crt')) : [];
      for (const f of cas) fs.copyFileSync(path.join('/usr/local/share/ca-certificates', f), path.join(root, 'usr/local/share/ca-certificates', f));
      await run(nspawn(['sh', '-ec', 'update-ca-certificates >/dev/null 2>&1; useradd -m -s /bin/sh demo']), { timeoutMs: 120_000 });
      const head = (await run(['git', '-C', REPO, 'rev-parse', 'HEAD'])).stdout.trim();
      await run(['git', 'clone', '--quiet', REPO, path.join(root, CHECKOUT)]);
      await run(['git', '-C', path.join(root, CHECKOUT), 'checkout', '--quiet', head]);
      const owner = fs.statSync(path.join(root, HOME));
      await run(['chown', '-R', `${owner.uid}:${owner.gid}`, path.join(root, CHECKOUT)]);
      say(`user demo, git clone of HEAD ${head.slice(0, 10)}, in ${seconds(t0)}`);
    });

    after(async () => {
      if (output) fs.writeFileSync(path.join(cacheDir(), `demo-run-${release}.log`), output);
      if (demo && demo.exitCode === null && demo.signalCode === null) {
        // Kill only what this test started: the container's init ends its whole PID namespace.
        if (inner !== undefined && statFields(inner)) process.kill(inner, 'SIGKILL');
        await Promise.race([demoExited, sleep(10_000)]);
      }
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it(`npm ci on Debian's nodejs ${release === 'bookworm' ? '18' : '20'} and npm`, async () => {
      const versions = await run(nspawn([...asUser, 'sh', '-c', 'node --version; npm --version']));
      const t0 = Date.now();
      const ci = await run(nspawn([...asUser, '--setenv=npm_config_cafile=/etc/ssl/certs/ca-certificates.crt', 'npm', 'ci']), { allowFail: true, timeoutMs: 20 * 60_000 });
      fs.writeFileSync(path.join(cacheDir(), `demo-npm-ci-${release}.log`), `${ci.stdout}${ci.stderr}`);
      assert.equal(ci.code, 0, `npm ci failed:\n${ci.stdout}${ci.stderr}`);
      const addon = fs.existsSync(path.join(root, CHECKOUT, 'node_modules/sd-notify/build/Release/notify.node'));
      say(`node ${versions.stdout.trim().split('\n').join(', npm ')}: npm ci exit 0 in ${seconds(t0)}; the optional sd-notify addon ${addon ? 'was built' : 'did not build (no libsystemd-dev), as expected, and npm ci went on'}`);
    });

    it('npm run demo in the background: gatewayctl send demo2 ping and send demo3 encrypt:echo:hello answer', async () => {
      const t0 = Date.now();
      const [file, ...args] = nspawn(['--private-network', ...asUser, 'sh', '-c', WRAPPER]);
      const child = spawn(file as string, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH },
      });
      demo = child;
      child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      demoExited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
      const nspawnPid = child.pid ?? assert.fail('systemd-nspawn did not start');

      // The wrapper (sh) is the container's PID 1, nspawn's child. nspawn may fork a helper
      // of its own first, which exits again: only the shell is the container.
      const isWrapper = (p: number): boolean => statFields(p)?.[0] !== 'Z' && readComm(p) === 'sh';
      while (inner === undefined && Date.now() - t0 < 30_000 && child.exitCode === null) {
        inner = childrenOf(nspawnPid).find(isWrapper);
        if (inner === undefined) await sleep(50);
      }
      assert.ok(inner !== undefined, `no container started:\n${output}`);

      // npm run demo builds first (tsc), then starts the example lond and the daemon.
      let answer = await other('./bin/gatewayctl --config example/gatewayc.conf send demo2 ping');
      while (answer.out !== 'demo2' && Date.now() - t0 < 5 * 60_000 && child.exitCode === null) {
        await sleep(1000);
        answer = await other('./bin/gatewayctl --config example/gatewayc.conf send demo2 ping');
      }
      assert.deepEqual(answer, { code: 0, out: 'demo2' }, `demo2 ping:\n${output}`);
      say(`npm run demo answers after ${seconds(t0)}: gatewayctl send demo2 ping -> ${answer.out}`);
      const hello = await other('./bin/gatewayctl --config example/gatewayc.conf send demo3 encrypt:echo:hello');
      assert.deepEqual(hello, { code: 0, out: 'hello' }, `demo3 encrypt:echo:hello:\n${output}`);
      await sleep(200);
      assert.match(output, /idea=plain/, "the example lond runs on the plain IDEA: Debian's OpenSSL has none");
      assert.match(output, /demo3: session \d+ request #\d+ echo 10 bytes encrypted/, 'the request travelled encrypted');
      say('gatewayctl send demo3 encrypt:echo:hello -> hello (encrypted on the wire; the example lond on the plain IDEA)');
    });

    it('Ctrl-C stops it cleanly: exit status 0, nothing left running', async () => {
      assert.ok(inner !== undefined && demo, 'the demo runs');
      const npm = childrenOf(inner).find((p) => statFields(p)?.[2] === String(p)) ?? assert.fail(`no npm process group in the container:\n${output}`);
      const t0 = Date.now();
      output += `[test] Ctrl-C at ${new Date(t0).toISOString()}\n`;
      process.kill(-npm, 'SIGINT');
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([demoExited, new Promise((r) => (timer = setTimeout(() => r('still running 60 s after Ctrl-C'), 60_000)))]);
      clearTimeout(timer);
      // npm answers Ctrl-C with its own exit status 130 whatever its script did (it
      // re-raises the SIGINT on itself; Debian's npm 9 and npm 11 alike), so the demo's
      // status is read from its last line; npm's may be 0 or 130, nothing else.
      assert.match(output, /^gatewayc demo: stopped \(gatewayc exit status 0, example lond exit status 0\)$/m, output);
      const npmStatus = /^demo exit status (\d+); left in its process group: (.*)$/m.exec(output) ?? assert.fail(`no report from the wrapper:\n${output}`);
      assert.equal(npmStatus[2], 'none', 'processes of the demo left running after Ctrl-C');
      assert.ok(npmStatus[1] === '0' || npmStatus[1] === '130', `npm run demo exit status ${npmStatus[1]}`);
      assert.equal(code, Number(npmStatus[1]), 'nspawn passes the status on');
      // What the user waits for is npm returning (the wrapper notes when, on the same clock);
      // the container's own teardown after it is the test's business.
      const ended = /^\[wrapper\] npm run demo ended at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\d*$/m.exec(output) ?? assert.fail(`no end time from the wrapper:\n${output}`);
      const stopMs = Date.parse(`${ended[1]}Z`) - t0;
      assert.ok(stopMs < 10_000, `npm run demo returned ${stopMs} ms after Ctrl-C`);
      say(`Ctrl-C: npm run demo returned ${(stopMs / 1000).toFixed(1)} s after it (gatewayc and the example lond exit status 0; npm's own ${npmStatus[1]}), nothing of it left running; the container was gone after ${seconds(t0)}`);
    });
  });
}

describe("the README's npm ci && npm run demo on Debian's own nodejs", { skip: unavailable ?? false, concurrency: process.env.GATEWAYC_SYSTEM_SERIAL ? 1 : true }, () => {
  for (const release of RELEASES) releaseSuite(release);
});
