import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLocalKeyFile } from '../../src/peer/keymode/local';

describe('createLocalKeyFile', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-keyfile-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes 16 random bytes as 32 hex digits, mode 0640 whatever the umask', async () => {
    const old = process.umask(0o077);
    let k;
    try {
      k = await createLocalKeyFile(dir);
    } finally {
      process.umask(old);
    }
    assert.equal(path.dirname(k.file), dir);
    assert.equal(fs.readFileSync(k.file, 'latin1'), k.key.toString('hex'));
    assert.match(fs.readFileSync(k.file, 'latin1'), /^[0-9a-f]{32}$/);
    assert.equal(k.key.length, 16);
    assert.equal(fs.statSync(k.file).mode & 0o777, 0o640);
    const other = await createLocalKeyFile(dir);
    assert.notEqual(other.file, k.file);
    assert.notDeepEqual(other.key, k.key);
    await k.cleanup();
    await other.cleanup();
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('cleanup is idempotent and fine when lond removed the file already', async () => {
    const k = await createLocalKeyFile(dir);
    fs.rmSync(k.file);
    await k.cleanup();
    await k.cleanup();
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('never reuses an existing file (O_EXCL) nor follows a link', async () => {
    fs.writeFileSync(path.join(dir, 'taken'), 'old');
    await assert.rejects(createLocalKeyFile(dir, 'taken'), /cannot create the local key file .*taken: EEXIST/);
    assert.equal(fs.readFileSync(path.join(dir, 'taken'), 'latin1'), 'old');
    fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'link'));
    await assert.rejects(createLocalKeyFile(dir, 'link'), /EEXIST|ELOOP/);
    assert.equal(fs.existsSync(path.join(dir, 'elsewhere')), false);
    fs.rmSync(path.join(dir, 'taken'));
    fs.rmSync(path.join(dir, 'link'));
  });

  it('refuses a directory whose path would break the request line', async () => {
    await assert.rejects(createLocalKeyFile('/tmp/a:b'), /contains ':' or a line break/);
  });

  it('says which directory it could not write to', async () => {
    await assert.rejects(createLocalKeyFile(path.join(dir, 'missing')), /cannot create the local key file .*missing.*: ENOENT/);
  });
});
