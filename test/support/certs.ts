// Test certificates made with node-forge, no openssl CLI: a network CA, host certificates
// whose CN is the host id (LON-CAPA's convention), and the bad ones the refusal tests need.
// RSA key pairs come from node's crypto (fast); forge builds and signs the certificates.
// Everything is cached per process: a key pair costs tens of milliseconds.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import forge from 'node-forge';

/** PEM texts of one certificate and its private key (PKCS#8). */
export interface Pem {
  cert: string;
  key: string;
}

export interface IssueOptions {
  /** Subject CN; default the id; null: no CN at all. */
  cn?: string | null;
  /** Subject alternative names (DNS). */
  dns?: string[];
  /** Signing CA; default: the test network's CA. */
  issuer?: Pem;
  notBefore?: Date;
  notAfter?: Date;
  /** Make it a CA certificate (basicConstraints cA). */
  isCa?: boolean;
  /** extKeyUsage; default both serverAuth and clientAuth, as LON-CAPA hosts are both. */
  extKeyUsage?: { serverAuth?: boolean; clientAuth?: boolean };
  /** RSA key size for a new key label; default 2048. */
  bits?: number;
}

const DAY = 24 * 3600 * 1000;
let serial = 1;

const keyCache = new Map<string, forge.pki.rsa.PrivateKey>();
const pemKeyCache = new Map<string, string>();

function keyPair(label: string, bits = 2048): { privateKey: forge.pki.rsa.PrivateKey; pem: string } {
  let key = keyCache.get(label);
  let pem = pemKeyCache.get(label);
  if (!key || !pem) {
    const pair = crypto.generateKeyPairSync('rsa', { modulusLength: bits });
    pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    key = forge.pki.privateKeyFromPem(pem);
    keyCache.set(label, key);
    pemKeyCache.set(label, pem);
  }
  return { privateKey: key, pem };
}

function publicOf(key: forge.pki.rsa.PrivateKey): forge.pki.rsa.PublicKey {
  return forge.pki.setRsaPublicKey(key.n, key.e);
}

/**
 * A certificate for `id` with a fresh (cached per label) key pair. The label decides
 * which key is used, so two certificates with one label share a key.
 */
export function issue(id: string, opts: IssueOptions = {}, keyLabel = `host:${id}`): Pem {
  const { privateKey, pem } = keyPair(keyLabel, opts.bits);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicOf(privateKey);
  cert.serialNumber = (serial++).toString(16).padStart(4, '0');
  const now = Date.now();
  cert.validity.notBefore = opts.notBefore ?? new Date(now - DAY);
  cert.validity.notAfter = opts.notAfter ?? new Date(now + 365 * DAY);
  const subject = [{ name: 'organizationName', value: 'gatewayc tests' }];
  if (opts.cn !== null) subject.unshift({ name: 'commonName', value: opts.cn ?? id });
  cert.setSubject(subject);
  const exts: object[] = [];
  let signer: forge.pki.rsa.PrivateKey;
  if (opts.isCa) {
    // Self-signed (a root), or an intermediate when an issuer is given.
    if (opts.issuer) cert.setIssuer(forge.pki.certificateFromPem(opts.issuer.cert).subject.attributes);
    else cert.setIssuer(subject);
    exts.push({ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true });
    signer = opts.issuer ? forge.pki.privateKeyFromPem(opts.issuer.key) : privateKey;
  } else {
    const issuer = opts.issuer ?? testPki().ca;
    const issuerCert = forge.pki.certificateFromPem(issuer.cert);
    cert.setIssuer(issuerCert.subject.attributes);
    const eku = opts.extKeyUsage ?? { serverAuth: true, clientAuth: true };
    exts.push(
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', ...eku },
    );
    if (opts.dns) exts.push({ name: 'subjectAltName', altNames: opts.dns.map((value) => ({ type: 2, value })) });
    signer = forge.pki.privateKeyFromPem(issuer.key);
  }
  cert.setExtensions(exts);
  cert.sign(signer, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: pem };
}

export interface TestPki {
  /** The test network's CA. */
  ca: Pem;
  /** Another network's CA: its certificates must be refused. */
  otherCa: Pem;
  /** Signed by `ca`, CN = id, valid from yesterday for a year. */
  host(id: string): Pem;
  /** Signed by `otherCa`. */
  foreign(id: string): Pem;
  /** Signed by `ca`, expired yesterday. */
  expired(id: string): Pem;
  /** Signed by `ca`, expires in 10 days. */
  expiringSoon(id: string): Pem;
  /** Signed by `ca`, valid from tomorrow. */
  notYetValid(id: string): Pem;
}

let cached: TestPki | undefined;

function memo(make: (id: string) => Pem): (id: string) => Pem {
  const m = new Map<string, Pem>();
  return (id) => {
    let p = m.get(id);
    if (!p) {
      p = make(id);
      m.set(id, p);
    }
    return p;
  };
}

/** The process-wide test PKI (created on first use). */
export function testPki(): TestPki {
  if (cached) return cached;
  const now = Date.now();
  const ca = issue('gatewayc test CA', { isCa: true, notBefore: new Date(now - 30 * DAY), notAfter: new Date(now + 3650 * DAY) }, 'ca');
  const otherCa = issue('another network CA', { isCa: true, notBefore: new Date(now - 30 * DAY), notAfter: new Date(now + 3650 * DAY) }, 'other-ca');
  const pki: TestPki = {
    ca,
    otherCa,
    host: memo((id) => issue(id, { issuer: ca })),
    foreign: memo((id) => issue(id, { issuer: otherCa })),
    expired: memo((id) => issue(id, { issuer: ca, notBefore: new Date(now - 400 * DAY), notAfter: new Date(now - DAY) })),
    expiringSoon: memo((id) => issue(id, { issuer: ca, notBefore: new Date(now - 355 * DAY), notAfter: new Date(now + 10 * DAY) })),
    notYetValid: memo((id) => issue(id, { issuer: ca, notBefore: new Date(now + DAY), notAfter: new Date(now + 365 * DAY) })),
  };
  cached = pki;
  return pki;
}

/** TLS material (PEM) for a host: the network CA plus the host's certificate and key. */
export function material(host: Pem, ca: Pem = testPki().ca): { ca: string; cert: string; key: string } {
  return { ca: ca.cert, cert: host.cert, key: host.key };
}

/**
 * Writes CA, certificate and key under `dir` with LON-CAPA's default file names
 * (key mode 0600); returns their absolute paths.
 */
export function writePkiFiles(dir: string, host: Pem, ca: Pem = testPki().ca): { ca: string; cert: string; key: string } {
  fs.mkdirSync(dir, { recursive: true });
  const files = { ca: path.join(dir, 'loncapaCA.pem'), cert: path.join(dir, 'lonhostcert.pem'), key: path.join(dir, 'lonhostkey.pem') };
  fs.writeFileSync(files.ca, ca.cert);
  fs.writeFileSync(files.cert, host.cert);
  fs.writeFileSync(files.key, host.key, { mode: 0o600 });
  fs.chmodSync(files.key, 0o600);
  return files;
}
