/**
 * The control socket's protocol, shared by the daemon (which answers) and gatewayctl
 * (which asks and prints): JSON lines, one request object `{"op": ..., ...}` per line, one
 * reply per line (`{"ok": true, ...}` or `{"ok": false, "error": "..."}`). The schema
 * documentation (ctl/schema.ts) is typed against these shapes, so a field added here
 * without its documentation does not compile.
 */
import type { PeerSnapshot } from '../peer/peer';

export type ControlRequest = { op: string; [k: string]: unknown };

/** Reply to `{"op":"reload"}`: what changed, or why the new configuration was refused. */
export interface ReloadResult {
  ok: boolean;
  error?: string;
  added: string[];
  removed: string[];
  reconnected: string[];
  warnings: string[];
}

export type SessionCounts = PeerSnapshot['sessions'];

/** A peer as status shows it: the peer's own snapshot, plus its socket and spool. */
export interface PeerStatus extends PeerSnapshot {
  id: string;
  address: string;
  port: number;
  delayed: number;
  delivered: number;
  clients: number;
  socket: string | null;
  socketFromSystemd: boolean;
}

export interface DaemonStatus {
  version: string;
  pid: number;
  hostId: string;
  startedAt: number;
  uptimeSec: number;
  configFiles: string[];
  hostsFile: string;
  delayedDir: string;
  /** Request and answer bytes held in memory now, and the limit (gatewaycMaxBufferedBytes). */
  buffered: { bytes: number; limit: number };
  peers: PeerStatus[];
}

export interface DelayedFile {
  name: string;
  peer: string;
  size: number | null;
  mtime: number | null;
  /** Why the entry will not be delivered (set aside); null for a waiting message. */
  rejected: string | null;
}

export interface DelayedReply {
  dir: string;
  files: DelayedFile[];
  /** Entries beyond the listing's limit, counted, not listed. */
  notListed: { waiting: number; setAside: number };
}
