// A small seeded random number generator: the soak's fault schedule and every choice made
// while it runs come from the printed seed, so a failing run can be replayed.
import * as crypto from 'node:crypto';

/** A fresh seed (32 bits, printed in decimal). */
export function randomSeed(): number {
  return crypto.randomBytes(4).readUInt32BE(0);
}

/** `--seed S`: a decimal number up to 2^32-1. */
export function parseSeed(text: string): number {
  if (!/^[0-9]{1,10}$/.test(text) || Number(text) > 0xffffffff) throw new Error(`--seed wants a whole number from 0 to 4294967295, not '${text}'`);
  return Number(text);
}

/** mulberry32: fast, 32 bits of state, plenty for choosing faults. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform whole number in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick: nothing to pick from');
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** An independent stream for one purpose, so that adding draws elsewhere does not shift it. */
  fork(label: string): Rng {
    let h = this.state ^ 0x9e3779b9;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return new Rng(h);
  }
}
