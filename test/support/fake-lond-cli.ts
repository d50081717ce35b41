// Runs fake londs by hand or for the README demo:
//   node build/test/support/fake-lond-cli.js --client demo1 --port 56630 \
//     --peer demo2@127.0.0.2 --peer demo3@127.0.0.3 [--service-ms N] [--encrypt-answers]
// Logs only events, command names and lengths: never a request's arguments, a key or a buildkey.
// Runs on any node: OpenSSL's IDEA where this node has it, the plain one otherwise
// (lond-idea.ts; FAKE_LOND_IDEA=plain|openssl forces one).
import { parseArgs } from 'node:util';
import { FakeLond, ReceivedRequest } from './fake-lond';
import { chooseIdeaBackend, describeIdeaBackend } from './lond-idea';

export const USAGE = `usage: fake-lond-cli --client <id> --peer <id>[@<address>] [--peer ...]
                    [--port <n>] [--service-ms <n>] [--encrypt-answers]

Starts one fake lond per --peer (default address 127.0.0.1), all on one port
(default 5663; 0 picks a free one), for a gatewayc whose lonHostID is --client.
Stops on SIGINT or SIGTERM. IDEA: OpenSSL's where this node has it, else a plain
one of the test side (FAKE_LOND_IDEA=plain|openssl forces one).`;

export interface CliPeer {
  id: string;
  address: string;
}

export interface CliOptions {
  help: boolean;
  client: string;
  port: number;
  peers: CliPeer[];
  serviceMs: number;
  encryptAnswers: boolean;
}

function nonNegativeInt(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value) || Number(value) > max) throw new Error(`--${name} wants an integer 0..${max}, not '${value}'`);
  return Number(value);
}

export function parseCliArgs(argv: string[]): CliOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      help: { type: 'boolean', short: 'h' },
      client: { type: 'string' },
      port: { type: 'string' },
      peer: { type: 'string', multiple: true },
      'service-ms': { type: 'string' },
      'encrypt-answers': { type: 'boolean' },
    },
  });
  const help = values.help === true;
  const peers = (values.peer ?? []).map((spec): CliPeer => {
    const at = spec.indexOf('@');
    const id = at < 0 ? spec : spec.slice(0, at);
    const address = at < 0 ? '127.0.0.1' : spec.slice(at + 1);
    if (id === '' || address === '') throw new Error(`--peer wants <id>[@<address>], not '${spec}'`);
    return { id, address };
  });
  if (!help) {
    if (!values.client) throw new Error('--client <id> is required');
    if (peers.length === 0) throw new Error('at least one --peer is required');
  }
  return {
    help,
    client: values.client ?? '',
    port: nonNegativeInt('port', values.port, 5663, 65535),
    peers,
    serviceMs: nonNegativeInt('service-ms', values['service-ms'], 0, 3_600_000),
    encryptAnswers: values['encrypt-answers'] === true,
  };
}

/** A loggable name for a request: the command before the first ':', or '?' if it does not look like one. */
export function commandName(req: ReceivedRequest): string {
  const text = req.plain.toString('latin1');
  const colon = text.indexOf(':');
  const name = colon < 0 ? text : text.slice(0, colon);
  return /^[A-Za-z_][A-Za-z0-9_]{0,31}$/.test(name) ? name : '?';
}

const log = (line: string): void => {
  process.stderr.write(`fake-lond ${line}\n`);
};

async function run(opts: CliOptions): Promise<void> {
  const londs: FakeLond[] = [];
  let port = opts.port;
  const idea = chooseIdeaBackend();
  log(`idea=${idea}: ${describeIdeaBackend(idea)}`);
  try {
    for (const peer of opts.peers) {
      const lond = await FakeLond.start({
        id: peer.id,
        clientId: opts.client,
        host: peer.address,
        port,
        serviceTimeMs: opts.serviceMs,
        encryptAnswers: opts.encryptAnswers,
        idea,
      });
      port = lond.port; // with --port 0 the others follow the first one's choice
      londs.push(lond);
      lond.on('connection', (s: number) => log(`${peer.id}: session ${s} connected (open ${lond.stats.open})`));
      lond.on('handshake', (s: number) => log(`${peer.id}: session ${s} handshake done`));
      lond.on('request', (r: ReceivedRequest) =>
        log(`${peer.id}: session ${r.session} request #${lond.stats.requests} ${commandName(r)} ${r.plain.length} bytes${r.encrypted ? ' encrypted' : ''}`),
      );
      lond.on('malformed', (s: number) => log(`${peer.id}: session ${s} malformed enc: request`));
      lond.on('exit', (s: number) => log(`${peer.id}: session ${s} exit`));
      lond.on('close', (s: number) => log(`${peer.id}: session ${s} closed (open ${lond.stats.open})`));
      log(`${peer.id}: listening on ${lond.host}:${lond.port} for client ${opts.client}`);
    }
  } catch (err) {
    await Promise.all(londs.map((l) => l.stop()));
    throw err;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    void Promise.all(londs.map((l) => l.stop())).then(() => {
      log('stopped');
      process.exit(0);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Started with an IPC channel (the demo does), it notices its parent's death, even by SIGKILL.
  if (process.send) process.on('disconnect', () => stop('parent gone'));
}

function main(argv: string[]): void {
  let opts: CliOptions;
  try {
    opts = parseCliArgs(argv);
  } catch (err) {
    process.stderr.write(`fake-lond-cli: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  run(opts).catch((err: unknown) => {
    process.stderr.write(`fake-lond-cli: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

if (require.main === module) main(process.argv.slice(2));
