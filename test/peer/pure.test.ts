import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../../src/peer/backoff';
import { HandshakeChannel, HandshakeError, insecureHandshake } from '../../src/peer/handshake';
import { Deque } from '../../src/util/deque';
import { ownerOf } from '../../src/delayed/spool';
import { LatencyRing } from '../../src/peer/stats';

test('backoff: exponential with equal jitter, capped', () => {
  const policy = { baseMs: 1000, maxMs: 60_000 };
  assert.equal(backoffDelay(1, policy, () => 0), 500);
  assert.equal(backoffDelay(1, policy, () => 1), 1000);
  assert.equal(backoffDelay(3, policy, () => 0), 2000);
  assert.equal(backoffDelay(3, policy, () => 1), 4000);
  assert.equal(backoffDelay(30, policy, () => 1), 60_000);
  assert.equal(backoffDelay(30, policy, () => 0), 30_000);
  for (let a = 1; a < 40; a++) {
    const d = backoffDelay(a, policy);
    assert.ok(d > 0 && d <= 60_000);
  }
});

test('deque: FIFO with unshift, survives growth and wrap-around', () => {
  const q = new Deque<number>();
  const model: number[] = [];
  let n = 0;
  for (let i = 0; i < 5000; i++) {
    const op = (i * 7919) % 5;
    if (op < 2) {
      q.push(n);
      model.push(n++);
    } else if (op === 2) {
      q.unshift(n);
      model.unshift(n++);
    } else {
      assert.equal(q.shift(), model.shift());
    }
    assert.equal(q.length, model.length);
  }
  const rest: number[] = [];
  q.drain((x) => rest.push(x));
  assert.deepEqual(rest, model);
  assert.equal(q.shift(), undefined);
});

test('spool owner: suffix after a dot, literal, longest id wins', () => {
  const ids = new Set(['msul1', 'b', 'a.b', 'x-y']);
  assert.equal(ownerOf('1351688191.3.2345.put.msul1', ids), 'msul1');
  assert.equal(ownerOf('1.2.put.a.b', ids), 'a.b');
  assert.equal(ownerOf('1.2.put.b', ids), 'b');
  assert.equal(ownerOf('1.2.put.x-y', ids), 'x-y');
  assert.equal(ownerOf('1.2.put.msul11', ids), undefined, 'an id is not a prefix pattern');
  assert.equal(ownerOf('msul1', ids), undefined, 'needs a dot before the id');
  assert.equal(ownerOf('1.2.put.msu.1', ids), undefined);
});

test('latency ring: percentiles over the most recent samples', () => {
  const r = new LatencyRing(100);
  assert.equal(r.percentile(50), undefined);
  for (let i = 1; i <= 100; i++) r.add(i);
  assert.equal(r.percentile(50), 50);
  assert.equal(r.percentile(99), 99);
  for (let i = 0; i < 100; i++) r.add(1000);
  assert.equal(r.percentile(50), 1000, 'old samples are overwritten');
});

function channel(answers: Record<string, string>, warnings: string[] = [], sent: string[] = []): HandshakeChannel {
  return {
    async ask(step, line) {
      sent.push(`${step}:${line.toString()}`);
      const a = answers[step];
      if (a === undefined) throw new Error(`unexpected step ${step}`);
      return a;
    },
    warn: (m) => warnings.push(m),
  };
}

test('handshake: init, challenge echo, pong, ekey → key of the worked example', async () => {
  const sent: string[] = [];
  const warnings: string[] = [];
  const key = await insecureHandshake(
    channel({ init: '1234561700000000', challenge: 'ok', pong: 'msul1:msul2', ekey: '80516A0BBEF7EB9DBDBCACC727' }, warnings, sent),
    'msul1',
    'msul2',
  );
  assert.equal(key.toString('hex'), '624516245280516a0bbef7eb9dbdbcac');
  assert.deepEqual(sent, ['init:init', 'challenge:1234561700000000', 'pong:pong', 'ekey:ekey']);
  assert.deepEqual(warnings, []);
});

test('handshake: refusals and oddities', async () => {
  await assert.rejects(insecureHandshake(channel({ init: 'refused' }), 'p', 'l'), (e: HandshakeError) => e.refused && /refused to init/.test(e.message));
  await assert.rejects(insecureHandshake(channel({ init: '99', challenge: 'refused' }), 'p', 'l'), /did not accept the challenge echo: answered "refused"/);
  await assert.rejects(insecureHandshake(channel({ init: '99', challenge: 'ok', pong: 'p:l', ekey: '' }), 'p', 'l'), /empty line/);
  const warnings: string[] = [];
  await insecureHandshake(channel({ init: '99', challenge: 'ok', pong: 'other:l', ekey: 'XYZ-not-hex' }, warnings), 'p', 'l');
  assert.equal(warnings.length, 2);
  assert.match(warnings[0] as string, /pong reply does not start with the peer id/);
  assert.ok(!(warnings[1] as string).includes('XYZ'), 'the buildkey is a secret');
});

test('throttled warning: at most one per interval, with the count it swallowed', async () => {
  const { ThrottledWarning } = await import('../../src/util/throttle');
  let now = 0;
  const out: string[] = [];
  const w = new ThrottledWarning(10_000, (more) => out.push(`w${more}`), () => now);
  w.hit();
  w.hit();
  now = 5_000;
  w.hit();
  now = 10_001;
  w.hit();
  now = 10_002;
  w.hit();
  assert.deepEqual(out, ['w', 'w (2 more since the last warning)']);
});
