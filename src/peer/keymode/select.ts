/** The key mode setting (gatewaycKeyMode) and what a session actually runs. */
export type KeyModeSetting = 'auto' | 'ssl' | 'local' | 'insecure';
export type KeyMode = 'ssl' | 'local' | 'insecure';

export interface KeyModeContext {
  /** The address the session connects to (hosts.tab). */
  address: string;
  /** Whether CA, certificate and key are configured and passed checkPki(). */
  haveCertificates: boolean;
  /** loncAllowInsecure. */
  allowInsecure: boolean;
}

/**
 * The local mode writes the key to a file lond reads, so lond must run on this machine.
 * Only 127.0.0.1 itself counts (PROTOCOL.md): the rest of 127/8 is what test networks
 * use to stand for other hosts.
 */
export function isLocalAddress(address: string): boolean {
  return address === '127.0.0.1' || address.toLowerCase() === '::ffff:127.0.0.1';
}

/**
 * The key mode for one peer. `auto` prefers TLS whenever certificates are there, then the
 * local file for a peer on 127.0.0.1, and falls back to the 2002 exchange (whose key
 * anyone on the path can compute) only where loncAllowInsecure allows it. An explicit
 * `insecure` is the administrator's own choice and is not subject to loncAllowInsecure.
 */
export function chooseKeyMode(mode: KeyModeSetting, ctx: KeyModeContext): { mode: KeyMode } | { error: string } {
  const local = isLocalAddress(ctx.address);
  switch (mode) {
    case 'ssl':
      return ctx.haveCertificates
        ? { mode: 'ssl' }
        : { error: 'gatewaycKeyMode is ssl, but the CA, certificate and key are not configured or not usable (see gatewayctl check)' };
    case 'local':
      return local
        ? { mode: 'local' }
        : { error: `gatewaycKeyMode is local, which only works for a peer at 127.0.0.1 (this one is at ${ctx.address})` };
    case 'insecure':
      return { mode: 'insecure' };
    case 'auto':
      if (ctx.haveCertificates) return { mode: 'ssl' };
      if (local) return { mode: 'local' };
      if (ctx.allowInsecure) return { mode: 'insecure' };
      return { error: 'no usable certificates for the ssl key mode, the peer is not at 127.0.0.1, and loncAllowInsecure is off' };
  }
}
