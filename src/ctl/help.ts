/**
 * Every help text of gatewayctl, as data. `gatewayctl help`, `--help` and the manual page
 * (scripts/gen-man.ts → man/gatewayctl.8) are all rendered from this one place, so they
 * cannot drift apart. Text may mark literal words with `backticks` (bold in the manual,
 * plain on the terminal).
 */
import { DEFAULT_CONFIG, SERVICE_GROUP } from '../config/defaults';
import { defaultOf } from '../config/settings';
import { STATUS_SCHEMA, DELAYED_SCHEMA, FieldDoc } from './schema';

const DEFAULT_CONTROL_SOCKET = defaultOf('gatewaycControlSocket');

export interface OptionDoc {
  name: string;
  arg?: string;
  doc: string;
}

/** A paragraph, or a list of terms with their meaning. */
export type Block = string | { items: [string, string][] };

export interface CommandDoc {
  name: string;
  /** What follows the command name in the synopsis. */
  args: string;
  summary: string;
  body: Block[];
  /** Names of the options (keys of OPTIONS) this command takes. */
  options: string[];
  /** A JSON schema to document under the command's help. */
  schema?: { title: string; fields: FieldDoc[] };
}

export const OPTIONS: Record<string, OptionDoc> = {
  config: {
    name: 'config', arg: 'FILE',
    doc: `Config file in LON-CAPA syntax, as given to gatewayc; may be repeated, later files override earlier ones (default ${DEFAULT_CONFIG}). gatewayctl reads it only to find the sockets (gatewaycControlSocket, lonSockDir) and, for \`check\`, to validate it.`,
  },
  socket: {
    name: 'socket', arg: 'PATH',
    doc: `The daemon's control socket, instead of the gatewaycControlSocket of the config (default ${DEFAULT_CONTROL_SOCKET}).`,
  },
  'sock-dir': {
    name: 'sock-dir', arg: 'DIR',
    doc: 'The directory of the peer sockets, instead of the lonSockDir of the config.',
  },
  json: { name: 'json', doc: 'Print the daemon\'s answer as JSON instead of a table; its fields are listed under "JSON output".' },
  quiet: { name: 'quiet', doc: 'Print only errors: no warnings and no summary. The exit status tells the rest.' },
  'default-host-id': {
    name: 'default-host-id', arg: 'ID',
    doc: 'The lonHostID to assume when the config sets none (default: the short host name, as gatewayc.service passes it with --default-host-id %l).',
  },
  help: { name: 'help', doc: 'Print the help of the command and exit.' },
};

const TALKS = ['config', 'socket', 'help'];

export const COMMANDS: CommandDoc[] = [
  {
    name: 'status',
    args: '[PEER...] [--json]',
    summary: 'show the state of every peer, or of the named ones',
    options: [...TALKS, 'json'],
    body: [
      'Prints a header (version, pid and uptime of the daemon, its host id, the config files and hosts.tab it read) and one line per peer, with these columns:',
      {
        items: [
          ['PEER', 'the peer id, from hosts.tab.'],
          ['STATE', '`up` (and for how long), `connecting` (no session yet, or the last one was lost and a new one is being tried), `down` (gatewaycMaxAttempts attempts in a row failed: its requests are answered con_lost at once and it is retried every gatewaycRetryMax seconds) or `stopped` (removed by a reload).'],
          ['SESSIONS', 'open TCP sessions of the gatewaycMaxSessions allowed, and how many of them are busy with a request or still being opened.'],
          ['QUEUE', 'requests waiting for a free session.'],
          ['FAILS', 'consecutive failed attempts, of gatewaycMaxAttempts.'],
          ['NEXT TRY', 'when the next connection attempt is due, if one is scheduled.'],
          ['HANDSHAKE', 'round-trip time of the last session handshake.'],
          ['P50, P99', 'median and 99th percentile of the round-trip times of recent requests.'],
          ['DELAYED', 'delayed messages waiting in the spool for this peer.'],
          ['REQUESTS, CON_LOST', 'requests carried, and con_lost answers given, since the daemon started.'],
          ['LAST ERROR', 'how long ago the most recent failure happened, and what it was.'],
        ],
      },
      'Colour is used only when standard output is a terminal and NO_COLOR is not set. With no peers configured it says which file to edit. A PEER that is not configured is an error (exit status 1).',
      'With `--json` the status object of the daemon is printed instead, for scripts; its fields are listed below. Times are milliseconds since the epoch, durations milliseconds unless the name says otherwise, and a field that does not apply (no error yet, no request yet) is null.',
    ],
    schema: { title: 'JSON output of status', fields: STATUS_SCHEMA },
  },
  {
    name: 'send',
    args: 'PEER REQUEST | PEER -',
    summary: "send a request through a peer's socket and print the answer",
    options: ['config', 'sock-dir', 'help'],
    body: [
      "Connects to the peer's UNIX socket, lonSockDir/PEER, writes REQUEST as one line exactly as a LON-CAPA program would, and prints the answer line. A request `encrypt:COMMAND` travels encrypted: the daemon encrypts it and decrypts the answer. The control socket is not involved, so this needs the access a LON-CAPA program has to the peer sockets (their group is the web server's).",
      'With `-` as REQUEST, requests are read from standard input, one per line (empty lines are skipped), sent over one connection, and their answers printed in the same order.',
      'The exit status is 2 when any answer is con_lost (the peer is down, refused the session, timed out, or the session was cut).',
    ],
  },
  {
    name: 'retry',
    args: '[PEER...]',
    summary: 'reset attempt counters and reconnect peers that are not up, now',
    options: TALKS,
    body: [
      'Resets the count of failed attempts of the named peers (of every peer when none is named) and makes each of them that is not up try to connect at once, instead of at its next scheduled attempt. This is what SIGUSR1 did to the original daemon; `systemctl kill -s USR1 gatewayc` still does it for every peer.',
      'An unknown PEER is an error (exit status 1) and no peer is retried.',
    ],
  },
  {
    name: 'reload',
    args: '',
    summary: 're-read the configuration and hosts.tab, and say what changed',
    options: TALKS,
    body: [
      'Makes the daemon re-read its config files and hosts.tab, and waits until it has: added peers start, removed peers stop, peers whose settings changed reconnect, and every other peer keeps its sessions. Prints one line saying which peers were added, removed and reconnected.',
      'A broken new configuration is refused and the daemon keeps running with the one it has; gatewayctl then prints the reason and exits with status 1. Changes to lonSockDir and gatewaycControlSocket take effect only when the daemon restarts.',
      'This is the ExecReload= of gatewayc.service: `systemctl reload gatewayc` runs it.',
    ],
  },
  {
    name: 'check',
    args: '[--config FILE...] [--quiet]',
    summary: 'validate the configuration and hosts.tab, without a daemon',
    options: ['config', 'default-host-id', 'quiet', 'help'],
    body: [
      'Reads the config files and hosts.tab as the daemon does, starts nothing and needs no running daemon, and prints every problem as `file:line: error: message` or `file:line: warning: message`, then a summary.',
      'Warnings (an unknown key, a malformed hosts.tab line, which the daemon skips) do not fail the check. An error (a bad value, a file that cannot be read) does: the daemon would refuse to start or to reload with it. Reading stops at the first error, so after fixing one, check again.',
      'The exit status is 0 when there is no error, 1 when there is one.',
    ],
  },
  {
    name: 'delayed',
    args: '[PEER] [--json]',
    summary: 'list the delayed messages waiting to be delivered',
    options: [...TALKS, 'json'],
    body: [
      'Lists the delayed messages waiting in the spool (gatewaycDelayedDir), for every peer or only for PEER: file name, peer, age and size. Their content is never shown (it may hold credentials). A message is removed once its peer has answered it. Entries that are not messages (links, FIFOs, directories, files with other hard links, unreadable or too long ones) are listed apart with the reason: they were moved to rejected/ in the spool and are never delivered; look at them, then remove them.',
    ],
    schema: { title: 'JSON output of delayed', fields: DELAYED_SCHEMA },
  },
  {
    name: 'help',
    args: '[COMMAND]',
    summary: 'show the help of gatewayctl or of one command',
    options: [],
    body: ['Prints the list of commands, or the help of COMMAND. `gatewayctl COMMAND --help` does the same.'],
  },
];

export const DESCRIPTION = [
  'gatewayctl is the administrator\'s tool for gatewayc(8), the LON-CAPA connection daemon: it shows the state of every peer link and steers them, without reading logs. It talks to the running daemon over its control socket (gatewaycControlSocket), which only root and members of the group `gatewayc` may open; `check` needs no daemon and `send` uses the peer sockets instead.',
];

export const EXIT_STATUS: [string, string][] = [
  ['0', 'success.'],
  ['1', 'the daemon refused the request (an unknown peer, a broken configuration on reload), or `check` found an error.'],
  ['2', '`send`: an answer was con_lost.'],
  ['3', 'the daemon or the peer socket cannot be reached: the daemon is not running, or did not answer in time.'],
  ['4', 'permission denied on the control socket or a peer socket.'],
  ['64', 'usage error: unknown command or option, missing or extra argument.'],
  ['78', 'the config that names the sockets cannot be read or is broken (`--socket` or `--sock-dir` avoid reading it).'],
];

export const FILES: [string, string][] = [
  [DEFAULT_CONFIG, 'the configuration, see gatewayc.conf(5).'],
  ['/etc/gatewayc/hosts.tab', 'the peers (in lonTabDir).'],
  [DEFAULT_CONTROL_SOCKET, `the control socket (0660 root:${SERVICE_GROUP}).`],
  ['/run/gatewayc/sockets/PEER', 'the socket of each peer (in lonSockDir).'],
  ['/var/spool/gatewayc/delayed', 'the spool of delayed messages (gatewaycDelayedDir).'],
];

export const ENVIRONMENT: [string, string][] = [['NO_COLOR', 'when set to anything but the empty string, `status` uses no colour even on a terminal.']];

export const SEE_ALSO = ['gatewayc(8)', 'gatewayc.conf(5)', 'systemctl(1)', 'journalctl(1)'];

export function findCommand(name: string): CommandDoc | undefined {
  return COMMANDS.find((c) => c.name === name);
}

// ---- plain-text rendering (the terminal) ----

const WIDTH = 80;

export function plain(text: string): string {
  return text.replace(/`([^`]*)`/g, '$1');
}

/** Fills words into lines of at most `width` columns, each starting with `indent`. */
export function wrap(text: string, indent = '', width = WIDTH): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of plain(text).split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

/** Terms in a column, their text wrapped beside them (or below, for a long term). */
function definitionList(items: [string, string][], indent: string, termWidth: number): string[] {
  const out: string[] = [];
  const pad = ' '.repeat(indent.length + termWidth + 2);
  for (const [term, doc] of items) {
    const t = plain(term);
    const body = wrap(doc, pad);
    if (t.length <= termWidth && body.length > 0) {
      out.push(indent + t.padEnd(termWidth + 2) + (body[0] as string).slice(pad.length));
      out.push(...body.slice(1));
    } else {
      out.push(indent + t, ...body);
    }
  }
  return out;
}

function blockText(b: Block): string[] {
  if (typeof b === 'string') return wrap(b);
  return definitionList(b.items, '  ', Math.min(18, Math.max(...b.items.map(([t]) => plain(t).length))));
}

function optionLabel(o: OptionDoc): string {
  return o.arg ? `--${o.name} ${o.arg}` : `--${o.name}`;
}

function schemaLines(fields: FieldDoc[], depth = 0): [string, string][] {
  const out: [string, string][] = [];
  for (const f of fields) {
    out.push([`${'  '.repeat(depth)}${f.name}`, `(${f.type}${f.nullable ? ' or null' : ''}) ${f.doc}`]);
    if (f.fields) out.push(...schemaLines(f.fields, depth + 1));
  }
  return out;
}

export function commandHelp(c: CommandDoc): string {
  const out: string[] = [`Usage: gatewayctl ${c.name}${c.args ? ` ${c.args}` : ''}`, '', ...wrap(`${c.summary[0]?.toUpperCase()}${c.summary.slice(1)}.`)];
  for (const b of c.body) out.push('', ...blockText(b));
  const opts = c.options.map((n) => OPTIONS[n] as OptionDoc);
  if (opts.length > 0) {
    out.push('', 'Options:', ...definitionList(opts.map((o) => [optionLabel(o), o.doc]), '  ', 22));
  }
  if (c.schema) {
    out.push('', `${c.schema.title}:`, ...definitionList(schemaLines(c.schema.fields), '  ', 20));
  }
  return `${out.join('\n')}\n`;
}

export function generalHelp(): string {
  const out: string[] = ['Usage: gatewayctl COMMAND [ARG...] [OPTION...]', '', ...DESCRIPTION.flatMap((p) => wrap(p)), '', 'Commands:'];
  out.push(...definitionList(COMMANDS.map((c) => [`${c.name} ${c.args}`.trim(), c.summary]), '  ', 26));
  out.push('', 'Options:');
  const general = ['config', 'socket', 'help'].map((n) => OPTIONS[n] as OptionDoc);
  out.push(...definitionList([...general.map((o): [string, string] => [optionLabel(o), o.doc]), ['--version', 'Print the version and exit.']], '  ', 22));
  out.push('', 'Exit status:', ...definitionList(EXIT_STATUS, '  ', 3));
  out.push('', ...wrap('Run `gatewayctl help COMMAND` for the details of a command, `man gatewayctl` for everything.'));
  return `${out.join('\n')}\n`;
}
