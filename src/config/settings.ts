/**
 * Every config key, its default and its meaning in one table (KEYS), and the one place
 * values are validated into a typed Settings object. Nothing downstream re-checks a
 * value: a bad one stops the daemon here, naming the file and line that set it.
 */
import * as path from 'node:path';
import { ConfResult, ConfValue } from './conf';
import { ConfigError, Diag } from './diag';
import { MAX_SOCKET_PATH_BYTES, validPeerId } from './hosts';

export type KeyMode = 'auto' | 'ssl' | 'local' | 'insecure';
export type TlsPeerName = 'strict' | 'ca-only';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface Settings {
  lonHostID: string;
  lonTabDir: string;
  lonSockDir: string;
  londPort: number;
  delayedDir: string;
  controlSocket: string;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  maxSessions: number;
  idleTimeoutMs: number;
  maxRequestBytes: number;
  maxAnswerBytes: number;
  maxClientsPerPeer: number;
  maxQueuePerPeer: number;
  maxBufferedBytes: number;
  retryMaxMs: number;
  rescanIntervalMs: number;
  shutdownTimeoutMs: number;
  keyMode: KeyMode;
  certDir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  allowInsecure: boolean;
  tlsPeerName: TlsPeerName;
  localKeyDir: string;
  logLevel: LogLevel;
  /** Group given to sockets the daemon creates itself; undefined = leave as is. */
  socketGroup: string | undefined;
}

/**
 * How a value is read: `path` is resolved against the directory of the config file that
 * set it; `certFile` against the certificate directory; `duration` is seconds (stored as
 * ms); `count` a positive integer; `enum` one of `choices` (case-insensitive).
 */
export type KeyKind = 'hostId' | 'path' | 'certFile' | 'port' | 'duration' | 'count' | 'bool' | 'enum' | 'group';

export interface KeySpec {
  key: string;
  /** The Settings field it fills. */
  field: keyof Settings;
  default: string | undefined;
  doc: string;
  kind: KeyKind;
  choices?: readonly string[];
}

const KEY_MODES: readonly KeyMode[] = ['auto', 'ssl', 'local', 'insecure'];
const TLS_PEER_NAMES: readonly TlsPeerName[] = ['strict', 'ca-only'];
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];
/** setTimeout silently turns anything above 2^31-1 ms into 1 ms. */
export const MAX_DURATION_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

export const KEYS: readonly KeySpec[] = [
  { key: 'lonHostID', field: 'lonHostID', kind: 'hostId', default: undefined,
    doc: "This server's id, as in hosts.tab. Required. Its own hosts.tab line gets no socket." },
  { key: 'lonTabDir', field: 'lonTabDir', kind: 'path', default: '/etc/gatewayc',
    doc: 'Directory holding hosts.tab.' },
  { key: 'lonSockDir', field: 'lonSockDir', kind: 'path', default: '/run/gatewayc/sockets',
    doc: 'Directory of the per-peer UNIX sockets, one named after each peer id.' },
  { key: 'londPort', field: 'londPort', kind: 'port', default: '5663',
    doc: "TCP port of lond on every peer." },
  { key: 'gatewaycDelayedDir', field: 'delayedDir', kind: 'path', default: '/var/spool/gatewayc/delayed',
    doc: 'Spool of delayed messages, one file per message named <anything>.<peer id>.' },
  { key: 'gatewaycControlSocket', field: 'controlSocket', kind: 'path', default: '/run/gatewayc/control',
    doc: 'UNIX socket gatewayctl talks to.' },
  { key: 'gatewaycConnectTimeout', field: 'connectTimeoutMs', kind: 'duration', default: '10',
    doc: 'Seconds a TCP connect to a peer may take.' },
  { key: 'gatewaycHandshakeTimeout', field: 'handshakeTimeoutMs', kind: 'duration', default: '60',
    doc: 'Seconds each step of the session handshake may take.' },
  { key: 'gatewaycRequestTimeout', field: 'requestTimeoutMs', kind: 'duration', default: '300',
    doc: 'Seconds from the arrival of a request to its answer; after that the client gets con_lost.' },
  { key: 'gatewaycMaxAttempts', field: 'maxAttempts', kind: 'count', default: '5',
    doc: 'Consecutive connection failures after which a peer is marked down.' },
  { key: 'gatewaycMaxSessions', field: 'maxSessions', kind: 'count', default: '4',
    doc: 'TCP sessions kept open to each peer at most.' },
  { key: 'gatewaycIdleTimeout', field: 'idleTimeoutMs', kind: 'duration', default: '300',
    doc: 'Seconds after which an idle session beyond the first is closed.' },
  { key: 'gatewaycMaxRequestBytes', field: 'maxRequestBytes', kind: 'count', default: '4194304',
    doc: 'Longest request line (bytes, without the newline) a client may send; the client gets an error line (`error: request longer than ...`) and the rest of that line is discarded.' },
  { key: 'gatewaycMaxAnswerBytes', field: 'maxAnswerBytes', kind: 'count', default: '67108864',
    doc: 'Longest answer line (bytes) accepted from a peer; a longer one closes that session.' },
  { key: 'gatewaycMaxClients', field: 'maxClientsPerPeer', kind: 'count', default: '1024',
    doc: 'Client connections at once on each peer socket. When all are taken, a new client gets the slot of the one idle longest (nothing asked, or its request answered; a half-sent line counts as nothing asked), which gets `con_lost`; only when none is idle is the new client answered `con_lost`.' },
  { key: 'gatewaycMaxQueue', field: 'maxQueuePerPeer', kind: 'count', default: '1024',
    doc: 'Requests waiting for a session, per peer; beyond that new requests are answered con_lost.' },
  { key: 'gatewaycMaxBufferedBytes', field: 'maxBufferedBytes', kind: 'count', default: '268435456',
    doc: 'Bytes of requests and answers the daemon holds in memory at most, for all peers and clients together (plus one answer of gatewaycMaxAnswerBytes); when it is used up, clients wait, and a client that reads none of its answers for 10 s is disconnected. Takes effect at restart.' },
  { key: 'gatewaycRetryMax', field: 'retryMaxMs', kind: 'duration', default: '60',
    doc: 'Cap in seconds of the reconnect back-off; also how often a down peer is retried.' },
  { key: 'gatewaycRescanInterval', field: 'rescanIntervalMs', kind: 'duration', default: '60',
    doc: 'Seconds between scans of the delayed-message spool.' },
  { key: 'gatewaycShutdownTimeout', field: 'shutdownTimeoutMs', kind: 'duration', default: '5',
    doc: 'Seconds a stop (restart, upgrade) may take to answer what clients have already asked; what lond has not answered by then gets con_lost. Under systemd keep it below the unit\'s TimeoutAbortSec= (10 s) and TimeoutStopSec= (90 s), or raise those with it.' },
  { key: 'gatewaycKeyMode', field: 'keyMode', kind: 'enum', default: 'auto', choices: KEY_MODES,
    doc: 'How session keys are negotiated (PROTOCOL.md): auto, ssl, local or insecure (the 2002 ekey exchange). auto uses ssl when certificates are configured, local for a peer at 127.0.0.1, and insecure only when there are no certificates at all and loncAllowInsecure is on; configured but unusable certificates leave the other peers without a session rather than downgrade them.' },
  { key: 'lonCertificateDirectory', field: 'certDir', kind: 'path', default: '/etc/gatewayc/certs',
    doc: "Directory of the network's certificates." },
  { key: 'lonnetCertificateAuthority', field: 'caFile', kind: 'certFile', default: 'loncapaCA.pem',
    doc: "The network's CA certificate: a file name in lonCertificateDirectory, or an absolute path." },
  { key: 'lonnetCertificate', field: 'certFile', kind: 'certFile', default: 'lonhostcert.pem',
    doc: "This host's certificate: a file name in lonCertificateDirectory, or an absolute path." },
  { key: 'lonnetPrivateKey', field: 'keyFile', kind: 'certFile', default: 'lonhostkey.pem',
    doc: "This host's private key: a file name in lonCertificateDirectory, or an absolute path." },
  { key: 'loncAllowInsecure', field: 'allowInsecure', kind: 'bool', default: '1',
    doc: 'Whether keyMode auto may fall back to the 2002 ekey exchange when no certificates are configured.' },
  { key: 'gatewaycTlsPeerName', field: 'tlsPeerName', kind: 'enum', default: 'strict', choices: TLS_PEER_NAMES,
    doc: "Whom a peer's certificate must name in the ssl key mode. strict: its CN or a DNS/IP subject alternative name is the peer's host id or its host name from hosts.tab (any case); otherwise the key exchange fails. ca-only: any certificate signed by the network's CA is accepted, with a warning; then any host holding a network certificate can pose as any peer and read its encrypt: requests." },
  { key: 'gatewaycLocalKeyDir', field: 'localKeyDir', kind: 'path', default: '/run/gatewayc/keys',
    doc: "Directory for the one-time key files of the local key mode (peers on 127.0.0.1): lond must be able to read and delete them (the package makes it 2770, owner gatewayc, group gatewaycSocketGroup)." },
  { key: 'gatewaycLogLevel', field: 'logLevel', kind: 'enum', default: 'info', choices: LOG_LEVELS,
    doc: 'Least severe log level written.' },
  { key: 'gatewaycSocketGroup', field: 'socketGroup', kind: 'group', default: undefined,
    doc: "The web server's group (name or number; LON-CAPA's is www): the group of the peer sockets, of the delayed-message spool and of gatewaycLocalKeyDir, and the group the service joins to read and delete delayed messages. Under systemd gatewayc-generator applies it to the units and directories; unset, they use www-data. A daemon run by hand gives it to the sockets it creates; unset, they keep the default group." },
];

const SPEC = new Map(KEYS.map((k) => [k.key, k]));

/** A key's built-in default, as the documentation shows it. */
export function defaultOf(key: string): string {
  return SPEC.get(key)?.default ?? '';
}

const BOOLEANS = new Map<string, boolean>([
  ['1', true], ['yes', true], ['on', true], ['true', true],
  ['0', false], ['no', false], ['off', false], ['false', false],
]);

/** A value and where it came from; no file for a built-in default. */
interface Raw { value: string; from: ConfValue | undefined }

export function buildSettings(conf: ConfResult, opts: { requireHostId?: boolean } = {}): { settings: Settings; warnings: Diag[] } {
  const raw = (key: string): Raw => {
    const from = conf.values.get(key);
    const spec = SPEC.get(key);
    if (spec === undefined) throw new Error(`settings: no spec for ${key}`);
    return { value: from?.value ?? spec.default ?? '', from };
  };
  const bad = (key: string, r: Raw, what: string): ConfigError =>
    new ConfigError({ file: r.from?.file ?? '', line: r.from?.line, message: `${key} ${what}, got ${JSON.stringify(r.value)}` });

  const hostId = (key: string): string => {
    const r = raw(key);
    if (r.from === undefined) {
      if (opts.requireHostId === false) return '';
      throw new ConfigError({ file: conf.files[0] ?? '', message: `${key} is not set: add "PerlSetVar ${key} <id>" with this server's id from hosts.tab` });
    }
    const reason = validPeerId(r.value);
    if (reason !== undefined) throw bad(key, r, reason);
    return r.value;
  };
  const dirOf = (r: Raw): string => (r.from ? path.dirname(r.from.file) : '/');
  const pathOf = (key: string): string => {
    const r = raw(key);
    if (r.value === '') throw bad(key, r, 'must be a path');
    return path.resolve(dirOf(r), r.value);
  };
  const certFile = (key: string, certDir: string): string => {
    const r = raw(key);
    if (r.value === '') throw bad(key, r, 'must be a file name in lonCertificateDirectory or an absolute path');
    return path.resolve(certDir, r.value);
  };
  const port = (key: string): number => {
    const r = raw(key);
    const n = /^\d{1,5}$/.test(r.value) ? Number(r.value) : NaN;
    if (!(n >= 1 && n <= 65535)) throw bad(key, r, 'must be a port number from 1 to 65535');
    return n;
  };
  const count = (key: string): number => {
    const r = raw(key);
    const n = /^\d+$/.test(r.value) ? Number(r.value) : NaN;
    if (!(n >= 1 && Number.isSafeInteger(n))) throw bad(key, r, 'must be a positive integer');
    return n;
  };
  const duration = (key: string): number => {
    const r = raw(key);
    const s = /^(?:\d+(?:\.\d*)?|\.\d+)$/.test(r.value) ? Number(r.value) : NaN;
    if (!(s > 0 && Number.isFinite(s))) throw bad(key, r, 'must be a number of seconds greater than 0');
    if (s > MAX_DURATION_SECONDS) throw bad(key, r, `must be at most ${MAX_DURATION_SECONDS} seconds`);
    const ms = Math.round(s * 1000);
    if (ms < 1) throw bad(key, r, 'must be at least 0.001 seconds');
    return ms;
  };
  const bool = (key: string): boolean => {
    const r = raw(key);
    const b = BOOLEANS.get(r.value.toLowerCase());
    if (b === undefined) throw bad(key, r, 'must be one of 1/0, yes/no, on/off, true/false');
    return b;
  };
  const choice = <T extends string>(key: string, choices: readonly T[]): T => {
    const r = raw(key);
    const lower = r.value.toLowerCase();
    const v = choices.find((c) => c === lower);
    if (v === undefined) throw bad(key, r, `must be one of ${choices.join(', ')}`);
    return v;
  };
  const group = (key: string): string | undefined => {
    const r = raw(key);
    if (r.from === undefined) return undefined;
    if (!/^(?:[A-Za-z_][A-Za-z0-9_.-]*\$?|\d+)$/.test(r.value)) throw bad(key, r, 'must be a group name or number');
    return r.value;
  };

  const lonHostID = hostId('lonHostID');
  const lonSockDir = pathOf('lonSockDir');
  // Even a one-character id must fit after "<lonSockDir>/" in a UNIX socket path.
  if (Buffer.byteLength(lonSockDir) + 2 > MAX_SOCKET_PATH_BYTES) {
    throw bad('lonSockDir', raw('lonSockDir'), `is too long: "<lonSockDir>/<peer id>" must fit in a UNIX socket path of ${MAX_SOCKET_PATH_BYTES} bytes`);
  }
  const controlSocket = pathOf('gatewaycControlSocket');
  if (Buffer.byteLength(controlSocket) > MAX_SOCKET_PATH_BYTES) {
    throw bad('gatewaycControlSocket', raw('gatewaycControlSocket'), `is too long for a UNIX socket path (at most ${MAX_SOCKET_PATH_BYTES} bytes)`);
  }
  const certDir = pathOf('lonCertificateDirectory');

  const settings: Settings = {
    lonHostID,
    lonTabDir: pathOf('lonTabDir'),
    lonSockDir,
    londPort: port('londPort'),
    delayedDir: pathOf('gatewaycDelayedDir'),
    controlSocket,
    connectTimeoutMs: duration('gatewaycConnectTimeout'),
    handshakeTimeoutMs: duration('gatewaycHandshakeTimeout'),
    requestTimeoutMs: duration('gatewaycRequestTimeout'),
    maxAttempts: count('gatewaycMaxAttempts'),
    maxSessions: count('gatewaycMaxSessions'),
    idleTimeoutMs: duration('gatewaycIdleTimeout'),
    maxRequestBytes: count('gatewaycMaxRequestBytes'),
    maxAnswerBytes: count('gatewaycMaxAnswerBytes'),
    maxClientsPerPeer: count('gatewaycMaxClients'),
    maxQueuePerPeer: count('gatewaycMaxQueue'),
    maxBufferedBytes: count('gatewaycMaxBufferedBytes'),
    retryMaxMs: duration('gatewaycRetryMax'),
    rescanIntervalMs: duration('gatewaycRescanInterval'),
    shutdownTimeoutMs: duration('gatewaycShutdownTimeout'),
    keyMode: choice('gatewaycKeyMode', KEY_MODES),
    certDir,
    caFile: certFile('lonnetCertificateAuthority', certDir),
    certFile: certFile('lonnetCertificate', certDir),
    keyFile: certFile('lonnetPrivateKey', certDir),
    allowInsecure: bool('loncAllowInsecure'),
    tlsPeerName: choice('gatewaycTlsPeerName', TLS_PEER_NAMES),
    localKeyDir: pathOf('gatewaycLocalKeyDir'),
    logLevel: choice('gatewaycLogLevel', LOG_LEVELS),
    socketGroup: group('gatewaycSocketGroup'),
  };

  return { settings, warnings: unknownKeyWarnings(conf) };
}

/**
 * A misspelt gatewayc key would silently fall back to its default, so it is a warning.
 * LON-CAPA's own hundreds of keys are not ours to judge, except one that differs from
 * a key we read only in case (keys are case-sensitive, so it would be ignored).
 */
function unknownKeyWarnings(conf: ConfResult): Diag[] {
  const warnings: Diag[] = [];
  for (const [key, v] of conf.values) {
    if (SPEC.has(key)) continue;
    // Lengths first: a key may be a megabyte long, and is compared with every known key.
    const sameButCase = KEYS.find((k) => k.key.length === key.length && k.key.toLowerCase() === key.toLowerCase());
    if (sameButCase) {
      warnings.push({ file: v.file, line: v.line, severity: 'warning', message: `unknown key ${key} (did you mean ${sameButCase.key}? keys are case-sensitive)` });
      continue;
    }
    if (key.slice(0, 8).toLowerCase() !== 'gatewayc') continue;
    const near = nearestKey(key);
    const hint = near === undefined ? '' : ` (did you mean ${near}?)`;
    warnings.push({ file: v.file, line: v.line, severity: 'warning', message: `unknown key ${key}${hint}` });
  }
  return warnings;
}

function nearestKey(key: string): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  // The distance is at least the difference in length: a key too long or too short to
  // be a near miss is not compared (a megabyte-long key would cost seconds otherwise).
  const within = nearMissDistance(key);
  for (const k of KEYS) {
    if (Math.abs(k.key.length - key.length) > within) continue;
    const d = editDistance(key.toLowerCase(), k.key.toLowerCase());
    if (d < bestDist) {
      best = k.key;
      bestDist = d;
    }
  }
  return bestDist <= within ? best : undefined;
}

/** A near miss is a typo or two; anything further is a different key, not a misspelling. */
function nearMissDistance(key: string): number {
  return Math.max(2, Math.floor(key.length / 8));
}

export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
