// The peer's state machine, pool and queue against fake sessions and a fake clock:
// deterministic, no sockets, no real time.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Peer, PeerSettings, PeerStateChange } from '../../src/peer/peer';
import type { Answer } from '../../src/peer/request';
import { FakeClock, FakeSession, memoryLogger, sessionFactory, settle } from './fakes';

const SETTINGS: PeerSettings = {
  hostId: 'me',
  address: '127.0.0.9',
  port: 5663,
  maxSessions: 3,
  connectTimeoutMs: 1000,
  handshakeTimeoutMs: 1000,
  requestTimeoutMs: 5000,
  idleTimeoutMs: 30_000,
  maxAttempts: 3,
  retryMaxMs: 60_000,
  maxQueue: 5,
  maxAnswerBytes: 1 << 20,
  keyMode: { mode: 'insecure' },
};

function makePeer(settings: Partial<PeerSettings> = {}) {
  const clock = new FakeClock();
  const factory = sessionFactory();
  const { log, records } = memoryLogger();
  const peer = new Peer('alpha', { ...SETTINGS, ...settings }, { log, clock, openSession: factory.open });
  const changes: PeerStateChange[] = [];
  peer.stateChanged.on((c) => changes.push(c));
  const events = (name: string): Record<string, unknown>[] => records.filter((r) => r.event === name);
  const open = (): FakeSession[] => factory.sessions.filter((s) => !s.closed);
  return { clock, sessions: factory.sessions, open, peer, changes, events };
}

/** A request whose answer lands in `answers` (in arrival order of answers). */
function ask(peer: Peer, line: string, answers: (string | null)[], priority?: 'live' | 'delayed') {
  return peer.request(Buffer.from(line), {
    ...(priority ? { priority } : {}),
    onAnswer: (a: Answer) => answers.push(a === undefined ? null : a.toString('latin1')),
  });
}

/** The invariant the wedge broke: a peer that is not stopped always has a way forward. */
function assertServiceable(p: ReturnType<typeof makePeer>): void {
  const st = p.peer.snapshot();
  if (st.state === 'stopped') return;
  const hasWay = st.sessions.open + st.sessions.opening > 0 || p.clock.pending > 0;
  assert.ok(hasWay, `peer ${st.state} with no session, none opening and no timer`);
  assert.ok(st.sessions.open + st.sessions.opening <= SETTINGS.maxSessions, 'more sessions than gatewaycMaxSessions');
}

describe('peer state machine', () => {
  test('connecting → up when the first handshake finishes; one state change, logged by event', () => {
    const p = makePeer();
    p.peer.start();
    assert.equal(p.peer.currentState, 'connecting');
    assert.equal(p.sessions.length, 1);
    p.sessions[0]!.handshakeDone(7);
    assert.equal(p.peer.currentState, 'up');
    assert.deepEqual(p.changes.map((c) => `${c.from}>${c.to}`), ['connecting>up']);
    assert.equal(p.events('peer.up').length, 1);
    assert.equal(p.peer.snapshot().handshakeMs, 7);
  });

  test('failed attempts back off, then down: queued requests con_lost, new ones at once, slow retry, revival', async () => {
    const p = makePeer();
    p.peer.start();
    const answers: (string | null)[] = [];
    ask(p.peer, 'queued-while-connecting', answers);
    p.sessions[0]!.die('connection refused');
    assert.equal(p.peer.currentState, 'connecting');
    assert.equal(p.events('peer.attempt-failed').length, 1);
    const next = p.peer.snapshot().nextAttemptAt as number;
    assert.ok(next - p.clock.now() >= 500 && next - p.clock.now() <= 1000, 'first retry after 0.5–1 s');
    p.clock.advance(1000);
    assert.equal(p.sessions.length, 2);
    p.sessions[1]!.die('connection refused');
    p.clock.advance(2000);
    assert.equal(p.sessions.length, 3);
    p.sessions[2]!.die('connection refused');
    assert.equal(p.peer.currentState, 'down');
    assert.equal(p.events('peer.down').length, 1);
    await settle();
    assert.deepEqual(answers, [null], 'the queued request got con_lost when the peer went down');
    const now: (string | null)[] = [];
    ask(p.peer, 'while-down', now);
    assert.deepEqual(now, [], 'never answered before request() returns');
    await settle();
    assert.deepEqual(now, [null]);
    assert.equal(p.peer.snapshot().nextAttemptAt, p.clock.now() + SETTINGS.retryMaxMs);
    p.clock.advance(SETTINGS.retryMaxMs);
    assert.equal(p.sessions.length, 4);
    p.sessions[3]!.handshakeDone();
    assert.equal(p.peer.currentState, 'up');
    assert.equal(p.peer.snapshot().failures, 0);
    assertServiceable(p);
  });

  test('retry() brings a down peer back at once', () => {
    const p = makePeer({ maxAttempts: 1 });
    p.peer.start();
    p.sessions[0]!.die('refused');
    assert.equal(p.peer.currentState, 'down');
    p.peer.retry();
    assert.equal(p.peer.currentState, 'connecting');
    assert.equal(p.sessions.length, 2);
    assert.equal(p.peer.snapshot().nextAttemptAt, null);
  });

  test('up → connecting at once when the last session is lost; a long-lived one reconnects without a failure', () => {
    const p = makePeer();
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    p.sessions[0]!.die('connection reset', { livedMs: 60_000 });
    assert.equal(p.peer.currentState, 'connecting');
    assert.deepEqual(p.changes.map((c) => c.to), ['up', 'connecting']);
    assert.equal(p.peer.snapshot().failures, 0);
    assert.equal(p.sessions.length, 2, 'reconnects at once');
    assert.equal(p.events('session.lost').length, 1);
  });

  test('a session that dies right after its handshake counts as a failed attempt', () => {
    const p = makePeer();
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    p.sessions[0]!.die('peer closed the connection', { livedMs: 10 });
    assert.equal(p.peer.snapshot().failures, 1);
    assert.equal(p.sessions.length, 1, 'no immediate reconnect: backoff');
    assertServiceable(p);
  });
});

describe('requests', () => {
  test('answered asynchronously and in the pool, one request per session, more sessions while requests wait', async () => {
    const p = makePeer();
    p.peer.start();
    const answers: (string | null)[] = [];
    ask(p.peer, 'a', answers);
    ask(p.peer, 'b', answers);
    ask(p.peer, 'c', answers);
    assert.equal(p.sessions.length, 1, 'while connecting, one attempt only');
    p.sessions[0]!.handshakeDone();
    assert.deepEqual(p.sessions[0]!.sent, ['a']);
    assert.equal(p.sessions.length, 3, 'grows for the waiting requests');
    p.sessions[1]!.handshakeDone();
    p.sessions[2]!.handshakeDone();
    assert.deepEqual(p.sessions.map((s) => s.sent.join(',')), ['a', 'b', 'c']);
    ask(p.peer, 'd', answers);
    assert.equal(p.sessions.length, 3, 'never beyond gatewaycMaxSessions');
    p.sessions[1]!.answer('B');
    assert.deepEqual(p.sessions[1]!.sent, ['b', 'd'], 'the freed session takes the waiting request');
    await settle();
    assert.deepEqual(answers, ['B']);
    p.sessions[0]!.answer('A');
    p.sessions[2]!.answer('C');
    p.sessions[1]!.answer('D');
    await settle();
    assert.deepEqual(answers, ['B', 'A', 'C', 'D']);
    assert.equal(p.peer.snapshot().requests, 4);
  });

  test('delayed messages go ahead of waiting live requests', () => {
    const p = makePeer({ maxSessions: 1 });
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    const answers: (string | null)[] = [];
    ask(p.peer, 'live-1', answers);
    ask(p.peer, 'live-2', answers);
    ask(p.peer, 'delayed', answers, 'delayed');
    p.sessions[0]!.answer('x');
    p.sessions[0]!.answer('y');
    assert.deepEqual(p.sessions[0]!.sent, ['live-1', 'delayed', 'live-2']);
  });

  test('gatewaycMaxQueue: requests beyond it get con_lost at once, one throttled warning', async () => {
    const p = makePeer({ maxSessions: 1, maxQueue: 2 });
    p.peer.start();
    const answers: (string | null)[] = [];
    for (let i = 0; i < 6; i++) ask(p.peer, `r${i}`, answers);
    await settle();
    assert.deepEqual(answers, [null, null, null, null]);
    assert.equal(p.events('request.queue-full').length, 1);
    assert.equal(p.peer.snapshot().queued, 2);
    assert.equal(p.peer.snapshot().conLost, 4);
  });

  test('a request still queued at its deadline gets con_lost and is never sent', async () => {
    const p = makePeer();
    p.peer.start();
    const answers: (string | null)[] = [];
    ask(p.peer, 'late', answers);
    p.clock.advance(SETTINGS.requestTimeoutMs);
    await settle();
    assert.deepEqual(answers, [null]);
    p.sessions[0]!.handshakeDone();
    assert.deepEqual(p.sessions[0]!.sent, []);
    assert.equal(p.events('request.queue-timeout').length, 1);
  });

  test('cancel: a queued request is never sent; a sent one has its answer dropped; the queue frees its place', async () => {
    const p = makePeer({ maxSessions: 1, maxQueue: 1 });
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    const answers: (string | null)[] = [];
    const sent = ask(p.peer, 'in-flight', answers);
    const queued = ask(p.peer, 'queued', answers);
    queued.cancel();
    assert.equal(p.peer.snapshot().queued, 0);
    ask(p.peer, 'after', answers);
    sent.cancel();
    p.sessions[0]!.answer('dropped');
    p.sessions[0]!.answer('AFTER');
    await settle();
    assert.deepEqual(p.sessions[0]!.sent, ['in-flight', 'after']);
    assert.deepEqual(answers, ['AFTER']);
  });

  test('a session lost with a request on it: con_lost for that request, never sent again', async () => {
    const p = makePeer();
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    const answers: (string | null)[] = [];
    ask(p.peer, 'once', answers);
    p.sessions[0]!.die('connection reset');
    await settle();
    assert.deepEqual(answers, [null]);
    p.sessions[1]!.handshakeDone();
    assert.deepEqual(p.sessions[1]!.sent, []);
    assert.equal(p.events('request.lost').length, 1);
  });

  test('extra sessions close after gatewaycIdleTimeout, the first stays', () => {
    const p = makePeer();
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    const answers: (string | null)[] = [];
    ask(p.peer, 'a', answers);
    ask(p.peer, 'b', answers);
    p.sessions[1]!.handshakeDone();
    p.sessions[0]!.answer('A');
    p.sessions[1]!.answer('B');
    assert.equal(p.open().length, 2);
    p.clock.advance(SETTINGS.idleTimeoutMs);
    assert.equal(p.open().length, 1);
    p.clock.advance(SETTINGS.idleTimeoutMs * 10);
    assert.equal(p.open().length, 1);
    assert.equal(p.peer.currentState, 'up');
  });

  test('a failing extra session does not make the pool retry at once (out of descriptors)', () => {
    const p = makePeer();
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    const answers: (string | null)[] = [];
    ask(p.peer, 'a', answers);
    ask(p.peer, 'b', answers);
    assert.equal(p.sessions.length, 2);
    p.sessions[1]!.die('EMFILE');
    ask(p.peer, 'c', answers);
    assert.equal(p.sessions.length, 2, 'no new attempt right after the failure');
    assert.equal(p.events('session.extra-failed').length, 1);
    p.clock.advance(2000);
    ask(p.peer, 'd', answers);
    assert.ok(p.sessions.length > 2, 'grows again after the back-off');
  });
});

describe('close_connection_exit', () => {
  test('idle sessions close now, busy ones after their answer; the next request gets a fresh session', async () => {
    const p = makePeer();
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    const answers: (string | null)[] = [];
    ask(p.peer, 'a', answers);
    ask(p.peer, 'b', answers);
    p.sessions[1]!.handshakeDone();
    p.sessions[1]!.answer('B');
    p.peer.closeSessions();
    assert.ok(p.sessions[1]!.closed, 'the idle one closed');
    assert.ok(!p.sessions[0]!.closed, 'the busy one carries on');
    p.sessions[0]!.answer('A');
    await settle();
    assert.deepEqual(answers, ['B', 'A']);
    assert.ok(p.sessions[0]!.closed, 'closed after its answer');
    assert.equal(p.open().length, 1, 'one fresh session');
    assertServiceable(p);
  });

  test('two back to back do not wedge the peer (issue 11, finding 14); a storm is one close', () => {
    const p = makePeer();
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    p.peer.closeSessions();
    p.peer.closeSessions();
    assertServiceable(p);
    assert.equal(p.open().length, 1);
    p.open()[0]!.handshakeDone();
    for (let i = 0; i < 300; i++) p.peer.closeSessions();
    assert.equal(p.sessions.length, 2, '300 lines within a second open no new session');
    p.clock.advance(1500);
    p.peer.closeSessions();
    assert.equal(p.sessions.length, 3, 'a second later it closes again');
    p.open()[0]!.handshakeDone();
    assert.equal(p.peer.currentState, 'up');
    assertServiceable(p);
  });
});

describe('stop and reload', () => {
  test('stop: queued con_lost, idle exit now, busy after the answer; resolves when all are closed', async () => {
    const p = makePeer({ maxSessions: 2 });
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    const answers: (string | null)[] = [];
    ask(p.peer, 'busy', answers);
    ask(p.peer, 'b2', answers);
    p.sessions[1]!.handshakeDone();
    p.sessions[1]!.answer('B2');
    ask(p.peer, 'queued-1', answers);
    ask(p.peer, 'queued-2', answers);
    ask(p.peer, 'queued-3', answers);
    let stopped = false;
    void p.peer.stop(5000).then(() => (stopped = true));
    await settle();
    assert.equal(p.peer.currentState, 'stopped');
    assert.deepEqual(answers, ['B2', null, null], 'what was still queued got con_lost');
    assert.ok(!stopped);
    p.sessions[0]!.answer('BUSY');
    await settle();
    assert.ok(p.sessions[0]!.closed, 'closed after its answer');
    assert.ok(!stopped, 'one session still carries queued-1');
    p.sessions[1]!.answer('Q1');
    await settle();
    assert.ok(stopped);
    assert.deepEqual(answers, ['B2', null, null, 'BUSY', 'Q1']);
    assert.equal(p.open().length, 0);
  });

  test('stop: a session that does not answer within the grace is closed anyway', async () => {
    const p = makePeer();
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    const answers: (string | null)[] = [];
    ask(p.peer, 'slow', answers);
    let stopped = false;
    void p.peer.stop(2000).then(() => (stopped = true));
    p.clock.advance(2000);
    await settle();
    assert.ok(stopped);
    assert.deepEqual(answers, [null]);
  });

  test('reload with a new address reconnects; the same settings change nothing', () => {
    const p = makePeer();
    p.peer.start();
    p.sessions[0]!.handshakeDone();
    assert.equal(p.peer.update({ ...SETTINGS, requestTimeoutMs: 9000 }), false);
    assert.equal(p.sessions.length, 1);
    assert.equal(p.peer.update({ ...SETTINGS, address: '127.0.0.10' }), true);
    assert.ok(p.sessions[0]!.closed);
    assert.equal(p.sessions.length, 2);
    assert.equal(p.sessions[1]!.opts.address, '127.0.0.10');
    assertServiceable(p);
  });
});

test('property: random sessions dying, answers, closes, retries, reloads — the peer always has a way forward', async () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let run = 0; run < 40; run++) {
    const p = makePeer({ maxAttempts: 1 + rnd(4) });
    p.peer.start();
    const answers: (string | null)[] = [];
    let asked = 0;
    for (let step = 0; step < 200; step++) {
      const live = p.open();
      const s = live[rnd(Math.max(1, live.length))];
      switch (rnd(9)) {
        case 0:
          ask(p.peer, `r${asked++}`, answers);
          break;
        case 1:
          if (s && !s.busy) {
            try {
              s.handshakeDone();
            } catch {
              // already ready
            }
          }
          break;
        case 2:
          if (s?.busy) s.answer('x');
          break;
        case 3:
          s?.die('reset', { livedMs: rnd(2) === 0 ? 10 : 60_000 });
          break;
        case 4:
          p.peer.closeSessions();
          break;
        case 5:
          p.clock.advance(rnd(70_000));
          break;
        case 6:
          p.peer.retry();
          break;
        case 7:
          p.peer.update({ ...SETTINGS, address: `127.0.0.${1 + rnd(3)}` });
          break;
        default:
          ask(p.peer, `r${asked++}`, answers, 'delayed');
      }
      assertServiceable(p);
    }
    void p.peer.stop(1000);
    p.clock.advance(1000);
    await settle();
    await settle();
    assert.equal(answers.length, asked, `run ${run}: every request got exactly one answer`);
  }
});
