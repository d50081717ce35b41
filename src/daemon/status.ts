import type { Loaded } from '../config/load';
import type { DaemonStatus, PeerStatus } from '../control/protocol';
import { VERSION } from '../version';

export interface StatusSources {
  loaded: Loaded;
  startedAt: number;
  now: number;
  buffered: { bytes: number; limit: number };
  peers: PeerStatus[];
}

/** The answer to `gatewayctl status` (control/protocol.ts DaemonStatus). */
export function buildStatus(s: StatusSources): DaemonStatus {
  return {
    version: VERSION,
    pid: process.pid,
    hostId: s.loaded.settings.lonHostID,
    startedAt: s.startedAt,
    uptimeSec: Math.round((s.now - s.startedAt) / 1000),
    configFiles: s.loaded.files,
    hostsFile: s.loaded.hostsFile,
    delayedDir: s.loaded.settings.delayedDir,
    buffered: s.buffered,
    peers: s.peers,
  };
}

/** What the STATUS= line needs of a peer: cheap counters, read every few seconds. */
export interface LinePeer {
  state: string;
  openSessions: number;
  queued: number;
  delayed: number;
  requests: number;
}

/**
 * systemd's one-line STATUS=: peers up, sessions, queue, request rate since the last line,
 * delayed backlog — or, with no peers, what to do about it.
 */
export class StatusLine {
  private lastRequests = 0;
  private lastAt: number;

  constructor(now: number) {
    this.lastAt = now;
  }

  render(peers: LinePeer[], hostsFile: string, now: number): string {
    if (peers.length === 0) return `No peers configured: add servers to ${hostsFile}, then systemctl reload gatewayc`;
    let up = 0;
    let sessions = 0;
    let queued = 0;
    let delayed = 0;
    let requests = 0;
    for (const p of peers) {
      if (p.state === 'up') up++;
      sessions += p.openSessions;
      queued += p.queued;
      delayed += p.delayed;
      requests += p.requests;
    }
    const rate = ((requests - this.lastRequests) * 1000) / Math.max(1, now - this.lastAt);
    this.lastRequests = requests;
    this.lastAt = now;
    return `${up}/${peers.length} peers up, ${sessions} sessions, ${queued} queued, ${rate.toFixed(1)} req/s, ${delayed} delayed waiting`;
  }
}
