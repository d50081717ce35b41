/**
 * The daemon's one logger (pino). Under systemd, stdout is a journald stream: each line
 * then becomes a readable sentence with a `<N>` syslog priority prefix, which journald
 * stores as PRIORITY so `journalctl -p warning` filters by level. Anywhere else the lines
 * stay pino's JSON. The choice is made once, at construction; below the level every
 * call stays pino's no-op.
 */
import * as fs from 'node:fs';
import pino from 'pino';
import { visible } from './util/visible';

export type Logger = pino.Logger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface LoggerOptions {
  /** Where JOURNAL_STREAM is looked up; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Where lines go; stdout (fd 1, synchronous) by default. */
  destination?: pino.DestinationStream;
}

/**
 * True when fd `fd` is the stream systemd connected to journald: JOURNAL_STREAM holds
 * "<device>:<inode>" of that stream (systemd.exec(5)). Comparing them, rather than
 * trusting the variable alone, keeps JSON output when stdout was redirected elsewhere
 * by a process that inherited the variable.
 */
export function isJournalStream(env: NodeJS.ProcessEnv, fd = 1): boolean {
  const m = /^([0-9]+):([0-9]+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]) && st.ino === BigInt(m[2]);
  } catch {
    return false;
  }
}

/** syslog priority for a pino level: fatal crit(2), error err(3), warn warning(4), info info(6), below debug(7). */
export function journalPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * Keys that are not shown as ` key=value`: the priority, the sentence, journald's own, and
 * the structured fields every sentence already says in words (`event` names the kind of
 * record for programs and tests; the others repeat a part of the sentence).
 */
const NOT_FIELDS = new Set([
  'level', 'time', 'msg', 'peer', 'err', 'pid', 'hostname',
  'event', 'reason', 'from', 'failures', 'handshakeMs', 'keyMode', 'peers', 'added', 'removed', 'reconnected',
  'code', 'dir', 'op', 'max', 'last', 'state', 'key', 'configFile', 'configLine', 'answer', 'movedTo',
]);

/** One physical line whatever the text: control characters become visible escapes. */
const oneLine = visible;

function fieldValue(v: unknown): string {
  // eslint-disable-next-line no-control-regex
  if (typeof v === 'string') return /^[^\s"=\\\x00-\x1f\x7f]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  // JSON.stringify never emits a raw newline, so nested values stay on the line.
  return JSON.stringify(v) ?? String(v);
}

function errorText(err: unknown): string {
  if (err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  return typeof err === 'string' ? err : JSON.stringify(err);
}

/**
 * A pino JSON line (with its newline) as a journal line: "<4>peer msul1: message key=value\n".
 * `peer` leads the sentence, `err` follows the message after ": " unless the message
 * already ends with it, other fields trail as key=value.
 */
export function journalLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `<6>${oneLine(json.replace(/\n$/, ''))}\n`;
  }
  const level = typeof rec.level === 'number' ? rec.level : 30;
  let sentence = typeof rec.msg === 'string' ? rec.msg : rec.msg === undefined ? '' : fieldValue(rec.msg);
  if (rec.err !== undefined) {
    const e = errorText(rec.err);
    if (!sentence.endsWith(e)) sentence = sentence === '' ? e : `${sentence}: ${e}`;
  }
  if (rec.peer !== undefined) sentence = `peer ${typeof rec.peer === 'string' ? rec.peer : fieldValue(rec.peer)}: ${sentence}`;
  const fields: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (!NOT_FIELDS.has(k)) fields.push(`${k}=${fieldValue(v)}`);
  }
  if (fields.length > 0) sentence = sentence === '' ? fields.join(' ') : `${sentence} ${fields.join(' ')}`;
  return `<${journalPriority(level)}>${oneLine(sentence)}\n`;
}

export function createLogger(level: LogLevel = 'info', opts: LoggerOptions = {}): Logger {
  const destination = opts.destination ?? pino.destination({ fd: 1, sync: true });
  if (isJournalStream(opts.env ?? process.env)) {
    // journald stamps every line itself; the hook rewrites each serialized line.
    return pino({ level, base: undefined, timestamp: false, hooks: { streamWrite: journalLine } }, destination);
  }
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
