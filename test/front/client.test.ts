// ClientConnection on a real UNIX socket pair, with a fake peer behind it: what a client
// sees, what reaches the peer, and when the connection stops taking work.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { ClientConnection, RequestSink } from '../../src/front/client';
import type { Answer, RequestOptions } from '../../src/peer/request';
import { ByteBudget } from '../../src/util/budget';
import { Clock, systemClock } from '../../src/util/clock';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-client-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A peer that records requests and answers them only when the test says so. */
class FakeSink implements RequestSink {
  readonly requests: { line: string; answer: (a: Answer) => void; cancelled: boolean }[] = [];
  closes = 0;

  request(line: Buffer, opts: RequestOptions) {
    const r = { line: line.toString('latin1'), answer: (a: Answer) => (r.cancelled ? undefined : opts.onAnswer(a)), cancelled: false };
    this.requests.push(r);
    return { cancel: () => void (r.cancelled = true) };
  }

  closeSessions(): void {
    this.closes++;
  }
}

interface Pair {
  client: net.Socket;
  sink: FakeSink;
  budget: ByteBudget;
  events: string[];
  lines: string[];
  conn: ClientConnection;
}

async function pair(opts: { maxRequestBytes?: number; budgetBytes?: number; read?: boolean; clock?: Clock } = {}): Promise<Pair> {
  const sockPath = path.join(dir, `s${n++}`);
  const sink = new FakeSink();
  const budget = new ByteBudget({ limit: opts.budgetBytes ?? 1 << 30, clock: systemClock, stallMs: 60_000 });
  const events: string[] = [];
  let conn!: ClientConnection;
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    conn = new ClientConnection(sock, sink, { maxRequestBytes: opts.maxRequestBytes ?? 1024, budget, clock: opts.clock ?? systemClock }, {
      oversize: () => events.push('oversize'),
      sessionWord: (w) => events.push(`word:${w}`),
      evicted: () => events.push('evicted'),
    });
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  const client = net.connect(sockPath);
  await new Promise((r) => client.once('connect', r));
  const lines: string[] = [];
  let buf = '';
  if (opts.read !== false) {
    client.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  after(() => {
    client.destroy();
    server.close();
  });
  await waitFor(() => conn !== undefined);
  return { client, sink, budget, events, lines, conn };
}

async function waitFor(pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('ClientConnection', () => {
  test('one request at a time, answers in order, con_lost for a lost one', async () => {
    const p = await pair();
    p.client.write('a\nb\nc\n');
    await waitFor(() => p.sink.requests.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(p.sink.requests.length, 1, 'the second waits for the first answer');
    p.sink.requests[0]!.answer(Buffer.from('A'));
    await waitFor(() => p.sink.requests.length === 2);
    p.sink.requests[1]!.answer(undefined);
    await waitFor(() => p.sink.requests.length === 3);
    p.sink.requests[2]!.answer(Buffer.from('C'));
    await waitFor(() => p.lines.length === 3);
    assert.deepEqual(p.lines, ['A', 'con_lost', 'C']);
  });

  test('close_connection_exit and session words are answered here; the peer sees neither', async () => {
    const p = await pair();
    p.client.write('close_connection_exit\nekey\ninit\npong\nexit\nsethost:x\nenc:1:00\nping\n');
    await waitFor(() => p.sink.requests.length === 1);
    p.sink.requests[0]!.answer(Buffer.from('pong-answer'));
    await waitFor(() => p.lines.length === 8);
    assert.deepEqual(p.lines, ['ok', 'refused', 'refused', 'refused', 'refused', 'refused', 'refused', 'pong-answer']);
    assert.deepEqual(p.sink.requests.map((r) => r.line), ['ping']);
    assert.equal(p.sink.closes, 1);
    assert.deepEqual(p.events, ['word:ekey', 'word:init', 'word:pong', 'word:exit', 'word:sethost', 'word:enc']);
  });

  test('a line over gatewaycMaxRequestBytes: an error line in its place, the connection carries on', async () => {
    const p = await pair({ maxRequestBytes: 10 });
    p.client.write(`${'x'.repeat(50)}\nok-size\n`);
    await waitFor(() => p.sink.requests.length === 1);
    p.sink.requests[0]!.answer(Buffer.from('fine'));
    await waitFor(() => p.lines.length === 2);
    assert.deepEqual(p.lines, ['error: request longer than gatewaycMaxRequestBytes (10 bytes)', 'fine']);
  });

  test('the client leaves: once its answer cannot be written, the rest is dropped and its bytes leave the budget', async () => {
    const p = await pair();
    p.client.write('slow\nmaybe\nnever\n');
    await waitFor(() => p.sink.requests.length === 1);
    assert.ok(p.budget.bytes > 0);
    // A closed client and a half-closed one look the same on a UNIX socket (both send
    // FIN): the daemon learns which from the failed write of the answer.
    p.client.destroy();
    await new Promise((r) => setTimeout(r, 20));
    p.sink.requests[0]!.answer(Buffer.from('to nobody'));
    await waitFor(() => p.budget.bytes === 0).catch(() => assert.fail(`budget still holds ${p.budget.bytes} bytes`));
    assert.ok(p.sink.requests.length <= 2, `the third line is never sent: ${JSON.stringify(p.sink.requests)}`);
    assert.ok(p.sink.requests.slice(1).every((r) => r.cancelled), 'what was sent after the client left is cancelled');
  });

  test('a client that does not read: no next request while 1 MiB of answers is unread', async () => {
    const p = await pair({ read: false });
    p.client.pause();
    p.client.write('big-1\nbig-2\nbig-3\n');
    await waitFor(() => p.sink.requests.length === 1);
    p.sink.requests[0]!.answer(Buffer.alloc(4 * 1024 * 1024, 0x61));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(p.sink.requests.length, 1, 'the next request waits while the answer is unread');
    p.client.resume();
    await waitFor(() => p.sink.requests.length === 2);
  });

  test('a full budget: the next request waits until there is room', async () => {
    const p = await pair({ budgetBytes: 100 });
    p.budget.charge(200); // someone else holds it all
    p.client.write('waits\n');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(p.sink.requests.length, 0);
    p.budget.charge(-200);
    await waitFor(() => p.sink.requests.length === 1);
  });

  test('half-close after the last request: all answers still arrive, then the end', async () => {
    const p = await pair();
    p.client.end('x\ny\n');
    await waitFor(() => p.sink.requests.length === 1);
    p.sink.requests[0]!.answer(Buffer.from('X'));
    await waitFor(() => p.sink.requests.length === 2);
    p.sink.requests[1]!.answer(Buffer.from('Y'));
    await new Promise((r) => p.client.once('end', r));
    assert.deepEqual(p.lines, ['X', 'Y']);
  });

  test('idle since its last byte, for the listener that needs a slot; never while it has a request to carry', async () => {
    let t = 1_000_000;
    const clock: Clock = { now: () => t, after: (ms, fn) => systemClock.after(ms, fn) };
    const p = await pair({ clock });
    t += 5000;
    assert.equal(p.conn.idleSince(), 1_000_000, 'silent since it connected');
    p.client.write('ask\n');
    await waitFor(() => p.sink.requests.length === 1);
    assert.equal(p.conn.idleSince(), undefined, 'a request in flight');
    t += 1000;
    p.sink.requests[0]!.answer(Buffer.from('A'));
    await waitFor(() => p.lines.length === 1);
    assert.equal(p.conn.idleSince(), t, 'idle again since its answer went out');
    t += 1000;
    p.client.write('half a li');
    await waitFor(() => p.conn.idleSince() === t);
    t += 1000;
    p.conn.displace();
    await new Promise((r) => p.client.once('end', r));
    assert.deepEqual(p.lines, ['A', 'con_lost'], 'the half-sent request is answered con_lost');
    assert.equal(p.sink.requests.length, 1);
    assert.equal(p.budget.bytes, 0);
  });

  test('a client taking a large answer slowly is not idle; one that stopped reading is', async () => {
    let t = 1_000_000;
    const clock: Clock = { now: () => t, after: (ms, fn) => systemClock.after(ms, fn) };
    const p = await pair({ clock, read: false });
    p.client.pause();
    p.client.write('big\n');
    await waitFor(() => p.sink.requests.length === 1);
    t += 1000;
    p.sink.requests[0]!.answer(Buffer.alloc(16 * 1024 * 1024, 0x61));
    t += 1000;
    assert.equal(p.conn.idleSince(), t, 'first look: its answer is on its way');
    const firstLook = t;
    t += 5000;
    assert.equal(p.conn.idleSince(), firstLook, 'nothing taken since: idle since the first look');
    let got = 0;
    p.client.on('data', (c: Buffer) => {
      got += c.length;
      if (got > 1024 * 1024) p.client.pause();
    });
    p.client.resume();
    await waitFor(() => got > 1024 * 1024);
    await new Promise((r) => setTimeout(r, 50));
    t += 1000;
    assert.equal(p.conn.idleSince(), t, 'it took part of the answer: busy');
  });
});
