/**
 * The documented JSON of `status --json` and `delayed --json`, as data: the help and the
 * manual page list it, and `checkSchema` holds a real answer against it (the tests run
 * it on the daemon's output, so a field added or renamed in the daemon without being
 * documented here fails them).
 */

import type { DaemonStatus, DelayedFile, DelayedReply, PeerStatus, SessionCounts } from '../control/protocol';
import type { PeerState } from '../peer/peer';

export type FieldType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'string[]' | 'object[]';

export interface FieldDoc {
  name: string;
  type: FieldType;
  nullable?: boolean;
  /** May be absent (a field of work not yet in every daemon build); still never undocumented. */
  optional?: boolean;
  /** Allowed values of a string. */
  values?: readonly string[];
  doc: string;
  /** The fields of an object, or of each element of an object[]. */
  fields?: FieldDoc[];
}

const PEER_STATES = ['connecting', 'up', 'down', 'stopped'] as const satisfies readonly PeerState[];

/** One documentation entry per field of T, no more, no fewer: the compiler keeps them in step. */
type Docs<T> = { [K in keyof T]-?: Omit<FieldDoc, 'name'> };

function fields<T>(docs: Docs<T>): FieldDoc[] {
  return Object.entries(docs as Record<string, Omit<FieldDoc, 'name'>>).map(([name, d]) => ({ name, ...d }));
}

const PEER_SCHEMA: FieldDoc[] = fields<PeerStatus>({
  id: { type: 'string', doc: 'peer id, from hosts.tab' },
  address: { type: 'string', doc: 'address or host name connected to' },
  port: { type: 'integer', doc: "lond's TCP port" },
  state: { type: 'string', values: PEER_STATES, doc: 'one of connecting, up, down, stopped' },
  keyMode: { type: 'string', values: ['ssl', 'local', 'insecure', 'none'],
    doc: 'how session keys are agreed with this peer: ssl, local, insecure (the 2002 ekey exchange), or none (no usable way: see lastError)',
  },
  sessions: { type: 'object', doc: 'TCP sessions',
    fields: fields<SessionCounts>({
      open: { type: 'integer', doc: 'sessions with a finished handshake (busy ones included)' },
      busy: { type: 'integer', doc: 'sessions carrying a request' },
      opening: { type: 'integer', doc: 'sessions connecting or in the handshake' },
      max: { type: 'integer', doc: 'gatewaycMaxSessions' },
    }),
  },
  queued: { type: 'integer', doc: 'requests waiting for a session' },
  failures: { type: 'integer', doc: 'consecutive failed attempts' },
  maxAttempts: { type: 'integer', doc: 'gatewaycMaxAttempts: failures after which the peer is down' },
  nextAttemptAt: { type: 'integer', nullable: true, doc: 'time of the next connection attempt' },
  lastError: { type: 'string', nullable: true, doc: 'the most recent failure, in words' },
  lastErrorAt: { type: 'integer', nullable: true, doc: 'when it happened' },
  upSince: { type: 'integer', nullable: true, doc: 'when the peer last came up (null unless up)' },
  handshakeMs: { type: 'number', nullable: true, doc: 'round-trip time of the last handshake' },
  p50Ms: { type: 'number', nullable: true, doc: 'median round-trip time of recent requests' },
  p99Ms: { type: 'number', nullable: true, doc: '99th percentile of the same' },
  delayed: { type: 'integer', doc: 'delayed messages waiting for this peer' },
  delivered: { type: 'integer', doc: 'delayed messages delivered since start' },
  requests: { type: 'integer', doc: 'requests carried since start' },
  conLost: { type: 'integer', doc: 'con_lost answers given since start' },
  clients: { type: 'integer', doc: 'client connections open on the peer socket' },
  socket: { type: 'string', nullable: true, doc: 'path of the peer socket (null if it could not be opened)' },
  socketFromSystemd: { type: 'boolean', doc: 'whether systemd passed the socket in' },
});

export const STATUS_SCHEMA: FieldDoc[] = fields<DaemonStatus>({
  version: { type: 'string', doc: 'version of the daemon' },
  pid: { type: 'integer', doc: 'its process id' },
  hostId: { type: 'string', doc: 'this server\'s lonHostID' },
  startedAt: { type: 'integer', doc: 'when the daemon started' },
  uptimeSec: { type: 'integer', doc: 'seconds since then' },
  configFiles: { type: 'string[]', doc: 'config files read, includes too, in order' },
  hostsFile: { type: 'string', doc: 'path of hosts.tab' },
  delayedDir: { type: 'string', doc: 'the spool of delayed messages' },
  buffered: {
    type: 'object', doc: 'request and answer bytes held in memory',
    fields: fields<DaemonStatus['buffered']>({
      bytes: { type: 'integer', doc: 'held now' },
      limit: { type: 'integer', doc: 'gatewaycMaxBufferedBytes' },
    }),
  },
  peers: { type: 'object[]', doc: 'one object per peer (only the named ones when PEER is given):', fields: PEER_SCHEMA },
});

export const DELAYED_SCHEMA: FieldDoc[] = fields<DelayedReply>({
  dir: { type: 'string', doc: 'the spool directory' },
  files: { type: 'object[]', doc: 'one object per waiting message, oldest first per peer:',
    fields: fields<DelayedFile>({
      name: { type: 'string', doc: 'file name in the spool' },
      peer: { type: 'string', doc: 'peer id it is for' },
      size: { type: 'integer', nullable: true, doc: 'bytes (null if the file went away meanwhile)' },
      mtime: { type: 'number', nullable: true, doc: 'time it was last written' },
      rejected: { type: 'string', nullable: true, doc: 'why the entry is set aside and will not be delivered (not a regular file, a link, too large, unreadable, empty...); null for a waiting message' },
    }),
  },
  notListed: {
    type: 'object', doc: 'entries beyond the first 1000 of each kind, counted but not listed',
    fields: fields<DelayedReply['notListed']>({
      waiting: { type: 'integer', doc: 'waiting messages not listed' },
      setAside: { type: 'integer', doc: 'entries set aside not listed' },
    }),
  },
});

function typeOk(t: FieldType, v: unknown): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'string[]':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'object[]':
      return Array.isArray(v) && v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x));
  }
}

/**
 * Problems of `value` against `fields`, as `path: what` strings; empty when it matches.
 * Both ways: a documented field that is missing and a field that is not documented.
 */
export function checkSchema(value: unknown, fields: FieldDoc[], at = ''): string[] {
  const where = at === '' ? '(top)' : at;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${where}: not an object`];
  const obj = value as Record<string, unknown>;
  const problems: string[] = [];
  const known = new Set(fields.map((f) => f.name));
  for (const key of Object.keys(obj)) {
    if (!known.has(key)) problems.push(`${at}${key}: not documented`);
  }
  for (const f of fields) {
    const p = `${at}${f.name}`;
    if (!(f.name in obj)) {
      if (!f.optional) problems.push(`${p}: missing`);
      continue;
    }
    const v = obj[f.name];
    if (v === null) {
      if (!f.nullable) problems.push(`${p}: null, expected ${f.type}`);
      continue;
    }
    if (!typeOk(f.type, v)) {
      problems.push(`${p}: expected ${f.type}, got ${JSON.stringify(v)}`);
      continue;
    }
    if (f.values && !f.values.includes(v as string)) problems.push(`${p}: ${JSON.stringify(v)} is not one of ${f.values.join(', ')}`);
    if (f.fields && f.type === 'object') problems.push(...checkSchema(v, f.fields, `${p}.`));
    if (f.fields && f.type === 'object[]') (v as unknown[]).forEach((x, i) => problems.push(...checkSchema(x, f.fields as FieldDoc[], `${p}[${i}].`)));
  }
  return problems;
}
