// The fault schedule: which fault starts when and for how long, drawn from the seed before
// the run begins. Targets (which peer) are chosen when the fault starts, from the state the
// earlier faults left, with a random stream of the event's own (`seed`), so a replay with
// the same seed makes the same choices as long as the events run in the same order.
import { Rng } from './rng';

export const FAULT_KINDS = [
  'lond-kill',
  'lond-stall',
  'lond-half',
  'lond-refuse',
  'tls-cut',
  'sessions-cut',
  'client-abort',
  'client-noread',
  'reload',
  'reload-keymode',
  'retry',
  'daemon-kill',
  'spool-unwritable',
  'hostile-symlink',
  'hostile-fifo',
  'hostile-dir',
  'hostile-oversized',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultEvent {
  /** Milliseconds after the start of the chaos phase. */
  at: number;
  kind: FaultKind;
  durationMs: number;
  /** Seed of this event's own random choices (targets, sizes). */
  seed: number;
}

export interface ScheduleOptions {
  durationMs: number;
  /** Whether the run starts with certificates (ssl key mode); each reload-keymode flips it. */
  startSsl: boolean;
  hostile: boolean;
  daemonKills: number;
  keymodeFlips: number;
}

/** Per minute, and how long each lasts (ms); kinds placed separately have no rate. */
const RATES: Partial<Record<FaultKind, { perMin: number; dur: [number, number] }>> = {
  'lond-kill': { perMin: 3, dur: [1000, 6000] },
  'lond-stall': { perMin: 2, dur: [1000, 6000] },
  'lond-half': { perMin: 2, dur: [1000, 4000] },
  'lond-refuse': { perMin: 2, dur: [2000, 6000] },
  'tls-cut': { perMin: 2, dur: [2000, 5000] },
  'sessions-cut': { perMin: 3, dur: [0, 0] },
  'client-abort': { perMin: 6, dur: [0, 0] },
  'client-noread': { perMin: 1.5, dur: [3000, 10_000] },
  reload: { perMin: 2, dur: [0, 0] },
  retry: { perMin: 2, dur: [0, 0] },
  'spool-unwritable': { perMin: 1, dur: [2000, 6000] },
  'hostile-symlink': { perMin: 0.4, dur: [5000, 10_000] },
  'hostile-fifo': { perMin: 0.4, dur: [5000, 10_000] },
  'hostile-dir': { perMin: 0.4, dur: [5000, 10_000] },
  'hostile-oversized': { perMin: 0.4, dur: [5000, 10_000] },
};

const HOSTILE = new Set<FaultKind>(['hostile-symlink', 'hostile-fifo', 'hostile-dir', 'hostile-oversized']);

/** Nothing starts in the last stretch of the chaos phase, so every fault has ended by its close. */
const TAIL_MS = 2000;

/** Whether certificates (ssl key mode) are in force at `t`, given the schedule's key-mode flips. */
export function sslAt(events: readonly FaultEvent[], startSsl: boolean, t: number): boolean {
  let ssl = startSsl;
  for (const e of events) if (e.kind === 'reload-keymode' && e.at <= t) ssl = !ssl;
  return ssl;
}

export function buildSchedule(rng: Rng, o: ScheduleOptions): FaultEvent[] {
  const D = o.durationMs;
  const events: FaultEvent[] = [];
  const add = (at: number, kind: FaultKind, dur: number): void => {
    const durationMs = Math.max(0, Math.min(dur, D - TAIL_MS - at));
    events.push({ at: Math.round(at), kind, durationMs: Math.round(durationMs), seed: rng.int(0, 0xffffffff) });
  };
  // Key-mode flips spread over the run; daemon kills in its middle, apart from each other,
  // so that the last daemon runs long enough for its memory trend to mean something.
  for (let i = 0; i < o.keymodeFlips; i++) add(((i + 1) / (o.keymodeFlips + 1) + rng.range(-0.05, 0.05)) * D, 'reload-keymode', 0);
  const kills: number[] = [];
  for (let i = 0; i < o.daemonKills; i++) {
    let at = 0;
    for (let tries = 0; tries < 50; tries++) {
      at = rng.range(0.15, 0.7) * D;
      if (kills.every((k) => Math.abs(k - at) > 8000)) break;
    }
    kills.push(at);
    add(at, 'daemon-kill', 0);
  }
  const flips = events.filter((e) => e.kind === 'reload-keymode');
  const usable = (kind: FaultKind, at: number): boolean => kind !== 'tls-cut' || sslAt(flips, o.startSsl, at);
  const draw = (kind: FaultKind, lo: number, hi: number): number | undefined => {
    for (let tries = 0; tries < 50; tries++) {
      const at = rng.range(lo, hi);
      if (usable(kind, at)) return at;
    }
    return undefined;
  };
  for (const [k, r] of Object.entries(RATES) as [FaultKind, { perMin: number; dur: [number, number] }][]) {
    if (HOSTILE.has(k) && !o.hostile) continue;
    const dur = (): number => rng.range(r.dur[0], r.dur[1]);
    // Every kind at least once, even in a short run; then as many as its rate gives.
    const first = draw(k, 0.1 * D, 0.8 * D);
    if (first !== undefined) add(first, k, dur());
    const more = Math.round((r.perMin * D) / 60_000) - 1;
    for (let i = 0; i < more; i++) {
      const at = draw(k, 0.02 * D, D - TAIL_MS);
      if (at !== undefined) add(at, k, dur());
    }
  }
  return events.filter((e) => e.at < D - TAIL_MS).sort((a, b) => a.at - b.at);
}
