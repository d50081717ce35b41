// Pure helpers for the benchmark: percentiles, medians, and the /proc parsing.

/** The p-th percentile (0–100) of the first n values, nearest-rank; NaN when n is 0. Sorts in place. */
export function percentile(values: Float64Array, n: number, p: number): number {
  if (n === 0) return NaN;
  const sorted = values.subarray(0, n).sort();
  const idx = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
  return sorted[idx] as number;
}

/** Median of the finite values; NaN when none is. Repeats are few, so a sort is fine. */
export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** utime + stime in clock ticks from the text of /proc/<pid>/stat. */
export function parseStatTicks(stat: string): number {
  // comm (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  return Number(rest[11]) + Number(rest[12]);
}

/** VmRSS in kB from the text of /proc/<pid>/status; NaN when absent (process gone). */
export function parseVmRssKb(status: string): number {
  const m = /^VmRSS:\s+([0-9]+) kB/m.exec(status);
  return m ? Number(m[1]) : NaN;
}

/** A growable array of doubles without per-sample allocation. */
export class Samples {
  values = new Float64Array(1 << 16);
  length = 0;

  push(v: number): void {
    if (this.length === this.values.length) {
      const next = new Float64Array(this.values.length * 2);
      next.set(this.values);
      this.values = next;
    }
    this.values[this.length++] = v;
  }

  clear(): void {
    this.length = 0;
  }

  percentile(p: number): number {
    return percentile(this.values, this.length, p);
  }
}

/** Fixed-width number for tables: '-' for NaN, else `digits` decimals. */
export function fmt(v: number | undefined, digits = 0): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return v.toFixed(digits);
}

/** Renders rows as a left-aligned first column and right-aligned others. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
