import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ConfigError, errnoReason, formatDiag } from '../../src/config/diag';

test('formatDiag: file:line, file alone, message alone', () => {
  const cases: [Parameters<typeof formatDiag>[0], string][] = [
    [{ file: 'a.conf', line: 7, severity: 'error', message: 'bad' }, 'a.conf:7: bad'],
    [{ file: 'a.conf', severity: 'warning', message: 'bad' }, 'a.conf: bad'],
    [{ file: '', severity: 'error', message: 'no config file given' }, 'no config file given'],
  ];
  for (const [d, want] of cases) assert.equal(formatDiag(d), want);
});

test('ConfigError carries its diag and formats its message from it', () => {
  const e = new ConfigError({ file: 'x.conf', line: 3, message: 'londPort must be a port number' });
  assert.ok(e instanceof Error);
  assert.ok(e instanceof ConfigError);
  assert.equal(e.name, 'ConfigError');
  assert.deepEqual(e.diag, { file: 'x.conf', line: 3, severity: 'error', message: 'londPort must be a port number' });
  assert.equal(e.message, 'x.conf:3: londPort must be a port number');
  const noLine = new ConfigError({ file: 'x.conf', message: 'm' });
  assert.equal('line' in noLine.diag, false);
  assert.equal(noLine.message, 'x.conf: m');
});

test('errnoReason drops the code and the path node adds', () => {
  let err: unknown;
  try {
    fs.readFileSync('/nonexistent/gatewayc-test-file');
  } catch (e) {
    err = e;
  }
  assert.equal(errnoReason(err), 'no such file or directory');
  assert.equal(errnoReason(Object.assign(new Error('weird'), { code: 'EWEIRD' })), 'EWEIRD');
  assert.equal(errnoReason(new Error('plain words')), 'plain words');
  assert.equal(errnoReason('str'), 'str');
});
