// How the cost of a parser grows with its input, measured so that a busy machine cannot
// fake a result: no absolute times, only ratios, and CPU time rather than wall time (a
// process that waits for a core is not charged for it). Each cost is the best of several
// batches, the batches of the two inputs interleaved so that both see the same state of
// the JIT and the heap. Linear code costs about `factor` times more on `factor` times the
// input; quadratic code about factor² times more.

export interface Scaling {
  /** CPU milliseconds of one run on the small input, and on the large one. */
  small: number;
  large: number;
  /** large / small. */
  ratio: number;
}

/** CPU milliseconds used by this process so far (every thread: the JIT and GC are work too). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU milliseconds of `reps` runs of `fn`, per run. */
function perRun(fn: () => void, reps: number): number {
  const t = cpuMs();
  for (let i = 0; i < reps; i++) fn();
  return (cpuMs() - t) / reps;
}

/**
 * The best per-run cost of each of `fns`, over `batches` interleaved batches of at least
 * `batchMs` each. `stopAfter` (per fn) stops measuring a function whose first run already
 * cost that much: super-linear code is not waited for.
 */
export function bestCosts(fns: (() => void)[], opts: { batches?: number; batchMs?: number; stopAfter?: (first: number[]) => number[] } = {}): number[] {
  const batches = opts.batches ?? 7;
  const batchMs = opts.batchMs ?? 15;
  const first: number[] = [];
  for (const fn of fns) {
    fn(); // warm up: lazy compilation, string flattening
    first.push(perRun(fn, 1));
  }
  const stop = opts.stopAfter?.(first) ?? fns.map(() => Infinity);
  const best = [...first];
  // CPU time is counted in ticks of a few ms at worst: make each batch long enough.
  const reps = first.map((f) => Math.max(1, Math.ceil(batchMs / Math.max(f, 0.001))));
  for (let b = 0; b < batches; b++) {
    fns.forEach((fn, i) => {
      if (first[i] > stop[i]) return;
      best[i] = Math.min(best[i], perRun(fn, reps[i]));
    });
  }
  return best;
}

/**
 * The cost ratio of `run(make(n * factor))` to `run(make(n))`. Inputs are built outside
 * the timing. Once one run of the large input has cost far more than `limit` small runs,
 * the measurement stops there.
 */
export function scaling<T>(make: (n: number) => T, run: (input: T) => void, n: number, opts: { factor?: number; limit?: number } = {}): Scaling {
  const factor = opts.factor ?? 10;
  const limit = opts.limit ?? 40;
  const smallInput = make(n);
  const largeInput = make(n * factor);
  const [small, large] = bestCosts([() => run(smallInput), () => run(largeInput)], {
    stopAfter: ([s]) => [Infinity, Math.max(s, 0.01) * limit * 20],
  });
  return { small, large, ratio: large / Math.max(small, 1e-6) };
}

/** An assertion message worth reading when the ratio is too high. */
export function describeScaling(what: string, s: Scaling, factor = 10): string {
  return `${what}: ${factor}× the input cost ${s.ratio.toFixed(1)}× the CPU time (${s.small.toFixed(3)} ms → ${s.large.toFixed(3)} ms); linear is ~${factor}×, quadratic ~${factor * factor}×`;
}
