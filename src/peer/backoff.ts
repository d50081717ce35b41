/**
 * Reconnect policy as a pure function of the attempt number, so the peer's state machine
 * stays free of arithmetic and tests can check the curve without timers.
 *
 * Exponential from `baseMs`, capped at `maxMs`, with "equal jitter": half of the delay is
 * fixed, the other half random. The fixed half keeps a flapping peer from being hammered;
 * the random half keeps a thousand peers that failed together (a network blip) from
 * reconnecting in lock-step.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  const half = exp / 2;
  return Math.round(half + random() * half);
}
