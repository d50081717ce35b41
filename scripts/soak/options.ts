// Command-line options of `npm run soak`.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseSeed, randomSeed } from './rng';

export const USAGE = `usage: npm run soak -- [--minutes N | --short] [options]

Runs gatewayc against 27 fake londs on 127.0.0.x under a steady mixed load while faults
are injected on a seeded random schedule, checks every invariant of issue 14 as it goes,
prints a table and writes a JSON file beside it (its path is the last line printed).
Exit status 1 when any invariant was violated.

  --minutes N      minutes of chaos (10)
  --short          about a minute in all (40 s of chaos): for CI
  --seed S         replay the schedule of an earlier run (its seed is printed)
  --margin S       seconds an answer may come after gatewaycRequestTimeout (2)
  --no-hostile     leave out the hostile spool entries (symlink, FIFO, directory,
                   oversized file), which today's daemon mishandles (issue 11)
  --daemon FILE    run this gatewayc entry script instead of bin/gatewayc
  --out DIR        where the table, JSON and daemon log go (soak-results/)
  --keep           keep the run's directory (config, spool, sockets) afterwards
  --help`;

export interface SoakOptions {
  short: boolean;
  chaosMs: number;
  seed: number;
  marginMs: number;
  hostile: boolean;
  entry: string | undefined;
  outDir: string;
  keep: boolean;
  daemonKills: number;
  keymodeFlips: number;
  /** Load continues this long after the last fault, before the delayed spool is drained. */
  settleMs: number;
  /** At most this long for every delayed message to be delivered at the end. */
  drainMs: number;
  /** How to run this again with the same schedule. */
  replay: string;
}

export function parseOptions(argv: string[], root: string): SoakOptions | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      minutes: { type: 'string' },
      short: { type: 'boolean' },
      seed: { type: 'string' },
      margin: { type: 'string' },
      'no-hostile': { type: 'boolean' },
      daemon: { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const short = values.short === true;
  if (short && values.minutes !== undefined) throw new Error('--short and --minutes exclude each other');
  const num = (name: string, v: string | undefined, dflt: number, min: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} wants a number >= ${min}, not '${v}'`);
    return n;
  };
  const minutes = num('minutes', values.minutes, 10, 0.5);
  const seed = values.seed === undefined ? randomSeed() : parseSeed(values.seed);
  const chaosMs = short ? 40_000 : minutes * 60_000;
  const hostile = values['no-hostile'] !== true;
  const entry = values.daemon === undefined ? undefined : path.resolve(values.daemon);
  const replay = `npm run soak -- ${short ? '--short' : `--minutes ${minutes}`} --seed ${seed}${hostile ? '' : ' --no-hostile'}${entry ? ` --daemon ${entry}` : ''}`;
  return {
    short,
    chaosMs,
    seed,
    marginMs: num('margin', values.margin, 2, 0) * 1000,
    hostile,
    entry,
    outDir: path.resolve(values.out ?? path.join(root, 'soak-results')),
    keep: values.keep === true,
    daemonKills: short ? 1 : Math.min(6, Math.max(1, Math.round(minutes * 0.3))),
    keymodeFlips: short ? 1 : Math.max(1, Math.round(minutes / 3)),
    settleMs: short ? 4000 : 10_000,
    drainMs: short ? 20_000 : 60_000,
    replay,
  };
}
