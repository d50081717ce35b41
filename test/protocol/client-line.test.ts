import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyClientLine } from '../../src/protocol/client-line';

const kind = (s: string): string => {
  const c = classifyClientLine(Buffer.from(s, 'latin1'));
  return c.kind === 'session-word' ? `word:${c.word}` : c.kind;
};

test('requests, close_connection_exit, and the words that belong to the session', () => {
  assert.equal(kind('close_connection_exit'), 'close-sessions');
  assert.equal(kind('close_connection_exit '), 'request', 'only the whole line, as PROTOCOL.md says');
  for (const w of ['ekey', 'EKEY', 'ekey\r', 'pong', 'exit', 'exit:', 'sethost:msul1', 'init', 'init:ssl:2.1', 'init:local:/x', 'initialize']) {
    assert.match(kind(w), /^word:/, w);
  }
  assert.equal(kind('enc:8:0011'), 'word:enc');
  for (const r of ['encrypt:passwd:x', 'ping', 'put:dom:user:k=v', 'echo:ekey', 'exitcode', 'pongs', 'sethostname', 'e', '', 'store:x', 'i', 'ekeys']) {
    assert.equal(kind(r), 'request', r);
  }
});
