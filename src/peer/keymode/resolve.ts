/**
 * Which key mode each peer's sessions use, and what is said about the certificates: one
 * policy for the daemon (start, reload) and `gatewayctl check`, pure (settings, peers
 * and the result of checkPki in; data out) so both always agree.
 *
 * The rule that matters (issue 11): `auto` falls back to the 2002 exchange, whose key
 * anyone on the path can compute, only when no certificates are configured at all.
 * Certificates that are there but fail the check (our own one expired, a key that does
 * not match) are an error for every peer that would use them, never a reason to go
 * insecure; a peer at 127.0.0.1 may still use the local key file, which is no downgrade.
 */
import type { PeerEntry } from '../../config/hosts';
import type { Settings } from '../../config/settings';
import type { PkiCheck } from '../../pki/check';
import type { TlsMaterial } from '../../pki/material';
import { VERSION } from '../../version';
import type { SessionKeyMode } from '../session';

/** The settings the key mode depends on. */
export type KeyModeSettings = Pick<Settings, 'keyMode' | 'allowInsecure' | 'localKeyDir' | 'tlsPeerName' | 'certDir'>;

/** The hosts.tab fields the key mode depends on. */
export type KeyModePeer = Pick<PeerEntry, 'id' | 'hostname' | 'address'>;

/**
 * The local mode writes the key to a file lond reads, so lond must run on this machine.
 * Only 127.0.0.1 itself counts (PROTOCOL.md): the rest of 127/8 is what test networks
 * use to stand for other hosts.
 */
export function isLocalAddress(address: string): boolean {
  return address === '127.0.0.1' || address.toLowerCase() === '::ffff:127.0.0.1';
}

/** Whether the certificates are looked at at all: an explicit insecure or local setup never needs them. */
export function certificatesWanted(s: Pick<Settings, 'keyMode'>): boolean {
  return s.keyMode === 'ssl' || s.keyMode === 'auto';
}

function firstError(pki: PkiCheck | undefined): string {
  const e = pki?.problems.find((p) => p.severity === 'error');
  return e ? `: ${e.file}: ${e.message}` : '';
}

/**
 * The key mode of one peer's sessions, or the reason it gets none (shown by `gatewayctl
 * status` as key mode none, with the reason as its last error). `pki` is checkPki's
 * result, undefined when certificatesWanted() is false.
 */
export function resolveKeyMode(s: KeyModeSettings, peer: KeyModePeer, pki: PkiCheck | undefined): SessionKeyMode {
  const local = isLocalAddress(peer.address);
  const material = pki?.ok === true ? pki.material : undefined;
  const ssl = (m: TlsMaterial): SessionKeyMode => ({
    mode: 'ssl',
    material: m,
    version: VERSION,
    // The host id, and the host name hosts.tab gives it (the 2002 format's name field).
    peerName: { names: [...new Set([peer.id, peer.hostname].filter((n) => n !== ''))], policy: s.tlsPeerName },
  });
  switch (s.keyMode) {
    case 'ssl':
      return material ? ssl(material) : { error: `gatewaycKeyMode is ssl, but the certificates are not configured or not usable${firstError(pki)} (see gatewayctl check)` };
    case 'local':
      return local ? { mode: 'local', dir: s.localKeyDir } : { error: `gatewaycKeyMode is local, which only works for a peer at 127.0.0.1 (this one is at ${peer.address})` };
    case 'insecure':
      // The administrator's own choice: not subject to loncAllowInsecure.
      return { mode: 'insecure' };
    case 'auto':
      if (material) return ssl(material);
      if (local) return { mode: 'local', dir: s.localKeyDir };
      if (pki?.configured) {
        return { error: `certificates in ${s.certDir} are configured but not usable${firstError(pki)}; key mode auto does not fall back to the 2002 exchange while they are there (see gatewayctl check)` };
      }
      if (s.allowInsecure) return { mode: 'insecure' };
      return { error: 'no certificates for the ssl key mode, the peer is not at 127.0.0.1, and loncAllowInsecure is off' };
  }
}

export interface CertificateDiag {
  /** error: some peer gets no session because of it; info: worth a line in the journal only. */
  severity: 'error' | 'warning' | 'info';
  /** The file it is about; '' for a summary. */
  file: string;
  message: string;
}

/**
 * What to say about the certificates under these settings and peers: checkPki's problems
 * with the severity they have here, and a summary when peers are left without a session.
 */
export function certificateDiagnostics(s: KeyModeSettings, peers: readonly KeyModePeer[], pki: PkiCheck | undefined): CertificateDiag[] {
  if (!pki || !certificatesWanted(s)) return [];
  if (s.keyMode === 'auto' && !pki.configured) {
    const forbidden = s.allowInsecure ? '' : ' — which loncAllowInsecure 0 forbids';
    return [{ severity: 'info', file: '', message: `no certificates in ${s.certDir}: key mode auto uses local (127.0.0.1) or the 2002 exchange${forbidden}` }];
  }
  // Under auto, broken certificates hurt only peers that cannot use the local key file.
  const hurt = s.keyMode === 'ssl' || peers.length === 0 || peers.some((p) => !isLocalAddress(p.address));
  const diags: CertificateDiag[] = pki.problems.map((p) => ({ severity: p.severity === 'error' && hurt ? 'error' : 'warning', file: p.file, message: p.message }));
  if (!pki.ok && hurt) {
    diags.push({
      severity: 'error',
      file: '',
      message:
        s.keyMode === 'ssl'
          ? 'gatewaycKeyMode ssl needs usable certificates: no peer gets a session until they are fixed'
          : `certificates are configured in ${s.certDir} but not usable: key mode auto does not fall back to the 2002 exchange while they are there, so peers not at 127.0.0.1 get no session until they are fixed`,
    });
  }
  return diags;
}
