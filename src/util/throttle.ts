/**
 * A warning that fires at most once per interval, telling how many it swallowed since:
 * a flood of failing requests must not flood the journal too.
 */
export class ThrottledWarning {
  private lastAt = -Infinity;
  private silenced = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly emit: (more: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  hit(): void {
    const t = this.now();
    if (t - this.lastAt < this.intervalMs) {
      this.silenced++;
      return;
    }
    this.emit(this.silenced > 0 ? ` (${this.silenced} more since the last warning)` : '');
    this.lastAt = t;
    this.silenced = 0;
  }
}
