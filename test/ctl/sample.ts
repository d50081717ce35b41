import type { DaemonStatus, PeerStatus } from '../../src/control/protocol';

/** A fixed moment, so that "in 12 s" and "3 min ago" come out the same every run. */
export const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);

function peer(id: string, over: Partial<PeerStatus>): PeerStatus {
  return {
    id,
    address: `${id}.example`,
    port: 5663,
    state: 'up',
    keyMode: 'insecure',
    sessions: { open: 1, busy: 0, opening: 0, max: 4 },
    queued: 0,
    failures: 0,
    maxAttempts: 5,
    nextAttemptAt: null,
    lastError: null,
    lastErrorAt: null,
    upSince: NOW - 3 * 3600_000,
    handshakeMs: 14,
    p50Ms: 0.8,
    p99Ms: 12.4,
    delayed: 0,
    delivered: 0,
    requests: 1520,
    conLost: 0,
    clients: 2,
    socket: `/run/gatewayc/sockets/${id}`,
    socketFromSystemd: true,
    ...over,
  };
}

/** Three peers: one up and busy, one up after a past error, one down. */
export function sampleStatus(): DaemonStatus {
  return {
    version: '0.1.0',
    pid: 4242,
    hostId: 'msu1',
    startedAt: NOW - (2 * 86400 + 5 * 3600) * 1000,
    uptimeSec: 2 * 86400 + 5 * 3600 + 7,
    configFiles: ['/etc/gatewayc/gatewayc.conf'],
    hostsFile: '/etc/gatewayc/hosts.tab',
    delayedDir: '/var/spool/gatewayc/delayed',
    buffered: { bytes: 0, limit: 268435456 },
    peers: [
      peer('msul2', { sessions: { open: 3, busy: 2, opening: 0, max: 4 }, queued: 1, requests: 88211 }),
      peer('ucsd1', { lastError: 'peer closed the connection', lastErrorAt: NOW - 40 * 60_000, upSince: NOW - 39 * 60_000, conLost: 1, p50Ms: 31, p99Ms: 1250 }),
      peer('fsu3', {
        state: 'down',
        keyMode: 'insecure',
        sessions: { open: 0, busy: 0, opening: 0, max: 4 },
        failures: 5,
        nextAttemptAt: NOW + 12_400,
        lastError: 'connection refused by 10.0.0.3:5663 (is lond running?)',
        lastErrorAt: NOW - 48_000,
        upSince: null,
        handshakeMs: null,
        p50Ms: null,
        p99Ms: null,
        delayed: 3,
        requests: 7,
        conLost: 7,
        clients: 0,
      }),
    ],
  };
}
