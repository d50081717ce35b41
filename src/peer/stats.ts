/**
 * Latencies of recent requests in a fixed ring, so percentiles cost nothing on the hot
 * path and memory stays flat however long the daemon runs.
 */
export class LatencyRing {
  private readonly samples: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(size = 1024) {
    this.samples = new Float64Array(size);
  }

  add(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    if (this.filled < this.samples.length) this.filled++;
  }

  /** The p-th percentile (0–100) of the recent samples, or undefined when there are none. */
  percentile(p: number): number | undefined {
    if (this.filled === 0) return undefined;
    const sorted = Array.from(this.samples.subarray(0, this.filled)).sort((a, b) => a - b);
    const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[idx];
  }
}
