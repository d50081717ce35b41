// Runs the fault schedule: each fault opens a window on the peers it touches (the
// checker excuses con_lost there, and only there), does its damage, undoes it, and closes
// the window. Whatever acts on the daemon itself (reloads, retry, SIGKILL and restart) runs
// one at a time.
import { execFile } from 'node:child_process';
import type { Checker } from './checker';
import type { SoakDaemon } from './daemon';
import type { Load } from './load';
import type { LondHost, LondSwitch } from './londs';
import { Rng } from './rng';
import type { FaultEvent, FaultKind } from './schedule';
import type { HostileKind, SpoolWriter } from './spool';
import type { World } from './world';

export interface ChaosContext {
  checker: Checker;
  daemon: SoakDaemon;
  londs: LondHost;
  spool: SpoolWriter;
  load: Load;
  world: World;
  now: () => number;
  /** Settings for the daemon's config file as the world stands. */
  settings: () => Record<string, string | number>;
  controlPath: string;
  /** gatewayctl beside the daemon under test (its control protocol is that daemon's). */
  gatewayctl: string;
  /** Fewer peers than this are never left in hosts.tab. */
  minPresent: number;
  restartDelayMs: number;
  reloadTimeoutMs: number;
  say: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const SWITCH: Partial<Record<FaultKind, LondSwitch>> = { 'lond-stall': 'stall', 'lond-half': 'half', 'lond-refuse': 'refuse', 'tls-cut': 'tlscut' };

export class Chaos {
  /** Faults injected, by kind. */
  readonly injected: Record<string, number> = {};
  /** What went otherwise than planned (a skipped fault, a failed retry), by description. */
  readonly notes: Record<string, number> = {};
  daemonKills = 0;
  crashes = 0;
  private daemonChain: Promise<unknown> = Promise.resolve();
  private readonly faulted = new Set<string>();
  private readonly hostileChain = new Map<string, Promise<unknown>>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private lastRemoved: string | undefined;

  constructor(private readonly c: ChaosContext) {}

  private note(what: string): void {
    this.notes[what] = (this.notes[what] ?? 0) + 1;
  }

  private count(kind: string): void {
    this.injected[kind] = (this.injected[kind] ?? 0) + 1;
  }

  /** Serialises what acts on the daemon process. */
  private withDaemon<T>(f: () => Promise<T>): Promise<T> {
    const p = this.daemonChain.then(f);
    this.daemonChain = p.catch(() => undefined);
    return p;
  }

  private track(p: Promise<void>): void {
    const q = p.catch((err: unknown) => {
      this.note('fault failed');
      this.c.say(`fault failed: ${err instanceof Error ? err.message : String(err)}`);
    });
    this.tasks.add(q);
    void q.finally(() => this.tasks.delete(q));
  }

  /** Starts every event at its time (ms after now). */
  schedule(events: readonly FaultEvent[]): void {
    for (const e of events) this.timers.push(setTimeout(() => this.track(this.run(e)), e.at));
  }

  /** Waits for every fault started so far to be undone. */
  async settle(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    while (this.tasks.size > 0) await Promise.all([...this.tasks]);
    await this.withDaemon(async () => undefined);
  }

  /** Peers a fault on one lond may pick: serving, not the hostile-spool probes, not already faulted. */
  private londTargets(): string[] {
    return this.c.world.present().filter((id) => this.c.world.get(id).role !== 'hostile' && !this.faulted.has(id));
  }

  private async run(e: FaultEvent): Promise<void> {
    const rng = new Rng(e.seed);
    switch (e.kind) {
      case 'lond-kill':
      case 'lond-stall':
      case 'lond-half':
      case 'lond-refuse':
      case 'tls-cut':
        return this.londFault(e, rng);
      case 'sessions-cut': {
        const targets = this.londTargets();
        if (targets.length === 0) return this.note('sessions-cut skipped: no peer free');
        const peer = rng.pick(targets);
        const w = this.c.checker.openFault(e.kind, [peer], this.c.now());
        this.count(e.kind);
        await this.c.londs.call({ op: 'cut', id: peer });
        this.c.checker.closeFault(w, this.c.now());
        return;
      }
      case 'client-abort': {
        const peers = this.c.world.present();
        if (peers.length === 0) return;
        this.count(e.kind);
        await this.c.load.aborters(rng.pick(peers), rng);
        return;
      }
      case 'client-noread': {
        const peers = this.c.world.present();
        if (peers.length === 0) return;
        this.count(e.kind);
        await this.c.load.nonReader(rng.pick(peers), rng, e.durationMs);
        return;
      }
      case 'reload':
        return this.withDaemon(() => this.reload(rng));
      case 'reload-keymode':
        return this.withDaemon(() => this.reloadKeymode());
      case 'retry':
        return this.withDaemon(() => this.retry(rng));
      case 'daemon-kill':
        return this.withDaemon(() => this.daemonKill());
      case 'spool-unwritable':
        this.count(e.kind);
        this.c.spool.setUnwritable(true);
        await sleep(e.durationMs);
        this.c.spool.setUnwritable(false);
        return;
      case 'hostile-symlink':
      case 'hostile-fifo':
      case 'hostile-dir':
      case 'hostile-oversized':
        return this.hostile(e, rng);
    }
  }

  private async londFault(e: FaultEvent, rng: Rng): Promise<void> {
    const targets = this.londTargets();
    if (targets.length === 0) return this.note(`${e.kind} skipped: no peer free`);
    const peer = rng.pick(targets);
    if (e.kind === 'tls-cut' && !this.c.world.certsOn) this.note('tls-cut while not in ssl key mode');
    this.faulted.add(peer);
    const w = this.c.checker.openFault(e.kind, [peer], this.c.now());
    this.count(e.kind);
    try {
      const what = SWITCH[e.kind];
      if (what === undefined) {
        await this.c.londs.call({ op: 'kill', id: peer });
        await sleep(e.durationMs);
        await this.c.londs.call({ op: 'restart', id: peer });
      } else {
        await this.c.londs.call({ op: 'switch', id: peer, what, on: true, seed: e.seed });
        // Refusals and cut TLS only show in handshakes: make the daemon open new sessions.
        if (what === 'refuse' || what === 'tlscut') await this.c.londs.call({ op: 'cut', id: peer });
        await sleep(e.durationMs);
        await this.c.londs.call({ op: 'switch', id: peer, what, on: false, seed: e.seed });
      }
    } finally {
      this.c.checker.closeFault(w, this.c.now());
      this.faulted.delete(peer);
    }
  }

  /** Writes the files and sends SIGHUP; says so when the daemon does not confirm. */
  private async hup(what: string): Promise<void> {
    const d = this.c.daemon;
    d.peers = this.c.world.hostsPeers();
    d.settings = this.c.settings();
    d.writeFiles();
    const r = await d.reload(this.c.reloadTimeoutMs);
    if (!r.ok) {
      this.note(`${what}: reload not confirmed`);
      this.c.say(`${what}: reload not confirmed (${r.msg})`);
    }
  }

  /** A reload that removes, adds and/or moves peers; unchanged peers must not notice. */
  private async reload(rng: Rng): Promise<void> {
    if (!this.c.daemon.running) return this.note('reload skipped: daemon not running');
    const w = this.c.world;
    const removable = w.ids(['base', 'spare']).filter((id) => w.get(id).present);
    const addable = w.ids(['base', 'spare']).filter((id) => !w.get(id).present);
    const movable = w.ids(['base', 'spare']).filter((id) => w.get(id).present && w.get(id).alternate !== undefined);
    const maybe = (list: string[]): string | undefined => (rng.chance(0.6) && list.length > 0 ? rng.pick(list) : undefined);
    const remove = w.inHosts().length > this.c.minPresent ? maybe(removable) : undefined;
    // Half the time the peer removed last comes back (an administrator undoing a mistake):
    // clients it still had must not take the new socket with them.
    const back = this.lastRemoved !== undefined && addable.includes(this.lastRemoved) && rng.chance(0.5) ? this.lastRemoved : undefined;
    const add = back ?? maybe(addable);
    const others = movable.filter((id) => id !== remove);
    let move = maybe(others);
    if (!remove && !add && !move && others.length > 0) move = rng.pick(others);
    this.count('reload');
    const t = this.c.now();
    const windows: number[] = [];
    if (remove) {
      this.count('reload: remove');
      windows.push(this.c.checker.openFault('reload-remove', [remove], t));
      this.lastRemoved = remove;
      const p = w.get(remove);
      p.serving = false;
      p.present = false;
      this.c.load.forget(remove);
    }
    if (move) {
      this.count('reload: move');
      windows.push(this.c.checker.openFault('reload-change', [move], t));
      const p = w.get(move);
      p.current = p.current === p.primary ? (p.alternate as string) : p.primary;
    }
    if (add) {
      this.count('reload: add');
      w.get(add).present = true;
    }
    w.changed();
    await this.hup('reload');
    if (add) w.get(add).serving = true;
    w.changed();
    this.c.load.syncPeers();
    for (const id of windows) this.c.checker.closeFault(id, this.c.now());
  }

  /** Certificates on or off: every peer changes key mode (ssl, or local/insecure) and reconnects. */
  private async reloadKeymode(): Promise<void> {
    if (!this.c.daemon.running) return this.note('reload-keymode skipped: daemon not running');
    this.count('reload-keymode');
    const w = this.c.checker.openFault('reload-keymode', this.c.world.inHosts(), this.c.now());
    this.c.world.certsOn = !this.c.world.certsOn;
    await this.hup('reload-keymode');
    this.c.checker.closeFault(w, this.c.now());
  }

  private async retry(rng: Rng): Promise<void> {
    if (!this.c.daemon.running) return this.note('retry skipped: daemon not running');
    const one = rng.chance(0.5);
    const peers = this.c.world.present();
    const args = ['--socket', this.c.controlPath, 'retry', ...(one && peers.length > 0 ? [rng.pick(peers)] : [])];
    this.count('retry');
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(process.execPath, [this.c.gatewayctl, ...args], { timeout: 10_000, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, out: `${stdout}${stderr}`.trim().slice(0, 200) });
      });
    });
    if (r.code !== 0) {
      this.note(`gatewayctl retry exit ${r.code}`);
      this.c.say(`gatewayctl ${args.slice(2).join(' ')}: exit ${r.code}: ${r.out}`);
    }
  }

  private async daemonKill(): Promise<void> {
    if (!this.c.daemon.running) return this.note('daemon-kill skipped: daemon not running');
    this.count('daemon-kill');
    this.daemonKills++;
    const w = this.c.checker.openFault('daemon-kill', this.c.world.inHosts(), this.c.now());
    await this.c.daemon.kill();
    // systemd's RestartSec=
    await sleep(this.c.restartDelayMs);
    await this.restart();
    this.c.checker.closeFault(w, this.c.now());
  }

  /** Starts the daemon again; a few tries, as systemd would, before giving up. */
  private async restart(): Promise<void> {
    const d = this.c.daemon;
    d.peers = this.c.world.hostsPeers();
    d.settings = this.c.settings();
    for (let attempt = 1; ; attempt++) {
      try {
        await d.start();
        return;
      } catch (err) {
        this.c.say(`daemon start #${d.starts} failed: ${(err as Error).message.split('\n')[0]}`);
        if (attempt >= 5) throw err;
        await sleep(this.c.restartDelayMs);
      }
    }
  }

  /** The daemon died on its own: a violation, and systemd's restart. */
  crashed(code: number | null, signal: string | null): void {
    this.crashes++;
    const t = this.c.now();
    this.c.checker.violation('daemon-exit', `start #${this.c.daemon.starts}`, '*', t, `the daemon exited on its own (code ${code}, signal ${signal})`);
    // Clients may see the cut before we see the exit: the window reaches back a second.
    const w = this.c.checker.openFault('daemon-exit', this.c.world.inHosts(), t, t - 1000);
    this.track(
      this.withDaemon(async () => {
        await sleep(this.c.restartDelayMs);
        await this.restart();
        this.c.checker.closeFault(w, this.c.now());
      }),
    );
  }

  private async hostile(e: FaultEvent, rng: Rng): Promise<void> {
    const kind = e.kind.slice('hostile-'.length) as HostileKind;
    const peer = rng.pick(this.c.world.ids(['hostile']));
    // One entry at a time per probe peer, or their canaries would blur.
    const prev = this.hostileChain.get(peer) ?? Promise.resolve();
    const next = prev.then(async () => {
      this.count(e.kind);
      await this.c.spool.hostileEntry(kind, peer, Math.max(3000, e.durationMs));
    });
    this.hostileChain.set(
      peer,
      next.catch(() => undefined),
    );
    await next;
  }

  /** After the chaos: every peer back in hosts.tab, every lond healthy, the load on all of them. */
  async restoreAll(): Promise<void> {
    await this.withDaemon(async () => {
      const w = this.c.world;
      let changed = false;
      for (const p of w.peers.values()) {
        if (!p.present) {
          p.present = true;
          changed = true;
        }
      }
      w.changed();
      if (changed && this.c.daemon.running) await this.hup('restore');
      for (const p of w.peers.values()) p.serving = true;
      w.changed();
      this.c.load.syncPeers();
    });
  }
}
