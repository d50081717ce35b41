/**
 * Booted Debian containers for the system tests: root trees made by mmdebstrap and cached
 * (scripts/lib/roots.sh), the .deb built per release (scripts/build-deb), and a Container
 * that boots a fresh copy of a tree with systemd-nspawn, runs commands inside with
 * nsenter, and is always powered off and removed again, even when a test fails or the run
 * is interrupted. Needs root, systemd-nspawn, nsenter and mmdebstrap (see systemReady()).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export type Release = 'bookworm' | 'trixie';
export const RELEASES: readonly Release[] = ['bookworm', 'trixie'];
/** Debian's own numbers, as in the package versions (~deb12u1). */
export const DEBIAN_NUMBER: Record<Release, number> = { bookworm: 12, trixie: 13 };

export const REPO = path.resolve(__dirname, '..', '..', '..');
const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// Not under /tmp: a booted container mounts a fresh tmpfs over its /tmp (nspawn.md), and
// the trees are large enough to matter on a tmpfs /tmp.
const CONTAINER_PARENT = '/var/tmp';

export interface RunResult { code: number; stdout: string; stderr: string }
export interface RunOptions { input?: string; allowFail?: boolean; timeoutMs?: number; env?: NodeJS.ProcessEnv }

/**
 * Runs nspawn (the arguments after the container's name) in a cgroup of its own. On a host
 * without systemd (cgroup v1, as on these machines) nspawn puts a container's systemd under
 * "payload" in the caller's group — the same group for every container started from here:
 * two containers at once then share /payload/system.slice/gatewayc.service, and one
 * removing it while the other starts the unit fails that start ("Failed to spawn executor",
 * or 219/CGROUP). On a pure cgroup-v2 host neither hierarchy exists and this does nothing.
 */
const OWN_CGROUP = `
name=$1; shift
for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
  [ -w "$h/cgroup.procs" ] || continue
  mkdir -p "$h/gatewayc-tests/$name" && echo $$ > "$h/gatewayc-tests/$name/cgroup.procs"
done
exec "$@"
`;

export class CommandError extends Error {
  constructor(readonly cmd: string[], readonly result: RunResult) {
    super(`${cmd.join(' ')} exited with ${result.code}\n--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`);
  }
}

function tail(text: string, lines = 60): string {
  const all = text.trimEnd().split('\n');
  return (all.length > lines ? ['[...]', ...all.slice(-lines)] : all).join('\n');
}

/** Runs a host command; rejects with its output on a non-zero exit unless allowFail. */
export function run(cmd: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = cmd;
  if (file === undefined) throw new Error('run: empty command');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8') + (timedOut ? `\n[killed after ${opts.timeoutMs ?? 120_000} ms]` : '');
      const result = { code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr };
      if (result.code !== 0 && !opts.allowFail) reject(new CommandError(cmd, result));
      else resolve(result);
    });
    child.stdin.on('error', () => undefined); // a command that does not read its input
    child.stdin.end(opts.input ?? '');
  });
}

/** Prints one line of progress: what was just checked. */
export function step(what: string): void {
  process.stderr.write(`  \u2713 ${what}\n`);
}

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Why the system tests cannot run here, or undefined when they can. */
export function systemTestsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'system tests need Linux';
  if (process.getuid?.() !== 0) return 'system tests need root (mmdebstrap, systemd-nspawn, nsenter)';
  for (const tool of ['systemd-nspawn', 'nsenter', 'mmdebstrap', 'flock']) {
    if (!have(tool)) return `system tests need ${tool} (apt-get install systemd-container mmdebstrap)`;
  }
  return undefined;
}

export function cacheDir(): string {
  return process.env.GATEWAYC_CACHE || '/var/cache/gatewayc-dev';
}

/** The cached tar of a bootable minimal system of that release (built on first use). */
export async function runtimeRoot(release: Release): Promise<string> {
  const r = await run(['bash', path.join(REPO, 'scripts/lib/roots.sh'), 'runtime', release], { timeoutMs: 20 * 60_000 });
  return lastLine(r.stdout);
}

export interface BuildOptions {
  /** Debian version to build instead of the default one (a higher one for upgrades). */
  version?: string;
  /** Where the .deb goes (default dist/). */
  outdir?: string;
}

/** Runs scripts/build-deb; resolves with the path of the .deb. Its log goes to the cache dir. */
export async function buildDeb(release: Release, opts: BuildOptions = {}): Promise<string> {
  const cmd = [path.join(REPO, 'scripts/build-deb'), release];
  if (opts.version !== undefined) cmd.push('--version', opts.version);
  if (opts.outdir !== undefined) cmd.push('--outdir', opts.outdir);
  const log = path.join(cacheDir(), `build-deb-${release}${opts.version !== undefined ? `-${opts.version}` : ''}.log`);
  fs.mkdirSync(cacheDir(), { recursive: true });
  const r = await run(cmd, { timeoutMs: 30 * 60_000, allowFail: true });
  fs.writeFileSync(log, r.stderr);
  if (r.code !== 0) throw new CommandError(cmd, r);
  return lastLine(r.stdout);
}

function lastLine(text: string): string {
  const line = text.trim().split('\n').pop();
  if (!line) throw new Error('expected a path on standard output, got nothing');
  return line;
}

// ---------------------------------------------------------------------------------------
// Containers

/** Every container this process booted and has not removed yet. */
const live = new Set<Container>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // Last resort: whatever a test left running dies with this process.
  process.on('exit', () => {
    for (const c of live) c.destroySync();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const c of live) c.destroySync();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Process start time (clock ticks since boot), to be sure a pid still names our process. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) kids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return kids;
}

function commOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined; // gone meanwhile (nspawn's short-lived helpers)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface ExecOptions {
  input?: string;
  /** Run as this user (runuser inside the container). */
  user?: string;
  allowFail?: boolean;
  timeoutMs?: number;
}

export class Container {
  /** Host path of the container's / (the unpacked tree). */
  readonly root: string;
  private readonly dir: string;
  private nspawn: ChildProcess | undefined;
  private nspawnExited: Promise<void> = Promise.resolve();
  private exited = false;
  private inner: { pid: number; start: string } | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(readonly release: Release, readonly name: string, dir: string) {
    this.dir = dir;
    this.root = path.join(dir, 'root');
  }

  /** The boot log (the container's console). */
  get bootLog(): string {
    return path.join(this.dir, 'console.log');
  }

  /**
   * Unpacks a fresh tree of the release's cached runtime root and boots it; resolves when
   * `systemctl is-system-running --wait` says running (or degraded: the failed units are
   * printed). The machine name is also the container's host name.
   */
  static async boot(release: Release, name: string): Promise<Container> {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) throw new Error(`container name ${JSON.stringify(name)} is not a valid host name`);
    const tar = await runtimeRoot(release);
    installExitHooks();
    const c = new Container(release, name, fs.mkdtempSync(path.join(CONTAINER_PARENT, `gatewayc-${name}-`)));
    live.add(c);
    try {
      fs.mkdirSync(c.root);
      await run(['tar', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-xf', tar, '-C', c.root], { timeoutMs: 5 * 60_000 });
      // mmdebstrap copies the build machine's /etc/hostname, which would win over -M.
      fs.writeFileSync(path.join(c.root, 'etc/hostname'), `${name}\n`);
      await c.start();
      return c;
    } catch (err) {
      await c.poweroff();
      throw err;
    }
  }

  private async start(): Promise<void> {
    const log = fs.openSync(this.bootLog, 'a');
    // detached: an interrupt at the terminal reaches this process, which powers the
    // container off, rather than nspawn directly. No --private-network: the container
    // shares the host's loopback, where the tests' fake lond listens.
    const nspawn = ['systemd-nspawn', '--quiet', '-D', this.root, '--register=no', '--keep-unit', '-b', '--console=pipe', '-M', this.name];
    const child = spawn('sh', ['-c', OWN_CGROUP, 'sh', this.name, ...nspawn],
      { stdio: ['ignore', log, log], detached: true, env: { PATH: process.env.PATH ?? CONTAINER_PATH } });
    fs.closeSync(log);
    this.nspawn = child;
    this.nspawnExited = new Promise((resolve) => child.once('exit', () => {
      this.exited = true;
      resolve();
    }));
    const pid = child.pid;
    if (pid === undefined) throw new Error('systemd-nspawn did not start');

    // The container's PID 1 is nspawn's child; wait until it is systemd.
    const deadline = Date.now() + 60_000;
    while (this.inner === undefined) {
      if (this.exited) throw new Error(`systemd-nspawn exited during boot:\n${this.consoleTail()}`);
      if (Date.now() > deadline) throw new Error(`no container init after 60 s:\n${this.consoleTail()}`);
      for (const kid of childrenOf(pid)) {
        const start = startTime(kid);
        if (commOf(kid) === 'systemd' && start !== undefined) this.inner = { pid: kid, start };
      }
      if (this.inner === undefined) await sleep(50);
    }

    let state = '';
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`the container stopped during boot:\n${this.consoleTail()}`);
      const r = await this.exec(['systemctl', 'is-system-running', '--wait'], { allowFail: true, timeoutMs: Math.max(1000, deadline - Date.now()) });
      state = r.stdout.trim();
      if (state === 'running' || state === 'degraded') break;
      await sleep(100); // the bus is not up yet ("offline", "Failed to connect")
    }
    if (state === 'degraded') {
      const failed = await this.exec(['systemctl', '--failed', '--no-legend', '--plain'], { allowFail: true });
      process.stderr.write(`  ! ${this.name}: system degraded; failed units:\n${failed.stdout.replace(/^/gm, '      ')}\n`);
    } else if (state !== 'running') {
      throw new Error(`${this.name} did not finish booting (is-system-running: ${JSON.stringify(state)}):\n${this.consoleTail()}`);
    }
  }

  private consoleTail(): string {
    try {
      return tail(fs.readFileSync(this.bootLog, 'utf8'), 30);
    } catch {
      return '(no console log)';
    }
  }

  private innerAlive(): boolean {
    return this.inner !== undefined && startTime(this.inner.pid) === this.inner.start;
  }

  /** The pid of the container's init, as the host sees it. */
  get pid(): number {
    if (!this.inner || !this.innerAlive()) throw new Error(`${this.name} is not running`);
    return this.inner.pid;
  }

  /**
   * Host path of a path inside the running container (through /proc/<pid>/root), which
   * also reaches what is mounted inside (/run, /tmp): host-side clients connect to the
   * container's UNIX sockets this way.
   */
  hostPath(containerPath: string): string {
    return `/proc/${this.pid}/root${path.posix.resolve('/', containerPath)}`;
  }

  /**
   * Runs a command inside the container with a clean environment (nsenter -a would carry
   * the host's). Rejects with its output on a non-zero exit unless allowFail.
   */
  exec(cmd: string[], opts: ExecOptions = {}): Promise<RunResult> {
    const env = ['env', '-i', `PATH=${CONTAINER_PATH}`, 'LANG=C.UTF-8', 'SYSTEMD_PAGER=', 'SYSTEMD_COLORS=0', 'DEBIAN_FRONTEND=noninteractive'];
    const as = opts.user !== undefined ? ['runuser', '-u', opts.user, '--'] : [];
    const full = ['nsenter', '-t', String(this.pid), '-a', '--', ...env, ...as, ...cmd];
    return run(full, { input: opts.input, allowFail: opts.allowFail, timeoutMs: opts.timeoutMs }).catch((err: unknown) => {
      // Name the command as the test wrote it, not the nsenter wrapping.
      if (err instanceof CommandError) throw new CommandError([`[${this.name}]`, ...cmd], err.result);
      throw err;
    });
  }

  /** Copies a host file or directory into the container (running or not). */
  async copyIn(hostPath: string, containerPath: string): Promise<void> {
    const target = this.innerAlive() ? this.hostPath(containerPath) : path.join(this.root, containerPath);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.cpSync(hostPath, target, { recursive: true });
  }

  /** Reboots with systemctl reboot and waits until the container is up again. */
  async reboot(): Promise<void> {
    // nspawn without --keep-unit restarts on reboot only with -b and a reboot exit code;
    // simplest and the same for both releases: power off, then boot the same tree again.
    await this.shutdown();
    this.inner = undefined;
    this.exited = false;
    await this.start();
  }

  private async shutdown(): Promise<void> {
    if (this.nspawn === undefined || this.exited) return;
    if (this.innerAlive()) {
      await this.exec(['systemctl', 'poweroff'], { allowFail: true, timeoutMs: 10_000 }).catch(() => undefined);
    }
    const timeout = sleep(30_000).then(() => 'timeout' as const);
    if ((await Promise.race([this.nspawnExited.then(() => 'exited' as const), timeout])) === 'timeout') {
      // A clean stop did not happen: kill the container's init, which ends its whole
      // PID namespace, and nspawn with it. Only the pids this object recorded.
      if (this.innerAlive() && this.inner) process.kill(this.inner.pid, 'SIGKILL');
      if (await Promise.race([this.nspawnExited.then(() => false), sleep(5000).then(() => true)])) {
        if (!this.exited && this.nspawn.pid !== undefined) process.kill(this.nspawn.pid, 'SIGKILL');
        await this.nspawnExited;
      }
    }
  }

  /** Clean stop, then kill by the recorded pids if needed, then removes the tree. Idempotent. */
  poweroff(): Promise<void> {
    if (!this.stopping) {
      this.stopping = (async () => {
        try {
          await this.shutdown();
        } finally {
          fs.rmSync(this.dir, { recursive: true, force: true });
          live.delete(this);
        }
      })();
    }
    return this.stopping;
  }

  /** For exit handlers, which cannot wait: kill what we started and remove the tree. */
  destroySync(): void {
    try {
      if (this.innerAlive() && this.inner) process.kill(this.inner.pid, 'SIGKILL');
      if (!this.exited && this.nspawn?.pid !== undefined) process.kill(this.nspawn.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}
