import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log';
import type { DelayedSource } from './peer';

/** Orders spool names as LON-CAPA writes them (`<epoch>.<n>.<pid>.<cmd>.<peer>`): numbers numerically. */
const collator = new Intl.Collator('en', { numeric: true });

/**
 * Which peer a spool file is for: the longest known id that the name ends with after a
 * dot. Ids are matched literally (an id is not a pattern), and "longest" settles names
 * like `x.a.b` when both `b` and `a.b` are peers.
 */
export function ownerOf(name: string, ids: ReadonlySet<string>): string | undefined {
  // The leftmost dot whose suffix is a known id gives the longest id.
  for (let dot = name.indexOf('.', 1); dot >= 0; dot = name.indexOf('.', dot + 1)) {
    const suffix = name.slice(dot + 1);
    if (ids.has(suffix)) return suffix;
  }
  return undefined;
}

/**
 * The delayed-message spool: one file per message, read by name, removed after delivery.
 * The directory is watched (inotify via fs.watch) and rescanned periodically as a safety
 * net, because watchers miss events on some file systems and after the directory is
 * replaced.
 */
export class Spool implements DelayedSource {
  private byPeer = new Map<string, string[]>();
  private ids = new Set<string>();
  private watcher: fs.FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private scanQueued: NodeJS.Timeout | undefined;
  private problem = '';
  onFiles: (peerId: string) => void = () => undefined;

  constructor(
    public dir: string,
    private readonly log: Logger,
    private rescanMs: number,
  ) {}

  setPeers(ids: Iterable<string>): void {
    this.ids = new Set(ids);
    this.queueScan();
  }

  start(): void {
    this.watch();
    this.scan();
    this.rescanTimer = setInterval(() => {
      if (!this.watcher) this.watch();
      this.scan();
    }, this.rescanMs);
    this.rescanTimer.unref();
  }

  stop(): void {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.scanQueued) clearTimeout(this.scanQueued);
    this.watcher?.close();
    this.watcher = undefined;
  }

  reconfigure(dir: string, rescanMs: number): void {
    if (dir === this.dir && rescanMs === this.rescanMs) return;
    this.stop();
    this.dir = dir;
    this.rescanMs = rescanMs;
    this.byPeer.clear();
    this.start();
  }

  /** Number of waiting files for a peer (status). */
  backlog(peerId: string): number {
    return this.byPeer.get(peerId)?.length ?? 0;
  }

  /** Waiting files of a peer, oldest first (for `gatewayctl delayed`). */
  list(peerId?: string): { name: string; peer: string }[] {
    const out: { name: string; peer: string }[] = [];
    for (const [peer, names] of this.byPeer) {
      if (peerId && peer !== peerId) continue;
      for (const name of names) out.push({ name, peer });
    }
    return out;
  }

  next(peerId: string, after?: string): string | undefined {
    const names = this.byPeer.get(peerId);
    if (!names) return undefined;
    if (after === undefined) return names[0];
    return names.find((n) => collator.compare(n, after) > 0);
  }

  async read(name: string): Promise<Buffer | undefined> {
    let data: Buffer;
    try {
      data = await fs.promises.readFile(path.join(this.dir, name));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') {
        this.forget(name);
        return undefined;
      }
      throw new Error(`cannot read delayed message ${name}: ${e.code ?? e.message}`);
    }
    // One message per file: the first line, without its line ending (LON-CAPA writes one).
    const nl = data.indexOf(10);
    const line = nl >= 0 ? data.subarray(0, nl) : data;
    if (line.length === 0) {
      this.log.warn({ file: name }, 'delayed message file is empty: left in place');
      this.forget(name);
      return undefined;
    }
    return line;
  }

  async remove(name: string): Promise<void> {
    try {
      await fs.promises.unlink(path.join(this.dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.forget(name);
  }

  private forget(name: string): void {
    for (const [peer, names] of this.byPeer) {
      const i = names.indexOf(name);
      if (i >= 0) {
        names.splice(i, 1);
        if (names.length === 0) this.byPeer.delete(peer);
        return;
      }
    }
  }

  private watch(): void {
    this.unwatch();
    try {
      const w = fs.watch(this.dir, { persistent: false }, (_event, name) => {
        // An event naming the directory itself: it was removed or renamed, and the inotify
        // watch died with it. A recreated directory (often on the same inode number) needs
        // a new watch, which the rescan timer sets up.
        if (name !== null && String(name) === path.basename(this.dir)) this.unwatch(w);
        this.queueScan();
      });
      this.watcher = w;
      w.on('error', () => {
        this.unwatch(w);
        this.queueScan();
      });
    } catch {
      this.watcher = undefined; // reported by scan(); the rescan timer tries again
    }
  }

  private unwatch(w: fs.FSWatcher | undefined = this.watcher): void {
    w?.close();
    if (this.watcher === w) this.watcher = undefined;
  }

  /** Coalesces bursts of inotify events (a client writing many files) into one scan. */
  private queueScan(): void {
    if (this.scanQueued) return;
    this.scanQueued = setTimeout(() => {
      this.scanQueued = undefined;
      this.scan();
    }, 20);
  }

  scan(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (err) {
      const msg = `cannot read the delayed-message directory ${this.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      if (msg !== this.problem) this.log.error(msg);
      this.problem = msg;
      this.unwatch(); // whatever comes back at this path needs a new watch
      return;
    }
    if (this.problem) this.log.info(`delayed-message directory ${this.dir} is readable again`);
    this.problem = '';
    const next = new Map<string, string[]>();
    for (const name of names) {
      if (name.startsWith('.')) continue; // writers' temporary files
      const owner = ownerOf(name, this.ids);
      if (!owner) continue;
      let list = next.get(owner);
      if (!list) next.set(owner, (list = []));
      list.push(name);
    }
    const grown: string[] = [];
    for (const [peer, list] of next) {
      list.sort(collator.compare);
      const before = new Set(this.byPeer.get(peer));
      if (list.some((n) => !before.has(n))) grown.push(peer);
    }
    this.byPeer = next;
    for (const peer of grown) this.onFiles(peer);
  }
}
