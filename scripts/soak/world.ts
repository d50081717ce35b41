// The soak's picture of the network: which peers exist, which are in hosts.tab, at which
// address, whether certificates are in force — from which config file and hosts.tab are
// written for every (re)start and reload, and which the load follows.
import * as path from 'node:path';
import type { PeerSpec } from '../bench/helper';
import type { Targets } from './load';
import type { LondSpec } from './londs';
import type { Rng } from './rng';

export type Role = 'base' | 'spare' | 'local' | 'hostile';

export interface PeerInfo {
  id: string;
  role: Role;
  primary: string;
  /** A second lond for this id: a reload can move the peer there. */
  alternate: string | undefined;
  current: string;
  /** In hosts.tab. */
  present: boolean;
  /** Open to the load (present, and the reload that added it is done). */
  serving: boolean;
  serviceMs: number;
  encryptAnswers: boolean;
}

export interface WorldShape {
  base: number;
  spares: number;
  sparesAtStart: number;
  hostile: number;
}

export class World implements Targets {
  readonly peers = new Map<string, PeerInfo>();
  certsOn: boolean;
  private servingCache: string[] | undefined;

  constructor(
    readonly dir: string,
    shape: WorldShape,
    rng: Rng,
    startSsl: boolean,
  ) {
    this.certsOn = startSsl;
    const add = (id: string, role: Role, primary: string, alternate: string | undefined, present: boolean, serviceMs: number): void => {
      this.peers.set(id, { id, role, primary, alternate, current: primary, present, serving: present, serviceMs, encryptAnswers: this.peers.size % 2 === 0 });
    };
    const two = (n: number): string => String(n).padStart(2, '0');
    // A third of the base peers answer at once, a third in 1-10 ms, a third in 10-50 ms.
    for (let i = 1; i <= shape.base; i++) {
      const third = Math.floor(((i - 1) * 3) / shape.base);
      const ms = third === 0 ? 0 : third === 1 ? rng.int(1, 10) : rng.int(10, 50);
      add(`p${two(i)}`, 'base', `127.0.0.${1 + i}`, `127.0.0.${101 + i}`, true, ms);
    }
    for (let i = 1; i <= shape.spares; i++) add(`s${two(i)}`, 'spare', `127.0.0.${60 + i}`, `127.0.0.${160 + i}`, i <= shape.sparesAtStart, rng.int(0, 50));
    for (let i = 1; i <= shape.hostile; i++) add(`h${two(i)}`, 'hostile', `127.0.0.${80 + i}`, undefined, true, rng.int(0, 5));
    // The local key mode is only for 127.0.0.1 itself.
    add('loc', 'local', '127.0.0.1', undefined, true, 0);
  }

  londSpecs(): LondSpec[] {
    const out: LondSpec[] = [];
    for (const p of this.peers.values()) {
      for (const address of [p.primary, p.alternate]) {
        if (address !== undefined) out.push({ id: p.id, address, serviceMs: p.serviceMs, encryptAnswers: p.encryptAnswers });
      }
    }
    return out;
  }

  ids(roles?: readonly Role[]): string[] {
    return [...this.peers.values()].filter((p) => !roles || roles.includes(p.role)).map((p) => p.id);
  }

  get(id: string): PeerInfo {
    const p = this.peers.get(id);
    if (!p) throw new Error(`no peer ${id}`);
    return p;
  }

  inHosts(): string[] {
    return [...this.peers.values()].filter((p) => p.present).map((p) => p.id);
  }

  hostsPeers(): PeerSpec[] {
    return [...this.peers.values()].filter((p) => p.present).map((p) => ({ id: p.id, address: p.current }));
  }

  changed(): void {
    this.servingCache = undefined;
  }

  // Targets

  present(): readonly string[] {
    this.servingCache ??= [...this.peers.values()].filter((p) => p.serving).map((p) => p.id);
    return this.servingCache;
  }

  isPresent(peer: string): boolean {
    return this.peers.get(peer)?.serving === true;
  }

  socketPath(peer: string): string {
    return path.join(this.dir, 'sock', peer);
  }
}
