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
import { chooseKeyMode } from '../peer/keymode';
import type { PeerSettings } from '../peer/peer';
import type { SessionKeyMode } from '../peer/session';
import { checkPki, PkiCheck } from '../pki/check';
import { VERSION } from '../version';

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
 * The network's certificates, checked once per start/reload/check. Only looked at when ssl
 * may be used (keyMode ssl or auto): an explicit insecure/local setup never needs them.
 * Under auto with no certificate at all, nothing is wrong: the 2002 exchange (or local)
 * is what such a network runs. Configured certificates that fail are errors.
 */
export function checkCertificates(s: Settings, now: Date = new Date()): Certificates {
  if (s.keyMode !== 'ssl' && s.keyMode !== 'auto') return { pki: undefined, diags: [] };
  const pki = checkPki({ ca: s.caFile, cert: s.certFile, key: s.keyFile }, now, { hostId: s.lonHostID });
  if (!pki.configured && s.keyMode === 'auto') {
    return {
      pki,
      diags: [],
      note: `no certificates in ${s.certDir}: key mode auto uses local (127.0.0.1) or the 2002 exchange${s.allowInsecure ? '' : ' — which loncAllowInsecure 0 forbids'}`,
    };
  }
  return { pki, diags: pki.problems.map((p) => ({ file: p.file, severity: p.severity, message: p.message })) };
}

function keyModeFor(s: Settings, p: PeerEntry, pki: PkiCheck | undefined): SessionKeyMode {
  const choice = chooseKeyMode(s.keyMode, { address: p.address, haveCertificates: pki?.ok === true, allowInsecure: s.allowInsecure });
  if ('error' in choice) return { error: choice.error };
  if (choice.mode === 'ssl') {
    if (!pki?.ok || !pki.material) {
      const first = pki?.problems.find((x) => x.severity === 'error');
      return { error: `ssl key mode needs usable certificates${first ? `: ${first.file}: ${first.message}` : ''}` };
    }
    return { mode: 'ssl', material: pki.material, version: VERSION };
  }
  if (choice.mode === 'local') return { mode: 'local', dir: s.localKeyDir };
  return { mode: 'insecure' };
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
  const certificates = checkCertificates(loaded.settings, now);
  const diags = [...loaded.warnings, ...certificates.diags];
  return { loaded, certificates, diags, errors: diags.filter((d) => d.severity === 'error').length };
}
