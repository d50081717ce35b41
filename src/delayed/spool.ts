import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log';
import { Signal } from '../util/signal';
import { ThrottledWarning } from '../util/throttle';
import { oddKind, readEntry, SpoolBudget } from './entry';
import { FirstNames, SortedNames } from './sorted';

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

/** Where entries that are not deliverable messages are moved, inside the spool. */
export const REJECTED_DIR = 'rejected';

/** What reading one spool entry gave. */
export type SpoolRead =
  | { line: Buffer }
  /** Nothing to deliver now: gone, still being written, moved aside, or no memory for it. */
  | { skip: 'vanished' | 'incomplete' | 'rejected' | 'unreadable' | 'no-room' };

/** One entry as `gatewayctl delayed` shows it. */
export interface SpoolEntry {
  name: string;
  peer: string;
  size: number | null;
  mtime: number | null;
  /** Why it will not be delivered, for entries set aside; null for waiting messages. */
  rejected: string | null;
}

export interface SpoolOptions {
  dir: string;
  rescanMs: number;
  /** gatewaycMaxRequestBytes: a message is one request line. */
  maxMessageBytes: number;
  /** Bounds on what is held in memory (tests make them small; see INDEX_LIMIT and STUCK_KEPT). */
  limits?: { index?: number; stuck?: number };
}

/** Names from inotify handled one by one up to this many; a bigger burst gets a full scan. */
const EVENT_BATCH = 512;
/**
 * Names held in memory, all peers together: each peer's oldest, a fair share each. A name
 * costs about 600 bytes, so a spool of millions of files (any web-server process can make
 * them) would otherwise take the daemon past MemoryMax= again after every restart. The
 * rest wait on disk and are picked up by the scan after a peer's share is delivered.
 */
const INDEX_LIMIT = 20_000;
const MIN_SHARE = 64;
/** Entries listed by `gatewayctl delayed`, of each kind (waiting, set aside). */
export const LIST_LIMIT = 1000;
/** Reasons remembered for `gatewayctl delayed`, the latest ones. */
const REASONS_KEPT = 1000;
/**
 * Entries set aside but not movable (a directory the writer did not make writable for us
 * cannot change its parent) remembered by name, so they are not read again. Beyond this,
 * they are not remembered: scans skip them by their type, which readdir gives for free.
 */
const STUCK_KEPT = 10_000;
/** Entries a scan finds by type to be no message (directories, FIFOs...), set aside per scan at most. */
const ODD_PER_SCAN = 1000;


/**
 * The delayed-message spool: any process of the web server writes here, so every entry
 * is hostile until proven a message (entry.ts reads one). What is not a message is moved
 * into `rejected/`, logged once, listed by `gatewayctl delayed`, and never holds up the
 * entries behind it. Nothing here is ever written, only renamed and removed.
 *
 * The directory is watched (inotify via fs.watch: the names that changed are looked at
 * one by one) and rescanned periodically as a safety net, because watchers miss events
 * on some file systems and after the directory is replaced. Scans read the directory in
 * batches and keep only each peer's oldest names, sorted, so a backlog of millions of
 * files neither blocks the event loop, nor fills memory, nor makes each delivery cost a
 * pass over all of them.
 */
export class Spool {
  /** A peer has (new) files. */
  readonly filesFor = new Signal<string>();

  private opts: SpoolOptions;
  private byPeer = new Map<string, SortedNames>();
  private owner = new Map<string, string>();
  private ids = new Set<string>();
  /** Entries set aside this run that could not be moved (or not yet): never read again. */
  private stuck = new Map<string, string>();
  /** Why each entry was set aside this run (those moved as well as stuck ones). */
  private reasons = new Map<string, string>();
  /** Delivered but not removable: sent again only after a restart. */
  private deliveredKept = new Set<string>();
  /** Files of a peer known to be there but not held in memory (beyond its share). */
  private unindexed = new Map<string, number>();
  private watcher: fs.FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private scanQueued: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private scanAgain = false;
  private changed = new Set<string>();
  private changedOverflow = false;
  private problem = '';
  private running = false;
  private readonly unremembered = new ThrottledWarning(60_000, (more) =>
    this.log.warn({ event: 'delayed.rejected-many' }, `more than ${this.opts.limits?.stuck ?? STUCK_KEPT} spool entries are not messages and cannot be moved to ${REJECTED_DIR}/: the rest are skipped without being listed${more}`),
  );

  constructor(
    opts: SpoolOptions,
    private readonly log: Logger,
    private readonly budget?: SpoolBudget,
  ) {
    this.opts = { ...opts };
  }

  get dir(): string {
    return this.opts.dir;
  }

  setPeers(ids: Iterable<string>): void {
    this.ids = new Set(ids);
    this.queueScan(true);
  }

  start(): void {
    this.running = true;
    this.watch();
    void this.scan();
    this.rescanTimer = setInterval(() => {
      if (!this.watcher) this.watch();
      void this.scan();
    }, this.opts.rescanMs);
    this.rescanTimer.unref();
  }

  stop(): void {
    this.running = false;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.scanQueued) clearTimeout(this.scanQueued);
    this.rescanTimer = undefined;
    this.scanQueued = undefined;
    this.unwatch();
  }

  reconfigure(next: SpoolOptions): void {
    const moved = next.dir !== this.opts.dir || next.rescanMs !== this.opts.rescanMs;
    this.opts = { ...next };
    if (!moved) return;
    this.stop();
    this.byPeer.clear();
    this.owner.clear();
    this.stuck.clear();
    this.reasons.clear();
    this.deliveredKept.clear();
    this.unindexed.clear();
    this.start();
  }

  /** Number of waiting messages for a peer (status). */
  backlog(peerId: string): number {
    return (this.byPeer.get(peerId)?.size ?? 0) + (this.unindexed.get(peerId) ?? 0);
  }

  /** Names of one peer held in memory at most. */
  private share(): number {
    return Math.max(MIN_SHARE, Math.floor((this.opts.limits?.index ?? INDEX_LIMIT) / Math.max(1, this.ids.size)));
  }

  /** The oldest waiting message of a peer after `after` (oldest of all without it). */
  next(peerId: string, after?: string): string | undefined {
    return this.byPeer.get(peerId)?.after(after);
  }

  /**
   * Reads one message; entries that are not messages are set aside on the way. A message
   * read is charged to the budget (checked and charged before the bytes are allocated, so
   * many peers reading at once cannot overshoot it); the caller gives it back with
   * `release(line)` once the message is answered or given up.
   */
  async read(name: string): Promise<SpoolRead> {
    if (!this.owner.has(name)) return { skip: 'vanished' };
    const r = await readEntry(path.join(this.opts.dir, name), this.opts.maxMessageBytes, this.budget);
    if ('reject' in r) return this.reject(name, r.reject);
    if ('unreadable' in r) {
      this.log.warn({ event: 'delayed.unreadable', file: name, code: r.unreadable }, `cannot read delayed message ${name}: ${r.unreadable}; trying again later`);
      return { skip: 'unreadable' };
    }
    if ('skip' in r && r.skip === 'vanished') this.drop(name);
    return r;
  }

  /** A message read by read() is answered or given up: its bytes leave the budget. */
  release(line: Buffer): void {
    this.budget?.charge(-line.length);
  }

  /** Removes a delivered message. One that cannot be removed is not sent again by this run. */
  async remove(name: string): Promise<void> {
    try {
      await fs.promises.unlink(path.join(this.opts.dir, name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') {
        this.deliveredKept.add(name);
        this.log.error({ event: 'delayed.not-removed', file: name, code }, `delivered delayed message ${name} cannot be removed (${code ?? (err as Error).message}): it will be sent again after a restart`);
      }
    }
    this.drop(name);
  }

  /**
   * Waiting messages and entries set aside, oldest first per peer (for `gatewayctl
   * delayed`): at most LIST_LIMIT of each kind, and how many more there are.
   */
  async describe(peerId?: string): Promise<{ files: SpoolEntry[]; notListed: { waiting: number; setAside: number } }> {
    const out: SpoolEntry[] = [];
    const notListed = { waiting: 0, setAside: 0 };
    let waiting = 0;
    let setAside = 0;
    const statOf = async (file: string): Promise<{ size: number | null; mtime: number | null }> => {
      try {
        const st = await fs.promises.lstat(file);
        return { size: st.size, mtime: st.mtimeMs };
      } catch {
        return { size: null, mtime: null };
      }
    };
    for (const [peer, names] of this.byPeer) {
      if (peerId !== undefined && peer !== peerId) continue;
      for (const name of names.all()) {
        if (waiting++ < LIST_LIMIT) out.push({ name, peer, ...(await statOf(path.join(this.opts.dir, name))), rejected: null });
        else notListed.waiting++;
      }
    }
    for (const [peer, n] of this.unindexed) if (peerId === undefined || peer === peerId) notListed.waiting += n;
    for (const [name, reason] of this.stuck) {
      const peer = ownerOf(name, this.ids) ?? '';
      if (peerId !== undefined && peer !== peerId) continue;
      if (setAside++ < LIST_LIMIT) out.push({ name, peer, ...(await statOf(path.join(this.opts.dir, name))), rejected: reason });
      else notListed.setAside++;
    }
    const rejectedDir = path.join(this.opts.dir, REJECTED_DIR);
    try {
      const dir = await fs.promises.opendir(rejectedDir, { bufferSize: 256 });
      for await (const entry of dir) {
        const name = entry.name;
        const peer = ownerOf(name, this.ids) ?? ownerOf(name.replace(/~\d+$/, ''), this.ids) ?? '';
        if (peerId !== undefined && peer !== peerId) continue;
        if (setAside++ >= LIST_LIMIT) {
          notListed.setAside++;
          continue;
        }
        const reason = this.reasons.get(name) ?? 'set aside by an earlier run';
        out.push({ name: `${REJECTED_DIR}/${name}`, peer, ...(await statOf(path.join(rejectedDir, name))), rejected: reason });
      }
    } catch {
      // none set aside yet
    }
    return { files: out, notListed };
  }

  // ---- what the spool holds ----

  /**
   * Adds names inotify reported; a peer's share full, a name takes the place of a later
   * one or waits on disk. Returns the peers that got new ones.
   */
  private add(names: Iterable<[name: string, peer: string]>): Set<string> {
    const fresh = new Set<string>();
    const share = this.share();
    for (const [name, peer] of names) {
      if (this.owner.has(name) || this.stuck.has(name) || this.deliveredKept.has(name)) continue;
      let sorted = this.byPeer.get(peer);
      if (!sorted) this.byPeer.set(peer, (sorted = new SortedNames()));
      if (sorted.size >= share) {
        this.unindexed.set(peer, (this.unindexed.get(peer) ?? 0) + 1);
        if (!sorted.precedesLast(name)) continue;
        const out = sorted.removeLast() as string;
        this.owner.delete(out);
      }
      this.owner.set(name, peer);
      sorted.insert(name);
      fresh.add(peer);
    }
    return fresh;
  }

  /** A full scan's findings replace what was held: each peer's oldest, up to its share. */
  private replaceIndex(found: Map<string, FirstNames>): Set<string> {
    const fresh = new Set<string>();
    const byPeer = new Map<string, SortedNames>();
    const owner = new Map<string, string>();
    this.unindexed.clear();
    for (const [peer, first] of found) {
      // Delivered or found unmovable while the scan ran: not taken back in.
      const names = first.names().filter((n) => !this.stuck.has(n) && !this.deliveredKept.has(n));
      if (first.offered > names.length) this.unindexed.set(peer, first.offered - names.length);
      if (names.length === 0) continue;
      const sorted = new SortedNames();
      sorted.insertMany(names);
      byPeer.set(peer, sorted);
      for (const n of names) {
        owner.set(n, peer);
        if (this.owner.get(n) !== peer) fresh.add(peer);
      }
    }
    this.byPeer = byPeer;
    this.owner = owner;
    return fresh;
  }

  private drop(name: string): void {
    const peer = this.owner.get(name);
    if (peer === undefined) return;
    this.owner.delete(name);
    const list = this.byPeer.get(peer);
    list?.remove(name);
    if (list && list.size === 0) {
      this.byPeer.delete(peer);
      // Its share is delivered: the scan brings in the next ones waiting on disk.
      if (this.unindexed.has(peer)) this.queueScan(true);
    }
  }

  /**
   * Sets an entry aside: moved into rejected/ when the directory lets us (a rename, which
   * never follows a link), remembered for this run otherwise. Logged once either way.
   */
  private async reject(name: string, reason: string): Promise<SpoolRead> {
    this.drop(name);
    const target = await this.moveAside(name);
    if (target !== undefined) {
      this.reasons.set(target, reason);
      if (this.reasons.size > REASONS_KEPT) this.reasons.delete(this.reasons.keys().next().value as string);
      this.log.warn({ event: 'delayed.rejected', file: name, reason, movedTo: `${REJECTED_DIR}/${target}` }, `spool entry ${name} is not a deliverable message (${reason}): moved to ${REJECTED_DIR}/`);
    } else if (this.stuck.size < (this.opts.limits?.stuck ?? STUCK_KEPT)) {
      this.stuck.set(name, reason);
      this.log.warn({ event: 'delayed.rejected', file: name, reason }, `spool entry ${name} is not a deliverable message (${reason}): skipped (it cannot be moved to ${REJECTED_DIR}/)`);
    } else {
      this.unremembered.hit();
    }
    return { skip: 'rejected' };
  }

  private async moveAside(name: string): Promise<string | undefined> {
    const dir = path.join(this.opts.dir, REJECTED_DIR);
    try {
      await fs.promises.mkdir(dir, { mode: 0o750 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
    }
    for (let i = 0; i < 5; i++) {
      const target = i === 0 ? name : `${name}~${Date.now()}${i}`;
      try {
        await fs.promises.lstat(path.join(dir, target));
        continue; // taken: never replace what an earlier rejection left
      } catch {
        // free
      }
      try {
        await fs.promises.rename(path.join(this.opts.dir, name), path.join(dir, target));
        return target;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') return undefined;
      }
    }
    return undefined;
  }

  // ---- watching and scanning ----

  private watch(): void {
    this.unwatch();
    try {
      const w = fs.watch(this.opts.dir, { persistent: false }, (_event, name) => {
        const n = name === null ? undefined : String(name);
        // An event naming the directory itself: it was removed or renamed, and the inotify
        // watch died with it. A recreated directory (often on the same inode number) needs
        // a new watch, which the rescan timer sets up.
        if (n === path.basename(this.opts.dir)) this.unwatch(w);
        this.noteChange(n);
      });
      this.watcher = w;
      w.on('error', () => {
        this.unwatch(w);
        this.queueScan(true);
      });
    } catch {
      this.watcher = undefined; // reported by scan(); the rescan timer tries again
    }
  }

  private unwatch(w: fs.FSWatcher | undefined = this.watcher): void {
    w?.close();
    if (this.watcher === w) this.watcher = undefined;
  }

  private noteChange(name: string | undefined): void {
    if (name === undefined || this.changed.size >= EVENT_BATCH) this.changedOverflow = true;
    else this.changed.add(name);
    this.queueScan(false);
  }

  /** Coalesces bursts of events (a client writing many files) into one look. */
  private queueScan(full: boolean): void {
    if (full) this.changedOverflow = true;
    if (this.scanQueued || !this.running) return;
    this.scanQueued = setTimeout(() => {
      this.scanQueued = undefined;
      void this.scan();
    }, 20);
  }

  /** Looks at what changed: the names inotify gave, or the whole directory. */
  scan(): Promise<void> {
    if (this.scanning) {
      this.scanAgain = true;
      return this.scanning;
    }
    const full = this.changedOverflow || this.changed.size === 0;
    const names = [...this.changed];
    this.changed.clear();
    this.changedOverflow = false;
    this.scanning = (full ? this.fullScan() : this.partialScan(names)).finally(() => {
      this.scanning = undefined;
      if (this.scanAgain) {
        this.scanAgain = false;
        void this.scan();
      }
    });
    return this.scanning;
  }

  private async partialScan(names: string[]): Promise<void> {
    const found: [string, string][] = [];
    for (const name of names) {
      if (name.startsWith('.') || name === REJECTED_DIR) continue;
      const owner = ownerOf(name, this.ids);
      let exists = true;
      try {
        await fs.promises.lstat(path.join(this.opts.dir, name));
      } catch {
        exists = false;
      }
      if (!exists) {
        this.drop(name);
        this.stuck.delete(name);
        this.deliveredKept.delete(name);
      } else if (owner !== undefined) {
        found.push([name, owner]);
      }
    }
    for (const peer of this.add(found)) this.filesFor.emit(peer);
  }

  private async fullScan(): Promise<void> {
    const share = this.share();
    const found = new Map<string, FirstNames>();
    const present = new Set<string>(); // of the stuck and kept names
    // Not messages by their type: never indexed (an unmovable one must not take a place in
    // a peer's share again and again); some of them are set aside after the scan.
    const odd: [name: string, why: string][] = [];
    try {
      const dir = await fs.promises.opendir(this.opts.dir, { bufferSize: 256 });
      let n = 0;
      for await (const entry of dir) {
        const name = entry.name;
        if (this.stuck.has(name) || this.deliveredKept.has(name)) {
          present.add(name);
          continue;
        }
        if (name.startsWith('.') || name === REJECTED_DIR) continue;
        const owner = ownerOf(name, this.ids);
        if (owner === undefined) continue;
        const odder = oddKind(entry);
        if (odder !== undefined) {
          if (odd.length < ODD_PER_SCAN) odd.push([name, `not a regular file (${odder})`]);
          continue;
        }
        let first = found.get(owner);
        if (!first) found.set(owner, (first = new FirstNames(share)));
        first.offer(name);
        // A large directory: let the event loop breathe between slices.
        if (++n % 4096 === 0) await new Promise((r) => setImmediate(r));
      }
    } catch (err) {
      const msg = `cannot read the delayed-message directory ${this.opts.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      if (msg !== this.problem) this.log.error({ event: 'spool.unreadable', dir: this.opts.dir, code: (err as NodeJS.ErrnoException).code }, msg);
      this.problem = msg;
      this.unwatch(); // whatever comes back at this path needs a new watch
      return;
    }
    if (this.problem) this.log.info({ event: 'spool.readable', dir: this.opts.dir }, `delayed-message directory ${this.opts.dir} is readable again`);
    this.problem = '';
    for (const set of [this.stuck, this.deliveredKept] as const) {
      for (const name of [...set.keys()]) if (!present.has(name)) set.delete(name);
    }
    for (const peer of this.replaceIndex(found)) this.filesFor.emit(peer);
    for (const [name, why] of odd) await this.reject(name, why);
  }
}
