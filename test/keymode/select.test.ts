import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chooseKeyMode, isLocalAddress } from '../../src/peer/keymode/select';

const remote = '192.0.2.10';
const ctx = (address: string, haveCertificates: boolean, allowInsecure: boolean) => ({ address, haveCertificates, allowInsecure });

describe('chooseKeyMode', () => {
  it('auto: ssl with certificates, wherever the peer is', () => {
    assert.deepEqual(chooseKeyMode('auto', ctx(remote, true, false)), { mode: 'ssl' });
    assert.deepEqual(chooseKeyMode('auto', ctx('127.0.0.1', true, true)), { mode: 'ssl' });
  });

  it('auto: local for 127.0.0.1 without certificates', () => {
    assert.deepEqual(chooseKeyMode('auto', ctx('127.0.0.1', false, false)), { mode: 'local' });
    assert.deepEqual(chooseKeyMode('auto', ctx('::ffff:127.0.0.1', false, false)), { mode: 'local' });
  });

  it('auto: insecure only when loncAllowInsecure allows it', () => {
    assert.deepEqual(chooseKeyMode('auto', ctx(remote, false, true)), { mode: 'insecure' });
    assert.deepEqual(chooseKeyMode('auto', ctx('127.0.0.2', false, true)), { mode: 'insecure' });
    const r = chooseKeyMode('auto', ctx(remote, false, false));
    assert.ok('error' in r);
    assert.match(r.error, /loncAllowInsecure is off/);
  });

  it('ssl needs certificates', () => {
    assert.deepEqual(chooseKeyMode('ssl', ctx('127.0.0.1', true, false)), { mode: 'ssl' });
    const r = chooseKeyMode('ssl', ctx(remote, false, true));
    assert.ok('error' in r);
    assert.match(r.error, /gatewaycKeyMode is ssl, but the CA, certificate and key are not configured or not usable/);
  });

  it('local needs a peer at 127.0.0.1', () => {
    assert.deepEqual(chooseKeyMode('local', ctx('127.0.0.1', true, false)), { mode: 'local' });
    const r = chooseKeyMode('local', ctx('127.0.0.5', true, true));
    assert.ok('error' in r);
    assert.match(r.error, /only works for a peer at 127.0.0.1 \(this one is at 127.0.0.5\)/);
  });

  it('insecure is the administrator\'s choice, whatever loncAllowInsecure says', () => {
    assert.deepEqual(chooseKeyMode('insecure', ctx(remote, true, false)), { mode: 'insecure' });
  });

  it('only 127.0.0.1 itself is local', () => {
    assert.deepEqual(['127.0.0.1', '::FFFF:127.0.0.1', '127.0.0.2', 'localhost', '::1', '10.0.0.1'].map(isLocalAddress), [true, true, false, false, false, false]);
  });
});
