import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { KEYS } from '../../src/config/settings';
import { withKeysTable } from '../../src/docs/keys-table';

const readme = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'README.md'), 'utf8');

test('README documents every config key exactly as the parser knows it (run: node build/scripts/gen-docs.js)', () => {
  assert.equal(readme, withKeysTable(readme));
  for (const k of KEYS) assert.ok(readme.includes(`\`${k.key}\``), k.key);
});

test('README opens with the two commands CI and a new user run', () => {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => (m[1] as string).trim());
  assert.ok(blocks.length >= 2);
  assert.equal(blocks[0], 'npm ci && npm run demo');
  const ci = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', '.ci', 'run'), 'utf8');
  assert.ok(ci.includes(blocks[1] as string), `.ci/run must run the README's test command: ${blocks[1]}`);
});

test('the packaged gatewayc.conf and gatewayc.conf(5) list the keys as the parser knows them (run: npm run gen-docs)', () => {
  const r = spawnSync(process.execPath, [path.resolve(__dirname, '..', '..', '..', 'debian', 'gen-keys'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
