// The delayed-message side of the soak: a writer that keeps putting messages into the
// spool as LON-CAPA does (one file per message, `<epoch>.<n>.<pid>.<cmd>.<peer>`), the
// spool made unwritable for a while, and hostile entries (a symlink, a FIFO, a directory,
// an oversized file) whose effect is recorded apart from the invariants: today's daemon is
// known to mishandle them (issue 11), and the soak reports what it sees.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Checker } from './checker';
import type { Rng } from './rng';
import { delayedContent } from './wire';

export const HOSTILE_KINDS = ['symlink', 'fifo', 'dir', 'oversized'] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

/** What one hostile entry did. Times are ms since the start of the run. */
export interface HostileOutcome {
  kind: HostileKind;
  peer: string;
  injectedAt: number;
  removedAt: number;
  /** The symlink's target or the oversized file reached the lond (bytes it got). */
  payloadBytes: number | null;
  /** A normal message written right after the entry, for the same peer. */
  canaryDeliveredAt: number | null;
  /** For a FIFO: a reader was blocked opening it when we cleaned up (a threadpool thread held). */
  readerBlocked: boolean;
  /** The entry was still in the spool when we removed it. */
  leftInSpool: boolean;
}

interface Tracked {
  outcome: HostileOutcome;
  role: 'payload' | 'canary';
}

export class SpoolWriter {
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private deferred: { name: string; content: string }[] = [];
  readonly hostile: HostileOutcome[] = [];
  private readonly tracked = new Map<string, Tracked>();
  writeFailures = 0;
  private unwritableMode: number | undefined;

  constructor(
    readonly dir: string,
    /** Outside the spool, for symlink targets. */
    private readonly outside: string,
    private readonly checker: Checker,
    private readonly rng: Rng,
    private readonly now: () => number,
    private readonly maxRequestBytes: number,
  ) {}

  /** One message every 50-350 ms for a peer from `ids()`. */
  start(ids: () => string[], say: (line: string) => void): void {
    const tick = (): void => {
      try {
        this.flushDeferred();
        const list = ids();
        if (list.length > 0) this.writeOne(this.rng.pick(list));
      } catch (err) {
        this.writeFailures++;
        say(`cannot write a delayed message: ${(err as Error).message}`);
      }
      this.timer = setTimeout(tick, this.rng.int(50, 350));
    };
    tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flushDeferred();
  }

  private name(peer: string, epoch = Math.floor(Date.now() / 1000)): string {
    return `${epoch}.${++this.seq}.${process.pid}.soak.${peer}`;
  }

  /** Written beside, then renamed in: the daemon never sees half a message. */
  private put(name: string, content: string | Buffer): boolean {
    const tmp = path.join(this.dir, `.${name}.tmp`);
    try {
      fs.writeFileSync(tmp, content, { mode: 0o644 });
      fs.renameSync(tmp, path.join(this.dir, name));
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM') throw err;
      fs.rmSync(tmp, { force: true });
      return false;
    }
  }

  writeOne(peer: string): void {
    const token = `d${this.seq + 1}`;
    const name = this.name(peer);
    const content = delayedContent(token, this.rng.chance(0.4));
    // Counted as written when it is in the spool: before the rename the daemon could see it.
    this.checker.delayedWrittenAt(token, peer, this.now());
    if (!this.put(name, content)) {
      this.writeFailures++;
      this.deferred.push({ name, content });
    }
  }

  private flushDeferred(): void {
    while (this.deferred.length > 0) {
      const d = this.deferred[0] as { name: string; content: string };
      if (!this.put(d.name, d.content)) return;
      this.deferred.shift();
    }
  }

  /** The spool directory unwritable for the daemon (mode 0555); `false` puts the mode back. */
  setUnwritable(on: boolean): void {
    if (on) {
      this.unwritableMode ??= fs.statSync(this.dir).mode & 0o7777;
      fs.chmodSync(this.dir, 0o555);
    } else if (this.unwritableMode !== undefined) {
      fs.chmodSync(this.dir, this.unwritableMode);
      this.unwritableMode = undefined;
      this.flushDeferred();
    }
  }

  /** A lond got a delayed message: the checker's, or one of the hostile probes'. */
  delivered(token: string, peer: string, bytes: number, t: number): void {
    const h = this.tracked.get(token);
    if (!h) {
      this.checker.delayedDeliveredAt(token, peer, t);
      return;
    }
    if (h.role === 'canary') h.outcome.canaryDeliveredAt ??= t;
    else h.outcome.payloadBytes = Math.max(h.outcome.payloadBytes ?? 0, bytes);
  }

  /**
   * Puts one hostile entry for `peer` in front of its queue (its name sorts first), a
   * normal message behind it, waits `holdMs`, then removes the entry again.
   */
  async hostileEntry(kind: HostileKind, peer: string, holdMs: number): Promise<HostileOutcome> {
    const n = ++this.seq;
    // LON-CAPA's names start with the epoch seconds: "1" sorts before all of them.
    const entry = path.join(this.dir, `1.${n}.hostile-${kind}.${peer}`);
    const outcome: HostileOutcome = { kind, peer, injectedAt: this.now(), removedAt: 0, payloadBytes: null, canaryDeliveredAt: null, readerBlocked: false, leftInSpool: false };
    this.hostile.push(outcome);
    const payload = `h${n}p`;
    this.tracked.set(payload, { outcome, role: 'payload' });
    switch (kind) {
      case 'symlink': {
        const target = path.join(this.outside, `target-${n}`);
        fs.writeFileSync(target, `soakd:${payload}:the target of a symlink in the spool\n`, { mode: 0o644 });
        fs.symlinkSync(target, entry);
        break;
      }
      case 'fifo':
        execFileSync('mkfifo', ['-m', '0644', entry]);
        break;
      case 'dir':
        fs.mkdirSync(entry, { mode: 0o755 });
        fs.writeFileSync(path.join(entry, 'inside'), 'soakd:never\n');
        break;
      case 'oversized': {
        // Over gatewaycMaxRequestBytes: a daemon that reads it whole sends a request it would refuse from a client.
        const head = Buffer.from(`soakd:${payload}:`, 'latin1');
        const body = Buffer.alloc(this.maxRequestBytes + 64 * 1024, 0x78);
        head.copy(body);
        body[body.length - 1] = 0x0a;
        fs.writeFileSync(`${entry}.tmp`, body, { mode: 0o644 });
        fs.renameSync(`${entry}.tmp`, entry);
        break;
      }
    }
    const canary = `h${n}c`;
    this.tracked.set(canary, { outcome, role: 'canary' });
    this.put(this.name(peer), delayedContent(canary, false));
    await new Promise((r) => setTimeout(r, holdMs));
    outcome.leftInSpool = exists(entry);
    if (kind === 'fifo') outcome.readerBlocked = releaseFifoReader(entry);
    fs.rmSync(entry, { recursive: true, force: true });
    outcome.removedAt = this.now();
    return outcome;
  }

  /** Files still waiting in the spool for the given peers (hostile leftovers not counted). */
  waiting(peers: ReadonlySet<string>): number {
    let n = 0;
    for (const name of safeReaddir(this.dir)) {
      if (name.startsWith('.') || name.startsWith('1.')) continue;
      const peer = name.slice(name.lastIndexOf('.') + 1);
      if (peers.has(peer)) n++;
    }
    return n;
  }
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * A reader blocked in open() on a FIFO lets a non-blocking open for writing succeed (with
 * no reader it fails with ENXIO). Closing it again gives that reader end-of-file, which
 * frees the thread it holds. Returns whether a reader was there.
 */
function releaseFifoReader(fifo: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return false;
  }
  fs.closeSync(fd);
  return true;
}
