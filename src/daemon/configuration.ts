/**
 * The one way a configuration is read and judged: the config files and hosts.tab (config/),
 * then the network's certificates where the ssl key mode may use them (pki/), with one
 * severity policy — used by the daemon at start and on reload, by `gatewayc --check` and
 * by `gatewayctl check`, so that they can never disagree about a file.
 */
import { Diag } from '../config/diag';
import type { PeerEntry } from '../config/hosts';
import { Loaded, loadAll } from '../config/load';
import type { Settings } from '../config/settings';
import { certificateDiagnostics, certificatesWanted, resolveKeyMode } from '../peer/keymode';
import type { PeerSettings } from '../peer/peer';
import type { SessionKeyMode } from '../peer/session';
import { checkPki, PkiCheck } from '../pki/check';

/** Config + hosts.tab, honouring --default-host-id (the unit passes the host name). Throws ConfigError. */
export function loadConfiguration(files: string[], defaultHostId: string | undefined): Loaded {
  const loaded = loadAll(files, { requireHostId: defaultHostId === undefined });
  if (!loaded.settings.lonHostID && defaultHostId !== undefined) {
    loaded.settings.lonHostID = defaultHostId;
    loaded.peers = loaded.peers.filter((p) => p.id !== defaultHostId);
  }
  return loaded;
}

export interface Certificates {
  /** The check itself; undefined when no key mode that may use TLS is configured. */
  pki: PkiCheck | undefined;
  /** What to tell the administrator, with the severity every consumer uses. */
  diags: Diag[];
  /** Said once at start: auto without certificates, in words. */
  note?: string;
}

/**
 * The network's certificates, checked once per start/reload/check where ssl may be used,
 * and what is said about them: the policy (keymode/resolve) depends on the peers, since
 * broken certificates under auto leave only peers not at 127.0.0.1 without a session.
 * Under auto with no certificate at all, nothing is wrong: the 2002 exchange (or local)
 * is what such a network runs.
 */
export function checkCertificates(s: Settings, peers: readonly PeerEntry[], now: Date = new Date()): Certificates {
  const pki = certificatesWanted(s) ? checkPki({ ca: s.caFile, cert: s.certFile, key: s.keyFile }, now, { hostId: s.lonHostID }) : undefined;
  const all = certificateDiagnostics(s, peers, pki);
  const note = all.find((d) => d.severity === 'info')?.message;
  const diags: Diag[] = all.flatMap((d) => (d.severity === 'info' ? [] : [{ file: d.file, severity: d.severity, message: d.message }]));
  return { pki, diags, ...(note !== undefined ? { note } : {}) };
}

/** How one peer's sessions get their key (keymode/resolve: auto never downgrades while certificates are configured). */
function keyModeFor(s: Settings, p: PeerEntry, pki: PkiCheck | undefined): SessionKeyMode {
  return resolveKeyMode(s, p, pki);
}

/** What one peer runs with, from the settings, its hosts.tab line and the certificates. */
export function peerSettingsFor(s: Settings, p: PeerEntry, pki: PkiCheck | undefined): PeerSettings {
  return {
    keyMode: keyModeFor(s, p, pki),
    hostId: s.lonHostID,
    address: p.address,
    port: s.londPort,
    maxSessions: s.maxSessions,
    connectTimeoutMs: s.connectTimeoutMs,
    handshakeTimeoutMs: s.handshakeTimeoutMs,
    requestTimeoutMs: s.requestTimeoutMs,
    idleTimeoutMs: s.idleTimeoutMs,
    maxAttempts: s.maxAttempts,
    retryMaxMs: s.retryMaxMs,
    maxQueue: s.maxQueuePerPeer,
    maxAnswerBytes: s.maxAnswerBytes,
  };
}

/** A whole configuration, judged: what `gatewayc --check` and `gatewayctl check` print. */
export interface ConfigCheck {
  loaded: Loaded;
  certificates: Certificates;
  /** Config, hosts.tab and certificate diagnostics, in that order. */
  diags: Diag[];
  errors: number;
}

/** Throws ConfigError when the files themselves are broken (the daemon would not start). */
export function checkConfiguration(files: string[], defaultHostId: string | undefined, now: Date = new Date()): ConfigCheck {
  const loaded = loadConfiguration(files, defaultHostId);
  const certificates = checkCertificates(loaded.settings, loaded.peers, now);
  const diags = [...loaded.warnings, ...certificates.diags];
  return { loaded, certificates, diags, errors: diags.filter((d) => d.severity === 'error').length };
}
