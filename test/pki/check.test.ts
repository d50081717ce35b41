import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import forge from 'node-forge';
import { PkiCheck, PkiFiles, checkPki, formatDate } from '../../src/pki/check';
import { Pem, issue, testPki, writePkiFiles } from '../support/certs';

const HOST = 'gwhost1';
let root: string;
let n = 0;

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-pki-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Writes the three files (host defaults to a good certificate) into a fresh directory. */
function files(host: Pem = testPki().host(HOST), ca: Pem = testPki().ca): PkiFiles {
  return writePkiFiles(path.join(root, `case${n++}`), host, ca);
}

function only(r: PkiCheck, severity: 'error' | 'warning'): string[] {
  return r.problems.filter((p) => p.severity === severity).map((p) => p.message);
}

function assertOne(r: PkiCheck, severity: 'error' | 'warning', re: RegExp, file?: string): void {
  const hits = r.problems.filter((p) => p.severity === severity && re.test(p.message));
  assert.equal(hits.length, 1, `expected one ${severity} matching ${re}, got ${JSON.stringify(r.problems, null, 1)}`);
  if (file) assert.equal(hits[0].file, file);
}

const notAfterOf = (pem: string): Date => forge.pki.certificateFromPem(pem).validity.notAfter;

describe('checkPki', () => {
  it('accepts a good set and hands back the material and the expiry', () => {
    const f = files();
    const r = checkPki(f, new Date(), { hostId: HOST });
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
    assert.equal(r.configured, true);
    assert.equal(r.material?.cert, fs.readFileSync(f.cert, 'latin1'));
    assert.equal(r.material?.key, fs.readFileSync(f.key, 'latin1'));
    assert.equal(r.material?.ca, fs.readFileSync(f.ca, 'latin1'));
    assert.deepEqual(r.expires, notAfterOf(testPki().host(HOST).cert));
  });

  it('names each file it cannot read', () => {
    const f = files();
    fs.rmSync(f.ca);
    fs.rmSync(f.key);
    fs.rmSync(f.cert);
    fs.mkdirSync(f.cert);
    const r = checkPki(f);
    assert.equal(r.ok, false);
    assert.equal(r.material, undefined);
    assertOne(r, 'error', /cannot read the CA certificate \(lonnetCertificateAuthority\): no such file/, f.ca);
    assertOne(r, 'error', /cannot read the host certificate \(lonnetCertificate\): is a directory/, f.cert);
    assertOne(r, 'error', /cannot read the private key \(lonnetPrivateKey\): no such file/, f.key);
    assert.equal(r.configured, true, 'one of them is there (a directory)');
  });

  it('tells "not set up at all" from broken', () => {
    const dir = path.join(root, 'empty');
    const r = checkPki({ ca: path.join(dir, 'a.pem'), cert: path.join(dir, 'b.pem'), key: path.join(dir, 'c.pem') });
    assert.equal(r.ok, false);
    assert.equal(r.configured, false);
    assert.equal(r.problems.length, 3);
  });

  it('reports permission problems', { skip: process.getuid?.() === 0 ? 'root reads every file' : false }, () => {
    const f = files();
    fs.chmodSync(f.key, 0o000);
    assertOne(checkPki(f), 'error', /permission denied/, f.key);
  });

  it('reports files that hold no PEM, or PEM that does not parse', () => {
    const f = files();
    fs.writeFileSync(f.ca, 'this is not a certificate\n');
    fs.writeFileSync(f.cert, '-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n');
    fs.writeFileSync(f.key, testPki().host(HOST).cert);
    const r = checkPki(f);
    assert.equal(r.ok, false);
    assertOne(r, 'error', /CA certificate \(lonnetCertificateAuthority\) file holds no PEM certificate/, f.ca);
    assertOne(r, 'error', /cannot parse the host certificate/, f.cert);
    assertOne(r, 'error', /private key \(lonnetPrivateKey\) file holds no PEM private key/, f.key);
  });

  it('refuses a key protected by a passphrase (both PEM forms)', () => {
    const f = files();
    const forgeKey = forge.pki.privateKeyFromPem(testPki().host(HOST).key);
    fs.writeFileSync(f.key, forge.pki.encryptRsaPrivateKey(forgeKey, 'secret', { legacy: true, algorithm: 'aes128' }));
    assertOne(checkPki(f), 'error', /protected by a passphrase/, f.key);
    const pkcs8 = crypto.createPrivateKey(testPki().host(HOST).key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' });
    fs.writeFileSync(f.key, pkcs8);
    assertOne(checkPki(f), 'error', /protected by a passphrase/, f.key);
  });

  it('finds a key that does not belong to the certificate', () => {
    const f = files({ cert: testPki().host(HOST).cert, key: testPki().host('otherhost').key });
    const r = checkPki(f);
    assert.equal(r.ok, false);
    assertOne(r, 'error', /private key \(lonnetPrivateKey\) does not belong to the host certificate/, f.key);
  });

  it('warns about a key that is not RSA, and still finds that it does not match', () => {
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const f = files({ cert: testPki().host(HOST).cert, key: ec });
    const r = checkPki(f);
    assertOne(r, 'warning', /not RSA, which node-forge cannot read/);
    assertOne(r, 'error', /private key \(lonnetPrivateKey\) does not belong to the host certificate/, f.key);
    assert.equal(r.ok, false);
  });

  it('lets OpenSSL have the last word', () => {
    // forge finds nothing wrong with a 512-bit key; OpenSSL's security level refuses it.
    const weak = issue(HOST, { bits: 512 }, 'weak-512');
    const r = checkPki(files(weak));
    assert.equal(r.ok, false);
    assert.equal(r.material, undefined);
    assertOne(r, 'error', /OpenSSL refuses the certificate and key: .*too small/);
  });

  it('refuses an expired certificate and one not valid yet, with the date', () => {
    const expired = testPki().expired(HOST);
    const f = files(expired);
    const r = checkPki(f);
    assert.equal(r.ok, false);
    assertOne(r, 'error', new RegExp(`host certificate \\(lonnetCertificate\\) expired on ${formatDate(notAfterOf(expired.cert))}`), f.cert);
    const early = testPki().notYetValid(HOST);
    const g = files(early);
    assertOne(checkPki(g), 'error', /host certificate \(lonnetCertificate\) is not valid before \d{4}-\d\d-\d\d \d\d:\d\d UTC/, g.cert);
  });

  it('warns 30 days before expiry, with the date', () => {
    const soon = testPki().expiringSoon(HOST);
    const f = files(soon);
    const r = checkPki(f);
    assert.equal(r.ok, true);
    assert.ok(r.material);
    assertOne(r, 'warning', new RegExp(`expires on ${formatDate(notAfterOf(soon.cert))} \\(in (9|10) days\\)`), f.cert);
    assert.deepEqual(r.expires, notAfterOf(soon.cert));
    // The same certificate a month earlier is fine; warnDays moves the threshold.
    assert.deepEqual(checkPki(f, new Date(Date.now() - 30 * 86400e3)).problems, []);
    assert.deepEqual(checkPki(f, new Date(), { warnDays: 5 }).problems, []);
  });

  it('refuses a certificate from another CA, naming both', () => {
    const f = files(testPki().foreign(HOST));
    const r = checkPki(f);
    assert.equal(r.ok, false);
    assertOne(r, 'error', /not signed by the network's CA: it was issued by CN=another network CA, O=gatewayc tests, the CA file holds CN=gatewayc test CA/, f.cert);
  });

  it('tells a CA of the same name but another key from the real one', () => {
    const impostor = issue('gatewayc test CA', { isCa: true }, 'impostor-ca');
    const f = files(testPki().host(HOST), impostor);
    assertOne(checkPki(f), 'error', /does not verify with the CA CN=gatewayc test CA.*another CA of the same name/, f.cert);
  });

  it('accepts a CA file with several CAs and a chain through an intermediate', () => {
    const pki = testPki();
    const inter = issue('gatewayc intermediate', { isCa: true, issuer: pki.ca }, 'intermediate');
    const leaf = issue(HOST, { issuer: inter }, 'leaf-via-intermediate');
    const f = files({ cert: leaf.cert + inter.cert, key: leaf.key }, { cert: pki.otherCa.cert + pki.ca.cert, key: '' });
    const r = checkPki(f, new Date(), { hostId: HOST });
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
  });

  it('refuses an expired CA', () => {
    const now = Date.now();
    const oldCa = issue('old CA', { isCa: true, notBefore: new Date(now - 900 * 86400e3), notAfter: new Date(now - 86400e3) }, 'old-ca');
    const leaf = issue(HOST, { issuer: oldCa, notBefore: new Date(now - 800 * 86400e3), notAfter: new Date(now + 86400e3 * 100) }, 'leaf-old-ca');
    const f = files(leaf, oldCa);
    assertOne(checkPki(f), 'error', /CA certificate \(lonnetCertificateAuthority\) expired on/, f.ca);
  });

  it('warns about a CA certificate that is not marked as a CA', () => {
    const notCa = testPki().host('notaca');
    const leaf = issue(HOST, { issuer: notCa }, 'leaf-not-ca');
    const f = files(leaf, notCa);
    assertOne(checkPki(f), 'warning', /not marked as a CA/, f.ca);
  });

  it('warns about names: no CN, or a CN that is not our host id', () => {
    const noCn = issue(HOST, { cn: null }, 'no-cn');
    assertOne(checkPki(files(noCn)), 'warning', /has no CN and no subject alternative name/);
    const r = checkPki(files(), new Date(), { hostId: 'someoneelse' });
    assert.equal(r.ok, true);
    assertOne(r, 'warning', /is for gwhost1, not for this server's lonHostID someoneelse/);
    const withSan = issue('x', { cn: 'x', dns: ['someoneelse'] }, 'san');
    assert.deepEqual(only(checkPki(files(withSan), new Date(), { hostId: 'someoneelse' }), 'warning'), []);
  });

  it('warns when the certificate may not be used as a TLS client', () => {
    const serverOnly = issue(HOST, { extKeyUsage: { serverAuth: true } }, 'server-only');
    assertOne(checkPki(files(serverOnly)), 'warning', /lacks clientAuth/);
  });

  it('warns about a private key every user can read', () => {
    const f = files();
    fs.chmodSync(f.key, 0o644);
    const r = checkPki(f);
    assert.equal(r.ok, true);
    assertOne(r, 'warning', /readable by every user \(mode 0644\)/, f.key);
  });
});
