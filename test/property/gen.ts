// A small seeded property-based testing kit (fast-check is not a dependency): random
// inputs from a deterministic generator, growing in size run by run, with a naive
// shrinker for sequences, and a failure message that names the seed to replay.
//
//   GATEWAYC_PROPERTY_SEED=<n>   replay (or explore) with another base seed
//   GATEWAYC_PROPERTY_RUNS=<n>   runs per property (default: each property's own)

/** xoshiro128** seeded by splitmix32: fast, reproducible, good enough for test inputs. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(readonly seed: number) {
    // splitmix32 spreads a small seed over the whole state (never all zero).
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next() | 1;
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** A uniform 32-bit unsigned integer (xoshiro128**). */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor((this.u32() / 2 ** 32) * (hi - lo + 1));
  }

  bool(p = 0.5): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** Picks by weight: [[weight, value], ...]. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((s, [w]) => s + w, 0);
    let x = this.int(0, total - 1);
    for (const [w, v] of choices) {
      if (x < w) return v;
      x -= w;
    }
    return (choices[choices.length - 1] as readonly [number, T])[1];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A generator: random value from an Rng, `size` (0..1) hints how big it may be. */
export type Gen<T> = (r: Rng, size: number) => T;

/** Up to `max` scaled by size, at least `min`. */
export function length(r: Rng, size: number, max: number, min = 0): number {
  return r.int(min, Math.max(min, Math.round(max * size)));
}

export const gen = {
  /** Bytes drawn from `alphabet` (weighted toward it) or anywhere in 0..255. */
  bytes(max: number, alphabet: readonly number[] = [], pAlphabet = 0.7): Gen<Buffer> {
    return (r, size) => {
      const n = length(r, size, max);
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i++) out[i] = alphabet.length > 0 && r.bool(pAlphabet) ? r.pick(alphabet) : r.int(0, 255);
      return out;
    };
  },
  /** A string of characters from `chars` (an array of strings, each one "character"). */
  string(chars: readonly string[], max: number, min = 0): Gen<string> {
    return (r, size) => {
      const n = length(r, size, max, min);
      let s = '';
      for (let i = 0; i < n; i++) s += r.pick(chars);
      return s;
    };
  },
  array<T>(g: Gen<T>, max: number, min = 0): Gen<T[]> {
    return (r, size) => Array.from({ length: length(r, size, max, min) }, () => g(r, size));
  },
  oneOf<T>(...gens: Gen<T>[]): Gen<T> {
    return (r, size) => r.pick(gens)(r, size);
  },
  constant<T>(v: T): Gen<T> {
    return () => v;
  },
};

/** Characters worth mixing into text inputs: ASCII, controls, multibyte, astral. */
export const ASCII_PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));
export const CONTROLS = ['\x00', '\x01', '\x07', '\t', '\n', '\r', '\x0b', '\x0c', '\x1b', '\x7f', '\u0085', '\u009f'];
export const UNICODE = ['é', 'ß', 'ü', 'Ω', '日', '本', '\u00a0', '\u2028', '\ufeff', '😀', '\ud800'];

/** Smaller versions of a sequence: halves, then one element fewer at each position. */
export function* shrinkSequence<T extends { length: number; slice(a: number, b?: number): T }>(v: T, concat: (a: T, b: T) => T): Iterable<T> {
  const n = v.length;
  if (n === 0) return;
  yield v.slice(0, 0);
  if (n > 1) {
    yield v.slice(0, n >> 1);
    yield v.slice(n >> 1);
  }
  for (let i = 0; i < Math.min(n, 64); i++) yield concat(v.slice(0, i), v.slice(i + 1));
}

export const shrinkBuffer = (b: Buffer): Iterable<Buffer> => shrinkSequence(b, (x, y) => Buffer.concat([x, y]));

export interface PropertyOptions<T> {
  /** How many random inputs (GATEWAYC_PROPERTY_RUNS overrides). */
  runs?: number;
  /** Smaller candidates of a failing input, tried greedily. */
  shrink?: (v: T) => Iterable<T>;
  /** How an input is shown in the failure message. */
  show?: (v: T) => string;
}

/** A stable number for a property name, so each property has its own default seed. */
function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

function defaultShow(v: unknown): string {
  const text = Buffer.isBuffer(v)
    ? `Buffer<${v.toString('hex')}>`
    : JSON.stringify(v, (_k, x: unknown) => (Buffer.isBuffer(x) ? `Buffer<${x.toString('hex')}>` : x));
  return text === undefined ? String(v) : text.length > 2000 ? `${text.slice(0, 2000)}… (${text.length} characters)` : text;
}

/**
 * Checks `prop` (which throws to fail) on `runs` inputs from `g`. The base seed comes from
 * GATEWAYC_PROPERTY_SEED or the property's name, so a run is reproducible; a failure
 * reports the seed, the run, the (shrunk) input and the property's error.
 */
export function forAll<T>(name: string, g: Gen<T>, prop: (v: T, r: Rng) => void, opts: PropertyOptions<T> = {}): void {
  const envSeed = process.env.GATEWAYC_PROPERTY_SEED;
  const base = envSeed !== undefined && /^\d+$/.test(envSeed) ? Number(envSeed) >>> 0 : hash(name);
  const envRuns = Number(process.env.GATEWAYC_PROPERTY_RUNS);
  const runs = Number.isInteger(envRuns) && envRuns > 0 ? envRuns : (opts.runs ?? 200);
  const show = opts.show ?? defaultShow;
  for (let run = 0; run < runs; run++) {
    const seed = (base + Math.imul(run, 0x9e3779b9)) >>> 0;
    const size = runs === 1 ? 1 : Math.min(1, 0.05 + run / (runs * 0.8));
    const input = g(new Rng(seed), size);
    const failure = attempt(prop, input, seed);
    if (failure === undefined) continue;
    let smallest = input;
    let error = failure;
    if (opts.shrink) {
      // Greedy: take the first smaller input that still fails, up to a fixed budget.
      let budget = 2000;
      let improved = true;
      while (improved && budget > 0) {
        improved = false;
        for (const candidate of opts.shrink(smallest)) {
          if (--budget <= 0) break;
          const e = attempt(prop, candidate, seed);
          if (e !== undefined) {
            smallest = candidate;
            error = e;
            improved = true;
            break;
          }
        }
      }
    }
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const err = new Error(
      `property "${name}" failed on run ${run + 1}/${runs} (base seed ${base}, run seed ${seed}; replay with GATEWAYC_PROPERTY_SEED=${base})\n` +
        `input${opts.shrink ? ' (shrunk)' : ''}: ${show(smallest)}\n${message}`,
    );
    (err as Error & { cause?: unknown }).cause = error;
    throw err;
  }
}

function attempt<T>(prop: (v: T, r: Rng) => void, input: T, seed: number): unknown {
  try {
    prop(input, new Rng(seed ^ 0x5bd1e995));
    return undefined;
  } catch (err) {
    return err ?? new Error('property threw a falsy value');
  }
}
