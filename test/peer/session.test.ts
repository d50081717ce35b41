// One Session against the fake lond (test/support, independent of src/): its events and
// the outcome of each request, without a Peer or a daemon around it.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { RequestOutcome, Session, SessionClosed, SessionKeyMode } from '../../src/peer/session';
import { systemClock } from '../../src/util/clock';
import { FakeLond, FakeLondOptions } from '../support/fake-lond';

const HOST = 'gwsess';
const londs: FakeLond[] = [];
after(async () => {
  for (const l of londs) await l.stop();
});

async function lond(opts: Partial<FakeLondOptions> = {}): Promise<FakeLond> {
  const l = await FakeLond.start({ id: 'sess1', clientId: HOST, host: '127.0.0.1', port: 0, ...opts });
  londs.push(l);
  return l;
}

interface Watched {
  session: Session;
  ready: Promise<number>;
  closed: Promise<SessionClosed>;
  available: number;
}

function open(l: FakeLond, keyMode: SessionKeyMode = { mode: 'insecure' }, handshakeTimeoutMs = 2000): Watched {
  let readyResolve!: (ms: number) => void;
  let closedResolve!: (c: SessionClosed) => void;
  const w = {
    ready: new Promise<number>((r) => (readyResolve = r)),
    closed: new Promise<SessionClosed>((r) => (closedResolve = r)),
    available: 0,
  } as Watched;
  w.session = new Session(
    { peerId: l.id, hostId: HOST, address: '127.0.0.1', port: l.port, connectTimeoutMs: 2000, handshakeTimeoutMs, maxAnswerBytes: 1 << 20, keyMode, clock: systemClock, warn: () => undefined },
    { ready: (ms) => readyResolve(ms), available: () => void w.available++, closed: (c) => closedResolve(c) },
  );
  w.session.open();
  return w;
}

function request(w: Watched, line: string, timeoutMs = 2000): Promise<RequestOutcome> {
  return new Promise((resolve) => w.session.request(Buffer.from(line, 'latin1'), timeoutMs, resolve));
}

const text = (o: RequestOutcome): string => ('answer' in o ? o.answer.toString('latin1') : `lost: ${o.lost}`);

describe('Session', () => {
  test('handshake, then plain and encrypted requests; available after each answer; exit on close', async () => {
    const l = await lond();
    const w = open(l);
    assert.ok((await w.ready) >= 0);
    assert.equal(text(await request(w, 'ping')), 'sess1');
    assert.equal(text(await request(w, 'encrypt:echo:secret words')), 'secret words');
    assert.equal(l.received.at(-1)?.encrypted, true);
    assert.equal(w.available, 2);
    w.session.close('done');
    const c = await w.closed;
    assert.deepEqual({ deliberate: c.deliberate, wasReady: c.wasReady }, { deliberate: true, wasReady: true });
    await l.waitFor(() => l.stats.exits === 1, 3000, 'exit reached lond');
  });

  test('two lines for one request: the first is the answer, the session closes before taking another', async () => {
    const l = await lond();
    const w = open(l);
    await w.ready;
    l.faults.garbage = Buffer.from('one\ntwo\n');
    assert.equal(text(await request(w, 'ping')), 'one');
    const c = await w.closed;
    assert.match(c.reason, /line nobody asked for/);
    assert.equal(c.deliberate, false);
    assert.equal(w.available, 0, 'never offered for another request');
  });

  test('bytes while nobody asked (a line in a later read): the session closes before the next request can take them', async () => {
    const l = await lond();
    const w = open(l);
    await w.ready;
    l.faults.lateData = { afterMs: 30, data: Buffer.from('x') };
    assert.equal(text(await request(w, 'ping')), 'sess1');
    const c = await w.closed;
    assert.match(c.reason, /1 bytes nobody asked for/);
  });

  test('a line of megabytes during the handshake is not waited for', async () => {
    const l = await lond({ faults: { pongReply: 'p'.repeat(200_000) } });
    const w = open(l);
    const c = await w.closed;
    assert.match(c.reason, /longer than 8192 bytes during the handshake/);
    assert.equal(c.wasReady, false);
  });

  test('no answer in time: lost, and the session is closed (a late answer must not meet the next request)', async () => {
    const l = await lond();
    const w = open(l);
    await w.ready;
    l.faults.stallRequests = true;
    assert.match(text(await request(w, 'ping', 200)), /^lost: no answer to the request within 0\.2 s/);
    assert.equal((await w.closed).wasReady, true);
  });

  test('a refused handshake: closed, not ready, refused', async () => {
    const l = await lond({ faults: { refuseInit: true } });
    const w = open(l);
    const c = await w.closed;
    assert.deepEqual({ wasReady: c.wasReady, refused: c.refused, deliberate: c.deliberate }, { wasReady: false, refused: true, deliberate: false });
    assert.match(c.reason, /refused to init/);
  });

  test('an enc: answer whose plaintext holds a line break is lost, not passed on as two lines', async () => {
    const l = await lond({ encryptAnswers: true, handler: () => 'a\nb' });
    const w = open(l);
    await w.ready;
    assert.match(text(await request(w, 'encrypt:x')), /^lost: .*line break/);
    await w.closed;
  });

  test('no usable key mode: closed at once with the reason, asynchronously', async () => {
    const l = await lond();
    const w = open(l, { error: 'no certificates' });
    const c = await w.closed;
    assert.equal(c.reason, 'no certificates');
    assert.equal(l.stats.connections, 0);
  });
});
