import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { commandHelp, findCommand } from '../../src/ctl/help';
import { renderManPage } from '../../src/ctl/man';
import { checkSchema, DELAYED_SCHEMA, FieldDoc, STATUS_SCHEMA } from '../../src/ctl/schema';
import { sampleStatus } from './sample';

function names(fields: FieldDoc[], prefix = ''): string[] {
  return fields.flatMap((f) => [`${prefix}${f.name}`, ...(f.fields ? names(f.fields, `${prefix}${f.name}${f.type === 'object[]' ? '[]' : ''}.`) : [])]);
}

describe('status --json schema', () => {
  test('a complete status object matches', () => {
    assert.deepEqual(checkSchema(sampleStatus(), STATUS_SCHEMA), []);
  });

  test('a missing field, an undocumented one, a wrong type and a bad state are each named', () => {
    const st = sampleStatus() as unknown as Record<string, unknown> & { peers: Record<string, unknown>[] };
    delete st.pid;
    st.extra = 1;
    (st.peers[0] as Record<string, unknown>).state = 'sleeping';
    (st.peers[1] as Record<string, unknown>).queued = '3';
    ((st.peers[2] as Record<string, unknown>).sessions as Record<string, unknown>).busy = null;
    assert.deepEqual(checkSchema(st, STATUS_SCHEMA).sort(), [
      'extra: not documented',
      'peers[0].state: "sleeping" is not one of connecting, up, down, stopped',
      'peers[1].queued: expected integer, got "3"',
      'peers[2].sessions.busy: null, expected integer',
      'pid: missing',
    ]);
  });

  test('an enumerated field takes only its documented values', () => {
    const st = sampleStatus();
    (st.peers[0] as unknown as Record<string, unknown>).keyMode = 'ssl';
    (st.peers[1] as unknown as Record<string, unknown>).keyMode = 'rot13';
    assert.deepEqual(checkSchema(st, STATUS_SCHEMA), ['peers[1].keyMode: "rot13" is not one of ssl, local, insecure, none']);
  });

  test('null only where documented', () => {
    const st = sampleStatus();
    assert.ok(st.peers[2]?.handshakeMs === null, 'the sample has nulls in nullable fields');
    const bad = { ...sampleStatus(), hostId: null };
    assert.deepEqual(checkSchema(bad, STATUS_SCHEMA), ['hostId: null, expected string']);
    assert.deepEqual(checkSchema([], STATUS_SCHEMA), ['(top): not an object']);
  });

  test('delayed schema', () => {
    const notListed = { waiting: 0, setAside: 2 };
    assert.deepEqual(checkSchema({ dir: '/d', files: [{ name: 'a.b', peer: 'b', size: 3, mtime: 1.5, rejected: null }], notListed }, DELAYED_SCHEMA), []);
    assert.deepEqual(checkSchema({ dir: '/d', files: [{ name: 'a.b', peer: 'b', size: 3, rejected: null }], notListed }, DELAYED_SCHEMA), ['files[0].mtime: missing']);
  });

  test('every field is documented in `help status` and in the manual page', () => {
    const help = commandHelp(findCommand('status') ?? assert.fail('no status help'));
    const man = renderManPage();
    for (const f of STATUS_SCHEMA) assert.match(help, new RegExp(`^ +${f.name} +\\(`, 'm'), f.name);
    for (const n of names(STATUS_SCHEMA)) assert.ok(man.includes(`.B ${n}\n`), `man page lacks ${n}`);
    for (const n of names(DELAYED_SCHEMA)) assert.ok(man.includes(`.B ${n}\n`), `man page lacks ${n}`);
  });
});
