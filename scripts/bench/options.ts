// Command-line options of `npm run bench`.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Options, Section, SECTIONS } from './results';

export const USAGE = `usage: npm run bench -- [--quick] [options]

  --quick            about a minute: one repeat, short runs, 20 s soak
  --repeats N        repeats of each measurement, medians reported (3; quick 1)
  --duration S       measured seconds of each load run (1.5; quick 1)
  --soak S           seconds of the sustained run (300; quick 20; 0 skips it)
  --sessions N       gatewaycMaxSessions for the load matrix (8)
  --clients LIST     client counts of the load matrix (1,8,64)
  --service LIST     fake lond service times in ms (0,1)
  --daemon FILE      run this gatewayc entry script instead of bin/gatewayc
                     (to compare a patched build with this one)
  --precise-service  end the lond's service time by polling instead of a node timer
                     (which fires 0.1-1 ms late); costs the lond process a whole core
  --only LIST        comma-separated sections: echo,matrix,peers,idea,soak,profile
  --profile [S]      also run the 64-client plain load for S seconds (10) under
                     node --cpu-prof and summarise where the daemon spends its time
  --profile-clients N  clients of that load (64)
  --help`;

export function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean' },
      repeats: { type: 'string' },
      duration: { type: 'string' },
      soak: { type: 'string' },
      sessions: { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'string' },
      'profile-clients': { type: 'string' },
      clients: { type: 'string' },
      service: { type: 'string' },
      daemon: { type: 'string' },
      'precise-service': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const quick = values.quick === true;
  const num = (name: string, v: string | undefined, dflt: number, min: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} wants a number >= ${min}, not '${v}'`);
    return n;
  };
  const list = (name: string, v: string | undefined, dflt: number[]): number[] => (v === undefined ? dflt : v.split(',').map((x) => num(name, x.trim(), 0, 0)));
  let sections: Set<Section>;
  if (values.only !== undefined) {
    const names = values.only.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = names.filter((s) => !(SECTIONS as readonly string[]).includes(s));
    if (bad.length > 0) throw new Error(`--only: unknown section(s) ${bad.join(', ')} (known: ${SECTIONS.join(', ')})`);
    sections = new Set(names as Section[]);
  } else {
    sections = new Set(SECTIONS.filter((s) => s !== 'profile'));
    if (values.profile !== undefined) sections.add('profile');
  }
  const soakS = num('soak', values.soak, quick ? 20 : 300, 0);
  if (soakS === 0) sections.delete('soak');
  return {
    quick,
    repeats: Math.round(num('repeats', values.repeats, quick ? 1 : 3, 1)),
    durationMs: num('duration', values.duration, quick ? 1 : 1.5, 0.1) * 1000,
    warmupMs: quick ? 200 : 300,
    soakS,
    sessions: Math.round(num('sessions', values.sessions, 8, 1)),
    profileClients: Math.round(num('profile-clients', values['profile-clients'], 64, 1)),
    profileS: values.profile === undefined || values.profile === '' ? 10 : num('profile', values.profile, 10, 1),
    idleMs: quick ? 3000 : 10_000,
    clientCounts: list('clients', values.clients, [1, 8, 64]).map(Math.round),
    serviceTimes: list('service', values.service, [0, 1]),
    entry: values.daemon === undefined ? undefined : path.resolve(values.daemon),
    preciseService: values['precise-service'] === true,
    sections,
  };
}
