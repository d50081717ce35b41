/**
 * The commands of gatewayctl. Each takes its parsed arguments and an Io (the outside
 * world: streams, environment, clock) and returns the exit status; failures are thrown
 * as CtlError and turned into one sentence by main.ts.
 */
import * as path from 'node:path';
import { ConfigError, Diag, formatDiag } from '../config/diag';
import { validPeerId } from '../config/hosts';
import { controlRequest, CtlError, EXIT, expectOk } from './client';
import type { DaemonStatus, DelayedFile, DelayedReply, ReloadResult } from '../control/protocol';
import { formatDelayed, formatReload, formatRetry, formatStatus, COLOUR, NO_COLOUR, wantColour } from './format';
import { DEFAULT_CONFIG } from '../config/defaults';
import { controlSocketPath, peerSocketDir } from './locate';
import { requestLines, sendRequests } from './send';
import { terminalJson, visible } from '../util/visible';

export interface Io {
  stdout: { write(data: string | Uint8Array): unknown; isTTY?: boolean };
  stderr: { write(data: string): unknown };
  /** Standard input, opened only by the commands that read it. */
  stdin(): AsyncIterable<Buffer | string>;
  env: NodeJS.ProcessEnv;
  now(): number;
  /** The short host name (what systemd's %l gives the unit). */
  hostname(): string;
}

export interface Where {
  config?: string[];
  socket?: string;
  sockDir?: string;
}

/** A reload re-reads files and opens sockets: allow it more than a status. */
const RELOAD_TIMEOUT_MS = 90_000;

function usage(message: string): CtlError {
  return new CtlError(message, EXIT.usage);
}

export function checkPeerId(id: string): void {
  const bad = validPeerId(id);
  if (bad !== undefined) throw usage(`peer id ${JSON.stringify(id)} ${bad}`);
}

function unknownPeers(asked: string[], known: string[]): CtlError | undefined {
  const unknown = asked.filter((p) => !known.includes(p));
  if (unknown.length === 0) return undefined;
  const configured = known.length > 0 ? `configured: ${known.join(', ')}` : 'no peers are configured';
  return new CtlError(`unknown peer${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (${configured})`, EXIT.failed);
}

export async function status(io: Io, where: Where, peers: string[], json: boolean): Promise<number> {
  const reply = expectOk(await controlRequest(controlSocketPath(where), { op: 'status' }));
  const { ok: _ok, ...st } = reply;
  const daemonStatus = st as unknown as DaemonStatus;
  const known = Array.isArray(daemonStatus.peers) ? daemonStatus.peers.map((p) => p.id) : [];
  const err = unknownPeers(peers, known);
  if (err) throw err;
  if (json) {
    const shown = peers.length > 0 ? { ...st, peers: daemonStatus.peers.filter((p) => peers.includes(p.id)) } : st;
    io.stdout.write(`${terminalJson(shown, 2)}\n`);
    return EXIT.ok;
  }
  const tty = io.stdout.isTTY === true;
  io.stdout.write(
    formatStatus(daemonStatus, {
      now: io.now(),
      paint: wantColour(tty, io.env) ? COLOUR : NO_COLOUR,
      ...(peers.length > 0 ? { only: peers } : {}),
    }),
  );
  return EXIT.ok;
}

export async function send(io: Io, where: Where, peer: string, request: string): Promise<number> {
  checkPeerId(peer);
  let requests: AsyncIterable<Buffer>;
  if (request === '-') {
    requests = requestLines(io.stdin());
  } else {
    if (request === '') throw usage('REQUEST is empty');
    if (request.includes('\n')) throw usage('REQUEST must be one line (use - to read several from standard input)');
    requests = (async function* () {
      yield Buffer.from(request, 'utf8');
    })();
  }
  const socketPath = path.join(peerSocketDir(where), peer);
  // Scripts get the answer's bytes; a person at a terminal sees them, as ls shows names.
  const show = io.stdout.isTTY === true ? (answer: Buffer) => io.stdout.write(`${visible(answer.toString('utf8'))}\n`) : (answer: Buffer) => io.stdout.write(Buffer.concat([answer, Buffer.from('\n')]));
  const result = await sendRequests(socketPath, peer, requests, show);
  if (result.conLost > 0) {
    const of = result.sent > 1 ? `${result.conLost} of ${result.answered} answers were` : 'the answer was';
    io.stderr.write(`gatewayctl: ${of} con_lost: ${visible(peer)} is not reachable now (gatewayctl status ${visible(peer)})\n`);
    return EXIT.conLost;
  }
  return EXIT.ok;
}

export async function retry(io: Io, where: Where, peers: string[]): Promise<number> {
  const reply = expectOk(await controlRequest(controlSocketPath(where), { op: 'retry', peers }));
  io.stdout.write(formatRetry(Array.isArray(reply.peers) ? reply.peers.map(String) : peers));
  return EXIT.ok;
}

export async function reload(io: Io, where: Where): Promise<number> {
  const reply = (await controlRequest(controlSocketPath(where), { op: 'reload' }, RELOAD_TIMEOUT_MS)) as unknown as ReloadResult;
  if (reply.ok !== true) {
    throw new CtlError(`reload refused, the running configuration stays: ${reply.error ?? 'no reason given'}`, EXIT.failed);
  }
  io.stdout.write(formatReload({ ...reply, added: reply.added ?? [], removed: reply.removed ?? [], reconnected: reply.reconnected ?? [], warnings: reply.warnings ?? [] }));
  return EXIT.ok;
}

export async function delayed(io: Io, where: Where, peer: string | undefined, json: boolean): Promise<number> {
  if (peer !== undefined) checkPeerId(peer);
  const reply = expectOk(await controlRequest(controlSocketPath(where), peer === undefined ? { op: 'delayed' } : { op: 'delayed', peer }));
  const files = (Array.isArray(reply.files) ? reply.files : []) as DelayedFile[];
  const dir = String(reply.dir);
  // A daemon from before the listing had a limit sends no counts.
  const more = reply.notListed as Partial<DelayedReply['notListed']> | undefined;
  const notListed = { waiting: Number(more?.waiting ?? 0), setAside: Number(more?.setAside ?? 0) };
  if (json) io.stdout.write(`${terminalJson({ dir, files, notListed }, 2)}\n`);
  else io.stdout.write(formatDelayed(files, dir, io.now(), peer, notListed));
  return EXIT.ok;
}

/** Lines for the terminal: file names and values from config files are made visible. */
function lines(out: string[]): string {
  return out.map((l) => `${visible(l)}\n`).join('');
}

/** `file:line: warning: message`, the form compilers use, which editors can jump to. */
export function diagLine(d: Diag): string {
  return formatDiag({ ...d, message: `${d.severity}: ${d.message}` });
}

export async function check(io: Io, files: string[] | undefined, defaultHostId: string | undefined, quiet: boolean): Promise<number> {
  // Loaded here only: the certificate checks bring node-forge, which the other commands do not need.
  const { checkConfiguration } = await import('../daemon/configuration');
  const out: string[] = [];
  try {
    const result = checkConfiguration(files ?? [DEFAULT_CONFIG], defaultHostId ?? io.hostname(), new Date(io.now()));
    const { loaded, diags, errors } = result;
    for (const d of diags) if (!quiet || d.severity === 'error') out.push(diagLine(d));
    if (errors > 0) {
      if (!quiet) out.push('configuration refused: fix the errors above');
    } else if (!quiet) {
      const n = loaded.peers.length;
      const w = diags.length;
      const warnings = w > 0 ? `, ${w} warning${w === 1 ? '' : 's'}` : '';
      out.push(
        n === 0
          ? `configuration OK${warnings}, but no peers: add the other servers to ${loaded.hostsFile}`
          : `configuration OK: ${n} peer${n === 1 ? '' : 's'} in ${loaded.hostsFile}, host id ${loaded.settings.lonHostID}${warnings}`,
      );
    }
    io.stdout.write(lines(out));
    return errors > 0 ? EXIT.failed : EXIT.ok;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    out.push(diagLine(err.diag));
    if (!quiet) out.push('configuration refused: gatewayc would not start or reload with it');
    io.stdout.write(lines(out));
    return EXIT.failed;
  }
}
