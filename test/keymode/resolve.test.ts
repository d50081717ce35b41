import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { certificateDiagnostics, isLocalAddress, KeyModeSettings, resolveKeyMode } from '../../src/peer/keymode/resolve';
import type { SessionKeyMode } from '../../src/peer/session';
import type { PkiCheck } from '../../src/pki/check';

const material = { ca: 'CA', cert: 'CERT', key: 'KEY' };
const GOOD: PkiCheck = { ok: true, configured: true, problems: [{ severity: 'warning', file: '/c/lonhostcert.pem', message: 'expires soon' }], material };
const EXPIRED: PkiCheck = { ok: false, configured: true, problems: [{ severity: 'error', file: '/c/lonhostcert.pem', message: 'the host certificate expired' }] };
const NONE: PkiCheck = {
  ok: false,
  configured: false,
  problems: ['loncapaCA.pem', 'lonhostcert.pem', 'lonhostkey.pem'].map((f) => ({ severity: 'error' as const, file: `/c/${f}`, message: 'no such file' })),
};

const settings = (over: Partial<KeyModeSettings> = {}): KeyModeSettings => ({ keyMode: 'auto', allowInsecure: true, localKeyDir: '/run/keys', tlsPeerName: 'strict', certDir: '/c', ...over });
const remote = { id: 'msul1', hostname: 'l1.msu.edu', address: '10.0.0.1' };
const here = { id: 'self2', hostname: 'self2.example', address: '127.0.0.1' };

describe('resolveKeyMode', () => {
  test('auto with usable certificates: ssl, and the certificate must name the host id or the hosts.tab name', () => {
    assert.deepEqual(resolveKeyMode(settings(), remote, GOOD), {
      mode: 'ssl',
      material,
      version: (resolveKeyMode(settings(), remote, GOOD) as { version: string }).version,
      peerName: { names: ['msul1', 'l1.msu.edu'], policy: 'strict' },
    });
    const peerName = (r: SessionKeyMode) => ('mode' in r && r.mode === 'ssl' ? r.peerName : undefined);
    assert.deepEqual(peerName(resolveKeyMode(settings(), { ...remote, hostname: 'msul1' }, GOOD))?.names, ['msul1'], 'no name twice');
    assert.equal(peerName(resolveKeyMode(settings({ tlsPeerName: 'ca-only' }), remote, GOOD))?.policy, 'ca-only');
    assert.equal((resolveKeyMode(settings(), here, GOOD) as { mode: string }).mode, 'ssl', 'certificates first, even at 127.0.0.1');
  });

  test('auto never falls back to the 2002 exchange while certificates are configured, even with loncAllowInsecure', () => {
    const r = resolveKeyMode(settings({ allowInsecure: true }), remote, EXPIRED);
    assert.ok('error' in r, JSON.stringify(r));
    assert.match(r.error, /^certificates in \/c are configured but not usable: \/c\/lonhostcert\.pem: the host certificate expired; key mode auto does not fall back/);
    assert.deepEqual(resolveKeyMode(settings(), here, EXPIRED), { mode: 'local', dir: '/run/keys' }, 'the local key file is no downgrade');
  });

  test('auto without any certificates keeps 2002 compatibility where loncAllowInsecure allows it', () => {
    assert.deepEqual(resolveKeyMode(settings(), remote, NONE), { mode: 'insecure' });
    assert.deepEqual(resolveKeyMode(settings(), here, NONE), { mode: 'local', dir: '/run/keys' });
    assert.deepEqual(resolveKeyMode(settings(), { ...remote, address: '127.0.0.2' }, NONE), { mode: 'insecure' }, 'the rest of 127/8 stands for other hosts');
    const r = resolveKeyMode(settings({ allowInsecure: false }), remote, NONE);
    assert.ok('error' in r && /loncAllowInsecure is off/.test(r.error));
  });

  test('ssl: usable certificates or an error naming the first problem', () => {
    assert.equal((resolveKeyMode(settings({ keyMode: 'ssl' }), here, GOOD) as { mode: string }).mode, 'ssl');
    const r = resolveKeyMode(settings({ keyMode: 'ssl' }), remote, EXPIRED);
    assert.ok('error' in r && /gatewaycKeyMode is ssl, .*lonhostcert\.pem: the host certificate expired/.test(r.error), JSON.stringify(r));
    assert.ok('error' in resolveKeyMode(settings({ keyMode: 'ssl' }), remote, undefined));
  });

  test('local only at 127.0.0.1; insecure is the administrator\'s choice', () => {
    assert.deepEqual(resolveKeyMode(settings({ keyMode: 'local' }), here, undefined), { mode: 'local', dir: '/run/keys' });
    const r = resolveKeyMode(settings({ keyMode: 'local' }), { ...remote, address: '127.0.0.5' }, undefined);
    assert.ok('error' in r && /only works for a peer at 127\.0\.0\.1 \(this one is at 127\.0\.0\.5\)/.test(r.error));
    assert.deepEqual(resolveKeyMode(settings({ keyMode: 'insecure', allowInsecure: false }), remote, GOOD), { mode: 'insecure' });
  });

  test('isLocalAddress: 127.0.0.1 only', () => {
    assert.deepEqual(['127.0.0.1', '::FFFF:127.0.0.1', '127.0.0.2', 'localhost', '::1', '10.0.0.1'].map(isLocalAddress), [true, true, false, false, false, false]);
  });
});

describe('certificateDiagnostics: one policy for the daemon and gatewayctl check', () => {
  const sev = (ds: { severity: string }[]): string[] => ds.map((d) => d.severity);

  test('not looked at for local or insecure', () => {
    assert.deepEqual(certificateDiagnostics(settings({ keyMode: 'insecure' }), [remote], EXPIRED), []);
    assert.deepEqual(certificateDiagnostics(settings({ keyMode: 'local' }), [here], undefined), []);
  });

  test('auto without certificates: one line of information, no error', () => {
    const d = certificateDiagnostics(settings(), [remote], NONE);
    assert.deepEqual(sev(d), ['info']);
    assert.match(d[0]?.message ?? '', /no certificates in \/c: key mode auto uses local \(127\.0\.0\.1\) or the 2002 exchange$/);
    assert.match(certificateDiagnostics(settings({ allowInsecure: false }), [remote], NONE)[0]?.message ?? '', /loncAllowInsecure 0 forbids/);
  });

  test('auto with broken certificates: errors and a summary when a peer is left without a session', () => {
    const d = certificateDiagnostics(settings(), [here, remote], EXPIRED);
    assert.deepEqual(sev(d), ['error', 'error']);
    assert.equal(d[0]?.file, '/c/lonhostcert.pem');
    assert.equal(d[1]?.file, '');
    assert.match(d[1]?.message ?? '', /does not fall back to the 2002 exchange/);
    assert.deepEqual(sev(certificateDiagnostics(settings(), [], EXPIRED)), ['error', 'error'], 'no peers yet: still broken');
  });

  test('auto with broken certificates and every peer at 127.0.0.1: a warning (they use the local key file)', () => {
    assert.deepEqual(sev(certificateDiagnostics(settings(), [here], EXPIRED)), ['warning']);
  });

  test('ssl: every error is one, with a summary; missing files too', () => {
    assert.deepEqual(sev(certificateDiagnostics(settings({ keyMode: 'ssl' }), [here], EXPIRED)), ['error', 'error']);
    assert.deepEqual(sev(certificateDiagnostics(settings({ keyMode: 'ssl' }), [remote], NONE)), ['error', 'error', 'error', 'error']);
  });

  test('usable certificates: their warnings stay warnings', () => {
    assert.deepEqual(certificateDiagnostics(settings(), [remote], GOOD), [{ severity: 'warning', file: '/c/lonhostcert.pem', message: 'expires soon' }]);
  });
});
