/**
 * gatewayctl's command line: which command, which options, then the command itself.
 * Every failure ends here as one sentence on stderr and an exit status; a stack trace
 * never reaches the administrator.
 */
import { parseArgs } from '../cli/args';
import { visible } from '../util/visible';
import { VERSION } from '../version';
import { CtlError, EXIT } from './client';
import * as cmd from './commands';
import { COMMANDS, commandHelp, findCommand, generalHelp } from './help';

export type { Io } from './commands';

const SPEC = { repeat: ['config'], value: ['socket', 'sock-dir', 'default-host-id'], flag: ['json', 'quiet', 'help', 'version'] };
const NAMES = COMMANDS.map((c) => c.name).join(', ');

function usage(message: string): CtlError {
  return new CtlError(`${message} (see gatewayctl --help)`, EXIT.usage);
}

/** The options given on the command line, by name (for the "does not apply" check). */
function given(args: { repeats: Map<string, string[]>; values: Map<string, string>; flags: Set<string> }): string[] {
  return [...args.repeats.keys(), ...args.values.keys(), ...args.flags];
}

function arity(command: string, positional: string[], min: number, max: number, what: string): void {
  if (positional.length < min) throw usage(`${command} needs ${what}`);
  if (positional.length > max) throw usage(`${command} takes ${max === 0 ? 'no arguments' : `at most ${what}`}, got ${JSON.stringify(positional[max])}`);
}

async function run(argv: string[], io: cmd.Io): Promise<number> {
  const args = parseArgs(argv, SPEC);
  if ('error' in args) throw usage(args.error);
  const [command, ...rest] = args.positional;

  if (command === undefined) {
    if (args.flags.has('version')) {
      io.stdout.write(`gatewayctl ${VERSION}\n`);
      return EXIT.ok;
    }
    if (args.flags.has('help')) {
      io.stdout.write(generalHelp());
      return EXIT.ok;
    }
    throw usage(`no command given; the commands are ${NAMES}`);
  }
  const doc = findCommand(command);
  if (!doc) throw usage(`unknown command ${JSON.stringify(command)}; the commands are ${NAMES}`);
  if (args.flags.has('help')) {
    io.stdout.write(commandHelp(doc));
    return EXIT.ok;
  }
  for (const opt of given(args)) {
    if (!doc.options.includes(opt)) throw usage(`option --${opt} does not apply to ${command}`);
  }
  if (args.values.has('socket') && args.repeats.has('config')) throw usage('give either --socket or --config, not both');

  const where: cmd.Where = {};
  const config = args.repeats.get('config');
  if (config) where.config = config;
  const socket = args.values.get('socket');
  if (socket !== undefined) where.socket = socket;
  const sockDir = args.values.get('sock-dir');
  if (sockDir !== undefined) where.sockDir = sockDir;
  const json = args.flags.has('json');

  switch (doc.name) {
    case 'status':
      rest.forEach(cmd.checkPeerId);
      return cmd.status(io, where, rest, json);
    case 'send':
      arity('send', rest, 2, 2, 'PEER and REQUEST (or - to read requests from standard input)');
      return cmd.send(io, where, rest[0] as string, rest[1] as string);
    case 'retry':
      rest.forEach(cmd.checkPeerId);
      return cmd.retry(io, where, rest);
    case 'reload':
      arity('reload', rest, 0, 0, '');
      return cmd.reload(io, where);
    case 'check':
      arity('check', rest, 0, 0, '');
      return cmd.check(io, config, args.values.get('default-host-id'), args.flags.has('quiet'));
    case 'delayed':
      arity('delayed', rest, 0, 1, 'one PEER');
      return cmd.delayed(io, where, rest[0], json);
    case 'help': {
      arity('help', rest, 0, 1, 'one COMMAND');
      if (rest[0] === undefined) {
        io.stdout.write(generalHelp());
        return EXIT.ok;
      }
      const topic = findCommand(rest[0]);
      if (!topic) throw usage(`no help for ${JSON.stringify(rest[0])}: the commands are ${NAMES}`);
      io.stdout.write(commandHelp(topic));
      return EXIT.ok;
    }
    default:
      throw new Error(`command ${doc.name} has help but no implementation`);
  }
}

/** Runs one gatewayctl command line; resolves with the exit status. */
export async function runCli(argv: string[], io: cmd.Io): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    // Messages carry the daemon's words and config text: one escaped line each.
    if (err instanceof CtlError) {
      io.stderr.write(`gatewayctl: ${visible(err.message)}\n`);
      return err.exitCode;
    }
    io.stderr.write(`gatewayctl: unexpected error: ${visible(err instanceof Error ? err.message : String(err))}\n`);
    return EXIT.failed;
  }
}
