/**
 * Time as the core sees it: the current time and one-shot timers. Injected so that the
 * peer's state machine can be driven by a fake clock in unit tests, deterministically.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`; timers never keep the process alive on their own. */
  after(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
