/**
 * Checks the network's CA, this host's certificate and its private key before the ssl key
 * mode uses them: at daemon start, on reload and in `gatewayctl check`. node-forge reads
 * and verifies (LON-CAPA's certificates are RSA); OpenSSL gets the last word, since it is
 * what the TLS connections will use.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import forge from 'node-forge';
import type { TlsMaterial } from './material';

export type PkiSeverity = 'error' | 'warning';

export interface PkiProblem {
  severity: PkiSeverity;
  file: string;
  message: string;
}

export interface PkiFiles {
  ca: string;
  cert: string;
  key: string;
}

export interface PkiCheckOptions {
  /** lonHostID: warn when the certificate does not name it (peers see it as our CN). */
  hostId?: string;
  /** Warn this many days before a certificate expires; default 30. */
  warnDays?: number;
}

export interface PkiCheck {
  /** No errors (warnings allowed). */
  ok: boolean;
  /**
   * False when none of the three files exists: certificates were simply not set up, which
   * `auto` takes as "no ssl" rather than as a fault worth an error in the journal.
   */
  configured: boolean;
  problems: PkiProblem[];
  /** The PEM texts, when ok. */
  material?: TlsMaterial;
  /** When the first of the host certificate and the certificates above it expires. */
  expires?: Date;
}

const DAY_MS = 24 * 3600 * 1000;

const ROLE = {
  ca: 'CA certificate (lonnetCertificateAuthority)',
  cert: 'host certificate (lonnetCertificate)',
  key: 'private key (lonnetPrivateKey)',
} as const;

/** A timestamp as administrators read it in a log: 2031-05-04 12:00 UTC. */
export function formatDate(d: Date): string {
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function readError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied (is it readable by the user the daemon runs as?)';
    case 'EISDIR':
      return 'is a directory, not a file';
    default:
      return err.code ?? err.message;
  }
}

type Parsed<T> = { ok: T } | { nonRsa: true } | { error: string };

function parseCertificate(block: forge.pem.ObjectPEM): Parsed<forge.pki.Certificate> {
  try {
    return { ok: forge.pki.certificateFromAsn1(forge.asn1.fromDer(block.body), true) };
  } catch (err) {
    const message = (err as Error).message;
    if (/not RSA/i.test(message) && canOpenSslRead(() => new crypto.X509Certificate(forge.pem.encode(block)))) return { nonRsa: true };
    return { error: message };
  }
}

function canOpenSslRead(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch {
    return false;
  }
}

function decodePem(text: string): forge.pem.ObjectPEM[] | string {
  if (!text.includes('-----BEGIN ')) return [];
  try {
    return forge.pem.decode(text);
  } catch (err) {
    return (err as Error).message;
  }
}

function cnOf(cert: forge.pki.Certificate): string | undefined {
  const v = cert.subject.getField('CN')?.value as unknown;
  return typeof v === 'string' ? v : undefined;
}

function altNames(cert: forge.pki.Certificate): string[] {
  const ext = cert.getExtension('subjectAltName') as { altNames?: { value?: string; ip?: string }[] } | undefined;
  return (ext?.altNames ?? []).map((n) => n.ip ?? n.value ?? '').filter((n) => n !== '');
}

function describeName(cert: forge.pki.Certificate, which: 'subject' | 'issuer'): string {
  const attrs = cert[which].attributes as { shortName?: string; name?: string; value?: unknown }[];
  const parts = attrs.map((a) => `${a.shortName ?? a.name ?? '?'}=${String(a.value)}`);
  return parts.length > 0 ? parts.join(', ') : '(empty)';
}

/**
 * Loads and checks CA, certificate and key. Every problem names its file; nothing stops
 * at the first one, so an administrator sees them all at once.
 */
export function checkPki(files: PkiFiles, now: Date = new Date(), options: PkiCheckOptions = {}): PkiCheck {
  const problems: PkiProblem[] = [];
  const error = (file: string, message: string): void => void problems.push({ severity: 'error', file, message });
  const warning = (file: string, message: string): void => void problems.push({ severity: 'warning', file, message });
  const warnMs = (options.warnDays ?? 30) * DAY_MS;

  const texts: Partial<Record<keyof PkiFiles, string>> = {};
  let absent = 0;
  for (const which of ['ca', 'cert', 'key'] as const) {
    try {
      texts[which] = fs.readFileSync(files[which], 'latin1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') absent++;
      error(files[which], `cannot read the ${ROLE[which]}: ${readError(err as NodeJS.ErrnoException)}`);
    }
  }

  // Certificates: the CA file may hold several CAs; the host file may carry intermediates
  // after the host certificate.
  let nonRsa = false;
  const loadCerts = (which: 'ca' | 'cert'): forge.pki.Certificate[] | undefined => {
    const text = texts[which];
    if (text === undefined) return undefined;
    const blocks = decodePem(text);
    if (typeof blocks === 'string') {
      error(files[which], `the ${ROLE[which]} is not valid PEM: ${blocks}`);
      return undefined;
    }
    const certBlocks = blocks.filter((b) => b.type === 'CERTIFICATE' || b.type === 'X509 CERTIFICATE');
    if (certBlocks.length === 0) {
      error(files[which], `the ${ROLE[which]} file holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`);
      return undefined;
    }
    const certs: forge.pki.Certificate[] = [];
    certBlocks.forEach((block, i) => {
      const p = parseCertificate(block);
      const which1 = certBlocks.length > 1 ? ` (certificate ${i + 1} of ${certBlocks.length})` : '';
      if ('ok' in p) certs.push(p.ok);
      else if ('nonRsa' in p) nonRsa = true;
      else error(files[which], `cannot parse the ${ROLE[which]}${which1}: ${p.error}`);
    });
    return certs;
  };
  const cas = loadCerts('ca');
  const hostChain = loadCerts('cert');
  const host = hostChain?.[0];

  let key: forge.pki.rsa.PrivateKey | undefined;
  if (texts.key !== undefined) key = loadKey(texts.key, files.key, error, () => (nonRsa = true));
  if (nonRsa) {
    warning(files.cert, 'a certificate or key is not RSA, which node-forge cannot read: key match, validity and chain were only checked by OpenSSL');
  }

  if (texts.key !== undefined) {
    try {
      const mode = fs.statSync(files.key).mode;
      if ((mode & 0o004) !== 0) warning(files.key, `the ${ROLE.key} is readable by every user (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); make it 0600 or 0640`);
    } catch {
      // It was readable a moment ago; the read error, if any, is reported above.
    }
  }

  if (host && key) {
    const pub = host.publicKey as forge.pki.rsa.PublicKey;
    if (!pub.n || !pub.n.equals(key.n) || !pub.e.equals(key.e)) {
      error(files.key, `the ${ROLE.key} does not belong to the ${ROLE.cert} (${files.cert})`);
    }
  }

  let expires: Date | undefined;
  const checkValidity = (cert: forge.pki.Certificate, file: string, what: string): void => {
    const { notBefore, notAfter } = cert.validity;
    if (now < notBefore) error(file, `the ${what} is not valid before ${formatDate(notBefore)}`);
    else if (now > notAfter) error(file, `the ${what} expired on ${formatDate(notAfter)}`);
    else if (notAfter.getTime() - now.getTime() < warnMs) {
      const days = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
      warning(file, `the ${what} expires on ${formatDate(notAfter)} (in ${days} day${days === 1 ? '' : 's'})`);
    }
    if (!expires || notAfter < expires) expires = notAfter;
  };
  if (host) checkValidity(host, files.cert, ROLE.cert);
  hostChain?.slice(1).forEach((c) => checkValidity(c, files.cert, `intermediate certificate ${describeName(c, 'subject')}`));

  if (host && cas) {
    const anchor = findChain(host, hostChain?.slice(1) ?? [], cas);
    if ('anchor' in anchor) {
      checkValidity(anchor.anchor, files.ca, ROLE.ca);
      const bc = anchor.anchor.getExtension('basicConstraints') as { cA?: boolean } | undefined;
      if (anchor.anchor.version >= 2 && bc && !bc.cA) {
        warning(files.ca, `the ${ROLE.ca} is not marked as a CA (basicConstraints cA is false); OpenSSL may refuse it`);
      }
    } else {
      error(files.cert, `${anchor.problem} (${ROLE.ca}: ${files.ca})`);
      for (const c of cas) checkValidity(c, files.ca, `${ROLE.ca} ${describeName(c, 'subject')}`);
    }
  } else if (cas) {
    for (const c of cas) checkValidity(c, files.ca, ROLE.ca);
  }

  if (host) checkNames(host, files.cert, options.hostId, warning);

  const ok = !problems.some((p) => p.severity === 'error');
  if (ok && texts.ca !== undefined && texts.cert !== undefined && texts.key !== undefined) {
    // What the TLS connections will load: catches what forge could not look at.
    try {
      tls.createSecureContext({ ca: texts.ca, cert: texts.cert, key: texts.key });
      // OpenSSL keeps keys of different types apart, so it does not notice an EC key
      // next to an RSA certificate: compare them explicitly where forge could not.
      if (nonRsa && !new crypto.X509Certificate(texts.cert).checkPrivateKey(crypto.createPrivateKey(texts.key))) {
        error(files.key, `the ${ROLE.key} does not belong to the ${ROLE.cert} (${files.cert})`);
      }
    } catch (err) {
      error(files.cert, `OpenSSL refuses the certificate and key: ${(err as Error).message}`);
    }
  }
  const allOk = !problems.some((p) => p.severity === 'error');
  const result: PkiCheck = { ok: allOk, configured: absent < 3, problems };
  if (allOk && texts.ca !== undefined && texts.cert !== undefined && texts.key !== undefined) {
    result.material = { ca: texts.ca, cert: texts.cert, key: texts.key };
  }
  if (expires) result.expires = expires;
  return result;
}

function loadKey(text: string, file: string, error: (file: string, m: string) => void, nonRsa: () => void): forge.pki.rsa.PrivateKey | undefined {
  const blocks = decodePem(text);
  if (typeof blocks === 'string') {
    error(file, `the ${ROLE.key} is not valid PEM: ${blocks}`);
    return undefined;
  }
  const block = blocks.find((b) => b.type.endsWith('PRIVATE KEY'));
  if (!block) {
    error(file, `the ${ROLE.key} file holds no PEM private key (no "-----BEGIN ... PRIVATE KEY-----" block)`);
    return undefined;
  }
  if (block.type === 'ENCRYPTED PRIVATE KEY' || block.procType?.type === 'ENCRYPTED') {
    error(file, `the ${ROLE.key} is protected by a passphrase; gatewayc, like lond, needs it unencrypted (readable only by its user)`);
    return undefined;
  }
  try {
    return forge.pki.privateKeyFromAsn1(forge.asn1.fromDer(block.body)) as forge.pki.rsa.PrivateKey;
  } catch (err) {
    if (canOpenSslRead(() => crypto.createPrivateKey(forge.pem.encode(block)))) {
      nonRsa();
      return undefined;
    }
    error(file, `cannot parse the ${ROLE.key}: ${(err as Error).message}`);
    return undefined;
  }
}

/**
 * Walks from the host certificate up through the intermediates to a CA of the CA file,
 * checking each signature. Says precisely where it breaks.
 */
function findChain(host: forge.pki.Certificate, intermediates: forge.pki.Certificate[], cas: forge.pki.Certificate[]): { anchor: forge.pki.Certificate } | { problem: string } {
  let cur = host;
  for (let depth = 0; depth < 8; depth++) {
    const named = cas.filter((ca) => ca.issued(cur));
    const anchor = named.find((ca) => verifies(ca, cur));
    if (anchor) return { anchor };
    if (named.length > 0) {
      return { problem: `the signature of ${describeName(cur, 'subject')} does not verify with the CA ${describeName(named[0], 'subject')}: the CA file holds another CA of the same name` };
    }
    const next = intermediates.find((c) => c !== cur && c.issued(cur) && verifies(c, cur));
    if (!next) break;
    cur = next;
  }
  const names = cas.map((c) => describeName(c, 'subject')).join('; ');
  return { problem: `the ${ROLE.cert} is not signed by the network's CA: it was issued by ${describeName(cur, 'issuer')}, the CA file holds ${names}` };
}

function verifies(issuer: forge.pki.Certificate, child: forge.pki.Certificate): boolean {
  try {
    return issuer.verify(child);
  } catch {
    return false;
  }
}

/**
 * Peers authenticate us by the CA's signature and see our host id in the CN (LON-CAPA's
 * convention); a certificate without one, or for another host, works but is suspicious.
 */
function checkNames(host: forge.pki.Certificate, file: string, hostId: string | undefined, warning: (file: string, m: string) => void): void {
  const cn = cnOf(host);
  const alts = altNames(host);
  if (!cn && alts.length === 0) {
    warning(file, `the ${ROLE.cert} has no CN and no subject alternative name; LON-CAPA peers expect the host id as CN`);
  } else if (hostId && ![cn, ...alts].some((n) => n?.toLowerCase() === hostId.toLowerCase())) {
    warning(file, `the ${ROLE.cert} is for ${[cn, ...alts].filter(Boolean).join(', ')}, not for this server's lonHostID ${hostId}`);
  }
  const eku = host.getExtension('extKeyUsage') as { clientAuth?: boolean } | undefined;
  if (eku && !eku.clientAuth) {
    warning(file, `the ${ROLE.cert} does not allow TLS client authentication (extKeyUsage lacks clientAuth); londs may refuse it`);
  }
}
