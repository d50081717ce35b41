// Issue 15: a stop leaves nothing it has accepted unanswered. These tests run the daemon
// without systemd (it owns its sockets); the restart and upgrade under systemd, where new
// clients wait in the socket's queue for the next daemon, are proven in test/system.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, afterEach, describe, test } from 'node:test';
import { ask, Client, sleep } from '../support/daemon';
import { Cleanup, lond, londsAndDaemon } from '../support/fixture';

const HOST = 'gwstop';
const cleanup = new Cleanup();
afterEach(() => cleanup.run());
after(() => cleanup.run());

/** Connects, waits `delayMs`, sends one line, reads one line (lonnet's way, a little slower). */
function lateAsk(sock: string, line: string, delayMs: number): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    let buf = '';
    c.on('connect', () => setTimeout(() => c.write(`${line}\n`), delayMs));
    c.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        resolve(buf.slice(0, nl));
        c.destroy();
      }
    });
    c.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    c.on('close', () => resolve('closed without an answer'));
  });
}

describe('stop', () => {
  test('every request already received or in flight gets its own answer; a connection that writes right after connecting is served', async () => {
    const { net: n, d } = await londsAndDaemon(cleanup, { hostId: HOST, ids: ['calm'], waitUp: true, lond: { serviceTimeMs: 200 }, settings: { gatewaycShutdownTimeout: 5 } });
    const l = lond(n, 'calm');
    const inFlight = Array.from({ length: 12 }, (_, i) => ask(d.socketPath('calm'), `echo:flight-${i}`));
    const pipelined = await Client.connect(d.socketPath('calm'));
    const piped = [0, 1, 2].map((i) => pipelined.ask(`echo:piped-${i}`));
    const silent = lateAsk(d.socketPath('calm'), 'echo:late-line', 300);
    await sleep(50);
    const started = Date.now();
    const stopped = d.stop();
    assert.deepEqual(await Promise.all(inFlight), Array.from({ length: 12 }, (_, i) => `flight-${i}`));
    assert.deepEqual(await Promise.all(piped), ['piped-0', 'piped-1', 'piped-2']);
    assert.equal(await silent, 'late-line', 'a line sent 300 ms after connecting, during the stop, is answered');
    assert.equal(await stopped, 0);
    assert.ok(Date.now() - started < 4000, 'a served client that stays connected does not hold the stop until the timeout');
    await l.waitFor(() => l.stats.exits >= 1, 3000, 'exit on the sessions');
    pipelined.close();
  });

  test('what is still unanswered at gatewaycShutdownTimeout gets con_lost; the daemon exits in time', async () => {
    const { d } = await londsAndDaemon(cleanup, { hostId: HOST, ids: ['slowpoke'], waitUp: true, settings: { gatewaycShutdownTimeout: 1, gatewaycRequestTimeout: 30 } });
    const pending = ask(d.socketPath('slowpoke'), 'sleep:5000');
    await sleep(100);
    const started = Date.now();
    const code = await d.stop();
    const took = Date.now() - started;
    assert.equal(code, 0);
    assert.equal(await pending, 'con_lost');
    assert.ok(took < 4000, `the stop took ${took} ms with a 1 s shutdown timeout`);
  });
});
