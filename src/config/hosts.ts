/**
 * hosts.tab, LON-CAPA's peer table. A bad line costs only that peer: it is reported
 * with its line number and skipped, so one typo never takes the whole network down.
 */
import { Diag } from './diag';

export interface PeerEntry {
  id: string;
  domain: string;
  role: string;
  hostname: string;
  /** What to connect to: an IP address, or a name resolved at connect time. */
  address: string;
  line: number;
}

export const MAX_PEER_ID_BYTES = 64;
/** sun_path is 108 bytes on Linux, one of them the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Peer ids become file names (`<lonSockDir>/<id>`, delayed-message suffixes) and
 * systemd instance names, so anything that could escape the directory or confuse a
 * shell or a unit name is refused. Returns the reason, phrased to follow the id.
 */
export function validPeerId(id: string): string | undefined {
  if (id === '') return 'is empty';
  if (id === '.' || id === '..') return 'must not be "." or ".."';
  if (id.includes('/')) return 'must not contain "/"';
  if (hasControl(id)) return 'must not contain control characters';
  if (/\s/u.test(id)) return 'must not contain whitespace';
  if (Buffer.byteLength(id, 'utf8') > MAX_PEER_ID_BYTES) return `is longer than ${MAX_PEER_ID_BYTES} bytes`;
  return undefined;
}

/** C0 and C1 control characters and DEL. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/** The socket path of a peer, as the front end will create it. */
export function peerSocketPath(sockDir: string, id: string): string {
  let end = sockDir.length;
  while (end > 0 && sockDir[end - 1] === '/') end--;
  return `${sockDir.slice(0, end)}/${id}`;
}

/** Later LON-CAPA writes a protocol where the 2002 format had the address. */
const PROTOCOL_WORD = /^https?$/i;

export function parseHostsTab(text: string, file: string, opts: { ownId: string; sockDir?: string }): { peers: PeerEntry[]; diags: Diag[] } {
  const diags: Diag[] = [];
  const byId = new Map<string, PeerEntry>();
  const warn = (line: number, message: string): void => {
    diags.push({ file, line, severity: 'warning', message });
  };

  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(':').map((f) => f.trim());
    if (fields.length < 4) {
      warn(line, `malformed line skipped: expected id:domain:role:name:address (or id:domain:role:hostname:protocol:...), got ${fields.length} field${fields.length === 1 ? '' : 's'}`);
      return;
    }
    const [id, domain, role, hostname] = fields;
    if (id === opts.ownId && id !== '') return;
    const bad = validPeerId(id);
    if (bad !== undefined) {
      warn(line, `line skipped: peer id ${JSON.stringify(id)} ${bad}`);
      return;
    }
    if (opts.sockDir !== undefined) {
      const sock = peerSocketPath(opts.sockDir, id);
      const len = Buffer.byteLength(sock, 'utf8');
      if (len > MAX_SOCKET_PATH_BYTES) {
        warn(line, `line skipped: peer id ${JSON.stringify(id)} makes the socket path ${sock} ${len} bytes long; a UNIX socket path can be at most ${MAX_SOCKET_PATH_BYTES} bytes (shorten lonSockDir or the id)`);
        return;
      }
    }
    const fifth = fields[4];
    const address = fifth !== undefined && fifth !== '' && !PROTOCOL_WORD.test(fifth) ? fifth : hostname;
    if (address === '') {
      warn(line, `line skipped: peer ${id} has neither a host name nor an address`);
      return;
    }
    if (/\s/u.test(address) || hasControl(address)) {
      warn(line, `line skipped: peer ${id} has an invalid address ${JSON.stringify(address)}`);
      return;
    }
    const previous = byId.get(id);
    if (previous !== undefined) {
      warn(line, `duplicate peer id ${id} (also on line ${previous.line}); line ${line} is used`);
      // Delete first so the entry moves to the position of the line that wins.
      byId.delete(id);
    }
    byId.set(id, { id, domain, role, hostname, address, line });
  });

  return { peers: [...byId.values()], diags };
}
