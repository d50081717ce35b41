// The soak's invariant checker on hand-made event sequences: each broken promise must
// produce its violation, and what the faults excuse must not — a checker that passes
// everything would make every soak run look clean.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Checker, Expect, ViolationKind } from '../../scripts/soak/checker';
import { Rng } from '../../scripts/soak/rng';
import { buildSchedule, FAULT_KINDS, sslAt } from '../../scripts/soak/schedule';
import { liveRequest, parseRequest, liveAnswer } from '../../scripts/soak/wire';

const cfg = { requestTimeoutMs: 4000, marginMs: 2000, recoverLimitMs: 15_000 };

function expectOf(token: string, size = 0): Expect {
  return liveRequest(token, size, false).expect;
}

const answer = (token: string, size = 0): Buffer => liveAnswer(token, size);
const CON_LOST = Buffer.from('con_lost');

function kinds(c: Checker): ViolationKind[] {
  return c.violations.map((v) => v.kind);
}

test('a correct answer is no violation and counts towards the latency of untouched peers', () => {
  const c = new Checker(cfg);
  c.sent('c1', 'p01', 'q1', expectOf('q1'), 100);
  c.line('c1', answer('q1'), 103);
  c.finish(10_000);
  assert.deepEqual(kinds(c), []);
  assert.equal(c.answers.ok, 1);
  assert.equal(c.latencyUntouched.length, 1);
  assert.equal(c.latencyUntouched.percentile(50), 3);
});

test("another request's answer is a wrong-answer violation naming both requests", () => {
  const c = new Checker(cfg);
  c.sent('c1', 'p01', 'q1', expectOf('q1'), 0);
  c.line('c1', answer('q2'), 5);
  assert.deepEqual(kinds(c), ['wrong-answer']);
  const v = c.violations[0];
  assert.equal(v?.id, 'q1');
  assert.equal(v?.peer, 'p01');
  assert.match(v?.detail ?? '', /q2/);
  assert.equal(c.answers.wrong, 1);
});

test('a large answer of the wrong length, or garbage, is an unexpected answer', () => {
  const c = new Checker(cfg);
  c.sent('c1', 'p01', 'q1', expectOf('q1', 1000), 0);
  c.line('c1', answer('q1', 999), 5);
  c.sent('c1', 'p01', 'q2', expectOf('q2'), 10);
  c.line('c1', Buffer.from('unknown_cmd'), 15);
  assert.deepEqual(kinds(c), ['unexpected-answer', 'unexpected-answer']);
});

test('a missing answer is a violation at the end; pipelined answers are matched in order', () => {
  const c = new Checker(cfg);
  c.sent('c1', 'p01', 'q1', expectOf('q1'), 0);
  c.sent('c1', 'p01', 'q2', expectOf('q2'), 0);
  c.sent('c1', 'p01', 'q3', expectOf('q3'), 0);
  c.line('c1', answer('q1'), 10);
  c.line('c1', answer('q2'), 20);
  c.finish(1000);
  assert.deepEqual(kinds(c), ['no-answer']);
  assert.equal(c.violations[0]?.id, 'q3');
  assert.equal(c.answers.none, 1);
});

test('an answer later than the request timeout plus the margin is late, found by tick before it arrives', () => {
  const c = new Checker(cfg);
  c.sent('c1', 'p01', 'q1', expectOf('q1'), 0);
  c.tick(5_999);
  assert.deepEqual(kinds(c), []);
  c.tick(6_001);
  assert.deepEqual(kinds(c), ['late']);
  // Reported once, even when the answer comes after all.
  c.line('c1', answer('q1'), 9000);
  assert.deepEqual(kinds(c), ['late']);
  // And found on arrival when no tick came in between.
  c.sent('c2', 'p02', 'q2', expectOf('q2'), 10_000);
  c.line('c2', answer('q2'), 16_500);
  assert.deepEqual(kinds(c), ['late', 'late']);
  assert.equal(c.violations[1]?.id, 'q2');
});

test("a pipelined request's time starts when the one before it was answered", () => {
  const c = new Checker(cfg);
  c.sent('c1', 'p01', 'q1', expectOf('q1'), 0);
  c.sent('c1', 'p01', 'q2', expectOf('q2'), 0);
  c.line('c1', CON_LOST, 4000);
  c.tick(9000);
  c.line('c1', answer('q2'), 9500);
  // q1's con_lost has no fault to excuse it; q2 took 9.5 s from its write but 5.5 from its turn.
  assert.deepEqual(kinds(c), ['con-lost-untouched']);
  assert.equal(c.pipelinedOverTimeout, 1);
});

test('con_lost is excused only on a peer a fault touched, until it recovered', () => {
  const c = new Checker(cfg);
  const f = c.openFault('lond-kill', ['p01'], 1000);
  c.sent('c1', 'p01', 'q1', expectOf('q1'), 900);
  c.line('c1', CON_LOST, 1001);
  c.sent('c2', 'p02', 'q2', expectOf('q2'), 1000);
  c.line('c2', CON_LOST, 1002);
  c.closeFault(f, 3000);
  // After the fault: con_lost until a request sent after it got its own answer...
  c.sent('c1', 'p01', 'q3', expectOf('q3'), 3100);
  c.line('c1', CON_LOST, 3101);
  c.sent('c1', 'p01', 'q4', expectOf('q4'), 3200);
  c.line('c1', answer('q4'), 3300);
  // ...and not after it.
  c.sent('c1', 'p01', 'q5', expectOf('q5'), 3400);
  c.line('c1', CON_LOST, 3401);
  assert.deepEqual(kinds(c), ['con-lost-untouched', 'con-lost-untouched']);
  assert.deepEqual(
    c.violations.map((v) => v.id),
    ['q2', 'q5'],
  );
  assert.equal(c.conLostExcused, 2);
  assert.deepEqual(c.conLostBy, { 'lond-kill': 2 });
});

test('a con_lost on a fault that never recovered, long after it ended, is not-recovered', () => {
  const c = new Checker(cfg);
  const f = c.openFault('lond-refuse', ['p01'], 0);
  c.closeFault(f, 1000);
  c.sent('c1', 'p01', 'q1', expectOf('q1'), 10_000);
  c.line('c1', CON_LOST, 10_001);
  c.sent('c1', 'p01', 'q2', expectOf('q2'), 17_000);
  c.line('c1', CON_LOST, 17_001);
  assert.deepEqual(kinds(c), ['not-recovered']);
  assert.equal(c.violations[0]?.id, 'q2');
});

test('a connection cut without an answer is excused by a daemon kill only', () => {
  const c = new Checker(cfg);
  c.sent('c1', 'p01', 'q1', expectOf('q1'), 0);
  const stall = c.openFault('lond-stall', ['p01'], 10);
  c.closed('c1', 20);
  c.closeFault(stall, 30);
  c.sent('c2', 'p01', 'q2', expectOf('q2'), 40);
  const kill = c.openFault('daemon-kill', ['p01', 'p02'], 50);
  c.closed('c2', 60);
  c.closeFault(kill, 2000);
  assert.deepEqual(kinds(c), ['cut']);
  assert.equal(c.violations[0]?.id, 'q1');
  assert.equal(c.cutExcused, 1);
});

test('a peer socket that refuses a client is a violation unless the daemon is down', () => {
  const c = new Checker(cfg);
  c.connectFailed('p01', 'k1', 100, 'ECONNREFUSED');
  const kill = c.openFault('daemon-kill', ['p01'], 200);
  c.connectFailed('p01', 'k2', 300, 'ECONNREFUSED');
  c.closeFault(kill, 400);
  assert.deepEqual(kinds(c), ['connect-failed']);
  assert.equal(c.violations[0]?.id, 'k1');
});

test('an answer line with no request waiting is an extra answer', () => {
  const c = new Checker(cfg);
  c.sent('c1', 'p01', 'q1', expectOf('q1'), 0);
  c.line('c1', answer('q1'), 1);
  c.line('c1', answer('q1'), 2);
  assert.deepEqual(kinds(c), ['extra-answer']);
});

test('delayed messages: a lost one is a violation, duplicates are counted, strangers and wrong peers flagged', () => {
  const c = new Checker(cfg);
  c.delayedWrittenAt('d1', 'p01', 0);
  c.delayedWrittenAt('d2', 'p02', 0);
  c.delayedWrittenAt('d3', 'p03', 0);
  c.delayedDeliveredAt('d1', 'p01', 50);
  c.delayedDeliveredAt('d1', 'p01', 80);
  c.delayedDeliveredAt('d3', 'p04', 90);
  c.delayedDeliveredAt('d9', 'p01', 100);
  assert.equal(c.delayedWaiting, 1);
  c.finish(1000);
  assert.deepEqual(kinds(c).sort(), ['delayed-lost', 'delayed-unknown', 'delayed-wrong-peer']);
  assert.equal(c.violations.find((v) => v.kind === 'delayed-lost')?.id, 'd2');
  assert.equal(c.delayedWritten, 3);
  assert.equal(c.delayedDelivered, 2);
  assert.equal(c.delayedDuplicates, 1);
  assert.equal(c.delayedLost, 1);
});

test('the lond parses what the load sends, tokens included', () => {
  const r = liveRequest('q42', 10, true);
  assert.match(r.line.toString(), /^encrypt:soak:q42:10:/);
  assert.deepEqual(parseRequest(r.line.subarray('encrypt:'.length)), { kind: 'live', token: 'q42', size: 10 });
  assert.deepEqual(parseRequest(Buffer.from('soakd:d7')), { kind: 'delayed', token: 'd7' });
  assert.deepEqual(parseRequest(Buffer.from('ping')), { kind: 'other' });
  assert.equal(liveAnswer('q42', 10).length, r.expect.length);
});

test('the schedule: the same seed gives the same faults; every kind appears even in a short run', () => {
  const o = { durationMs: 45_000, startSsl: false, hostile: true, daemonKills: 1, keymodeFlips: 1 };
  const a = buildSchedule(new Rng(7), o);
  assert.deepEqual(buildSchedule(new Rng(7), o), a);
  assert.notDeepEqual(buildSchedule(new Rng(8), o), a);
  for (const k of FAULT_KINDS) assert.ok(a.some((e) => e.kind === k), `${k} missing`);
  for (const e of a) {
    assert.ok(e.at >= 0 && e.at + e.durationMs <= o.durationMs, `${e.kind} at ${e.at} for ${e.durationMs}`);
    if (e.kind === 'tls-cut') assert.ok(sslAt(a, o.startSsl, e.at), 'tls-cut only while certificates are in force');
  }
  assert.equal(buildSchedule(new Rng(7), { ...o, hostile: false }).filter((e) => e.kind.startsWith('hostile')).length, 0);
});
