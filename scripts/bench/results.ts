// What the benchmark measures, as data: options, the request it sends, per-run records
// and the per-section results that the report and the JSON file are made of.
import type { IdeaResult } from './idea';
import type { LoadResult } from './loadgen';
import type { ProfileSummary } from './profile';
import { median } from './stats';

export const SECTIONS = ['echo', 'matrix', 'peers', 'idea', 'soak', 'profile'] as const;

export type Section = (typeof SECTIONS)[number];

export interface Options {
  quick: boolean;
  repeats: number;
  durationMs: number;
  warmupMs: number;
  soakS: number;
  sessions: number;
  profileS: number;
  profileClients: number;
  idleMs: number;
  clientCounts: number[];
  serviceTimes: number[];
  entry: string | undefined;
  preciseService: boolean;
  sections: Set<Section>;
}

export const PEER = 'benchpeer';

export const PEER_ADDRESS = '127.0.0.2';

export const PEER_COUNTS = [10, 100, 1000];

export const MODES = ['plain', 'encrypt'] as const;

export type Mode = (typeof MODES)[number];

// A LON-CAPA-sized request: the fake lond's echo answers the payload back.
export const PAYLOAD = Buffer.from(`bench:${'0123456789abcdef'.repeat(2)}:payload`, 'latin1');

export const CMD = Buffer.concat([Buffer.from('echo:', 'latin1'), PAYLOAD]);

export const ENCRYPT_CMD = Buffer.concat([Buffer.from('encrypt:', 'latin1'), CMD]);

export interface Cpu {
  gen: number;
  daemon: number;
  lond: number;
}

export interface RunRecord extends LoadResult {
  cpu: Cpu;
}

export interface Summary {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  wrong: number;
  cpu: Cpu;
  /** CPU time of the daemon (or proxy) per request, in microseconds: steadier than req/s on a busy machine. */
  daemonUsPerReq: number;
  runs: RunRecord[];
}

export function summarize(runs: RunRecord[]): Summary {
  const m = (f: (r: RunRecord) => number): number => median(runs.map(f));
  return {
    rps: m((r) => r.rps),
    p50Ms: m((r) => r.p50Ms),
    p99Ms: m((r) => r.p99Ms),
    wrong: runs.reduce((a, r) => a + r.wrong, 0),
    cpu: { gen: m((r) => r.cpu.gen), daemon: m((r) => r.cpu.daemon), lond: m((r) => r.cpu.lond) },
    daemonUsPerReq: m((r) => (r.cpu.daemon * 1e4) / r.rps),
    runs,
  };
}

export interface MatrixCell {
  serviceMs: number;
  clients: number;
  mode: Mode;
  sessions: number;
  gateway: Summary;
  direct: Summary;
  /** 1 client, 0 ms, plain only: a trivial byte-piping proxy in place of gatewayc. */
  floor?: Summary;
}

export interface PeersRun {
  readyMs: number;
  allUpMs: number;
  rssReadyMb: number;
  rssMb: number;
  idleCpuPct: number;
  /** After the idle window: V8 gives memory back some 10-15 s after the start-up burst. */
  rssAfterIdleMb: number;
}

export interface PeersResult {
  peers: number;
  readyMs: number;
  allUpMs: number;
  rssReadyMb: number;
  rssMb: number;
  idleCpuPct: number;
  rssAfterIdleMb: number;
  runs: PeersRun[];
}

export interface IdeaSummary extends IdeaResult {
  runs: IdeaResult[];
}

export interface SoakResult {
  seconds: number;
  clients: number;
  rps: number;
  wrong: number;
  rssIdleMb: number;
  rssStartMb: number;
  rssEndMb: number;
  rssMaxMb: number;
  /** RSS halfway through the measured window: growth after it is what a leak would show. */
  rssMidMb: number;
  samples: { t: number; rssMb: number }[];
}

export interface ProfileResult {
  clients: number;
  file: string;
  rps: number;
  summary: ProfileSummary;
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

export interface Results {
  echo?: Record<string, Summary>;
  matrix?: MatrixCell[];
  peers?: PeersResult[];
  idea?: IdeaSummary;
  soak?: SoakResult;
  profile?: ProfileResult;
}
