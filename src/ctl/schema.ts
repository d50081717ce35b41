/**
 * The documented JSON of `status --json` and `delayed --json`, as data: the help and the
 * manual page list it, and `checkSchema` holds a real answer against it (the tests run
 * it on the daemon's output, so a field added or renamed in the daemon without being
 * documented here fails them).
 */

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

export const PEER_STATES = ['connecting', 'up', 'down', 'stopped'] as const;

export const PEER_SCHEMA: FieldDoc[] = [
  { name: 'id', type: 'string', doc: 'peer id, from hosts.tab' },
  { name: 'address', type: 'string', doc: 'address or host name connected to' },
  { name: 'port', type: 'integer', doc: "lond's TCP port" },
  { name: 'state', type: 'string', values: PEER_STATES, doc: 'one of connecting, up, down, stopped' },
  {
    name: 'keyMode', type: 'string', values: ['ssl', 'local', 'insecure', 'none'],
    doc: 'how session keys are agreed with this peer: ssl, local, insecure (the 2002 ekey exchange), or none (no usable way: see lastError)',
  },
  {
    name: 'sessions', type: 'object', doc: 'TCP sessions',
    fields: [
      { name: 'open', type: 'integer', doc: 'sessions with a finished handshake (busy ones included)' },
      { name: 'busy', type: 'integer', doc: 'sessions carrying a request' },
      { name: 'opening', type: 'integer', doc: 'sessions connecting or in the handshake' },
      { name: 'max', type: 'integer', doc: 'gatewaycMaxSessions' },
    ],
  },
  { name: 'queued', type: 'integer', doc: 'requests waiting for a session' },
  { name: 'failures', type: 'integer', doc: 'consecutive failed attempts' },
  { name: 'maxAttempts', type: 'integer', doc: 'gatewaycMaxAttempts: failures after which the peer is down' },
  { name: 'nextAttemptAt', type: 'integer', nullable: true, doc: 'time of the next connection attempt' },
  { name: 'lastError', type: 'string', nullable: true, doc: 'the most recent failure, in words' },
  { name: 'lastErrorAt', type: 'integer', nullable: true, doc: 'when it happened' },
  { name: 'upSince', type: 'integer', nullable: true, doc: 'when the peer last came up (null unless up)' },
  { name: 'handshakeMs', type: 'number', nullable: true, doc: 'round-trip time of the last handshake' },
  { name: 'p50Ms', type: 'number', nullable: true, doc: 'median round-trip time of recent requests' },
  { name: 'p99Ms', type: 'number', nullable: true, doc: '99th percentile of the same' },
  { name: 'delayed', type: 'integer', doc: 'delayed messages waiting for this peer' },
  { name: 'delivered', type: 'integer', doc: 'delayed messages delivered since start' },
  { name: 'requests', type: 'integer', doc: 'requests carried since start' },
  { name: 'conLost', type: 'integer', doc: 'con_lost answers given since start' },
  { name: 'clients', type: 'integer', doc: 'client connections open on the peer socket' },
  { name: 'socket', type: 'string', nullable: true, doc: 'path of the peer socket (null if it could not be opened)' },
  { name: 'socketFromSystemd', type: 'boolean', doc: 'whether systemd passed the socket in' },
];

export const STATUS_SCHEMA: FieldDoc[] = [
  { name: 'version', type: 'string', doc: 'version of the daemon' },
  { name: 'pid', type: 'integer', doc: 'its process id' },
  { name: 'hostId', type: 'string', doc: 'this server\'s lonHostID' },
  { name: 'startedAt', type: 'integer', doc: 'when the daemon started' },
  { name: 'uptimeSec', type: 'integer', doc: 'seconds since then' },
  { name: 'configFiles', type: 'string[]', doc: 'config files read, includes too, in order' },
  { name: 'hostsFile', type: 'string', doc: 'path of hosts.tab' },
  { name: 'delayedDir', type: 'string', doc: 'the spool of delayed messages' },
  { name: 'peers', type: 'object[]', doc: 'one object per peer (only the named ones when PEER is given):', fields: PEER_SCHEMA },
];

export const DELAYED_SCHEMA: FieldDoc[] = [
  { name: 'dir', type: 'string', doc: 'the spool directory' },
  {
    name: 'files', type: 'object[]', doc: 'one object per waiting message, oldest first per peer:',
    fields: [
      { name: 'name', type: 'string', doc: 'file name in the spool' },
      { name: 'peer', type: 'string', doc: 'peer id it is for' },
      { name: 'size', type: 'integer', nullable: true, doc: 'bytes (null if the file went away meanwhile)' },
      { name: 'mtime', type: 'number', nullable: true, doc: 'time it was last written' },
    ],
  },
];

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
