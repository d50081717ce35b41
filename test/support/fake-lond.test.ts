// Drives the fake lond with a raw TCP client written here. The key and the enc: framing
// are computed again below by tiny helpers of this file, so the fake lond is checked
// against a second reading of PROTOCOL.md, not against itself. The client's IDEA is
// OpenSSL's where this node has it, so a fake lond on the plain IDEA (idea-plain.ts) is
// checked against OpenSSL here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { FakeLond, FakeLondOptions, londKey, startLondNetwork } from './fake-lond';
import { commandName, parseCliArgs } from './fake-lond-cli';
import { IdeaBackend, ideaEcb as ideaWith, NO_OPENSSL_IDEA, opensslHasIdea } from './lond-idea';

// ---- independent helpers --------------------------------------------------------------

function testKey(P: string, L: string, b: string): string {
  const digits = 'GHIJKLMNOPQRSTUVWXYZ';
  let k = '';
  for (const ch of (P + L).toUpperCase()) k += digits.includes(ch) ? String(digits.indexOf(ch) % 10) : ch;
  const s = (k + b + k + b + k + b).slice(0, 32).padEnd(32, '0');
  let hex = '';
  for (const ch of s) hex += (/[A-Za-z]/.test(ch) ? (ch.charCodeAt(0) + 9) & 15 : ch.charCodeAt(0) & 15).toString(16);
  return hex;
}

const CLIENT_IDEA: IdeaBackend = opensslHasIdea() ? 'openssl' : 'plain';

function ideaEcb(decrypt: boolean, keyHex: string, data: Buffer): Buffer {
  return ideaWith(CLIENT_IDEA, decrypt, Buffer.from(keyHex, 'hex'), data);
}

/** The fake lond's IDEA backends to run a test with: the plain one always, OpenSSL's where present. */
const LOND_IDEAS: { idea: IdeaBackend; skip: string | false }[] = [
  { idea: 'plain', skip: false },
  { idea: 'openssl', skip: opensslHasIdea() ? false : NO_OPENSSL_IDEA },
];

function testEnc(keyHex: string, cmd: Buffer | string): string {
  const plain = Buffer.from(cmd);
  const blocks = Math.floor(plain.length / 8) + 1;
  const padded = Buffer.concat([plain, Buffer.alloc(blocks * 8 - plain.length, ' ')]);
  return `enc:${plain.length}:${ideaEcb(false, keyHex, padded).toString('hex')}`;
}

function testDec(keyHex: string, line: Buffer): Buffer {
  const [tag, len, hex] = line.toString('latin1').split(':');
  assert.equal(tag, 'enc');
  assert.match(hex, /^[0-9a-f]*$/);
  assert.equal(hex.length, (Math.floor(Number(len) / 8) + 1) * 16, 'floor(L/8)+1 blocks');
  return ideaEcb(true, keyHex, Buffer.from(hex, 'hex')).subarray(0, Number(len));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class RawClient {
  private buf: Buffer = Buffer.alloc(0);
  all: Buffer = Buffer.alloc(0);
  closed = false;
  error: NodeJS.ErrnoException | null = null;
  private wake: (() => void) | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.all = Buffer.concat([this.all, d]);
      this.notify();
    });
    socket.on('error', (e) => {
      this.error = e;
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => {
        s.off('error', reject);
        resolve(new RawClient(s));
      });
      s.once('error', reject);
    });
  }

  send(line: Buffer | string): void {
    this.socket.write(Buffer.concat([Buffer.from(line), Buffer.from('\n')]));
  }

  async line(timeoutMs = 3000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0) {
        const l = this.buf.subarray(0, nl);
        this.buf = this.buf.subarray(nl + 1);
        return l;
      }
      if (this.closed) throw new Error('connection closed before a line');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no line in time');
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, left);
      });
    }
  }

  async text(timeoutMs?: number): Promise<string> {
    return (await this.line(timeoutMs)).toString('latin1');
  }

  async waitClose(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection not closed in time');
      await sleep(10);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

interface Handshake {
  challenge: string;
  pong: string;
  buildkey: string;
  keyHex: string;
}

async function handshake(c: RawClient, peerId: string, clientId: string): Promise<Handshake> {
  c.send('init');
  const challenge = await c.text();
  assert.match(challenge, /^[0-9]+$/);
  c.send(challenge);
  assert.equal(await c.text(), 'ok');
  c.send('pong');
  const pong = await c.text();
  c.send('ekey');
  const buildkey = await c.text();
  return { challenge, pong, buildkey, keyHex: testKey(peerId, clientId, buildkey) };
}

async function withLond(opts: Partial<FakeLondOptions>, fn: (lond: FakeLond) => Promise<void>): Promise<void> {
  const lond = await FakeLond.start({ id: 'lond1', clientId: 'gw1', ...opts });
  try {
    await fn(lond);
  } finally {
    await lond.stop();
  }
}

async function session(lond: FakeLond, host = '127.0.0.1'): Promise<{ c: RawClient; hs: Handshake }> {
  const c = await RawClient.connect(lond.port, host);
  return { c, hs: await handshake(c, lond.id, 'gw1') };
}

async function assertSilence(c: RawClient, ms: number): Promise<void> {
  const before = c.all.length;
  await sleep(ms);
  assert.equal(c.all.length, before, 'expected no bytes');
}

// ---- key derivation --------------------------------------------------------------------

test('londKey: PROTOCOL.md worked example', () => {
  assert.equal(londKey('msul1', 'msul2', '80516A0BBEF7EB9DBDBCACC727').toString('hex'), '624516245280516a0bbef7eb9dbdbcac');
  assert.equal(testKey('msul1', 'msul2', '80516A0BBEF7EB9DBDBCACC727'), '624516245280516a0bbef7eb9dbdbcac');
});

test("londKey: odd characters and short input match Perl's pack H32", () => {
  for (const [P, L, b] of [
    ['lon-capa_1', 'gw.host', '0A1B2C3D4E5F60'],
    ['zz', 'aa', ''],
    ['x', 'y', 'F'],
    ['MSU-Lon.capa', 'other_host9', '80516A0BBEF7EB9DBDBCACC72791'],
  ]) {
    assert.equal(londKey(P, L, b).toString('hex'), testKey(P, L, b), `${P}/${L}/${b}`);
  }
  // 'AB' x3 then zero nibbles: k = AB, s = ABABAB.
  assert.equal(londKey('a', 'b', '').toString('hex'), 'ababab' + '0'.repeat(26));
  // '-' 13, '_' 15, '.' 14
  assert.equal(londKey('-', '_.', '').subarray(0, 3).toString('hex'), 'dfed' + 'fe');
});

for (const { idea, skip } of LOND_IDEAS) test(`the fake lond (${idea} IDEA) decrypts the PROTOCOL.md example request under the worked-example key`, { skip }, async () => {
  await withLond({ id: 'msul1', clientId: 'msul2', faults: { buildkey: '80516A0BBEF7EB9DBDBCACC727' }, idea }, async (lond) => {
    assert.equal(lond.idea, idea);
    const c = await RawClient.connect(lond.port);
    const hs = await handshake(c, 'msul1', 'msul2');
    assert.equal(hs.buildkey, '80516A0BBEF7EB9DBDBCACC727');
    assert.equal(lond.sessionKeys[0].toString('hex'), '624516245280516a0bbef7eb9dbdbcac');
    c.send('enc:8:d785e3cda53998a4b062af68f8f4434c');
    assert.equal(await c.text(), 'unknown_cmd');
    assert.equal(lond.received[0].plain.toString(), 'ping:abc');
    assert.equal(lond.received[0].encrypted, true);
    c.destroy();
  });
});

// ---- handshake -------------------------------------------------------------------------

test('handshake: challenge, ok, pong, random 26-char buildkey, key per session', async () => {
  await withLond({}, async (lond) => {
    const a = await session(lond);
    const b = await session(lond);
    assert.equal(a.hs.pong, 'lond1:gw1');
    for (const hs of [a.hs, b.hs]) assert.match(hs.buildkey, /^[0-9A-F]{26}$/);
    assert.notEqual(a.hs.buildkey, b.hs.buildkey);
    assert.equal(lond.sessionKeys[0].toString('hex'), a.hs.keyHex);
    assert.equal(lond.sessionKeys[1].toString('hex'), b.hs.keyHex);
    assert.equal(lond.stats.handshakes, 2);
    assert.equal(lond.stats.connections, 2);
    a.c.destroy();
    b.c.destroy();
  });
});

test('handshake: a wrong challenge echo is refused and the connection closed', async () => {
  await withLond({}, async (lond) => {
    const c = await RawClient.connect(lond.port);
    c.send('init');
    const ch = await c.text();
    c.send(`${ch}0`);
    assert.equal(await c.text(), 'refused');
    await c.waitClose();
    assert.equal(lond.stats.handshakes, 0);
  });
});

test('requests before the handshake is complete are refused and not recorded', async () => {
  await withLond({}, async (lond) => {
    const c = await RawClient.connect(lond.port);
    c.send('ping');
    assert.equal(await c.text(), 'refused');
    c.send('init');
    const ch = await c.text();
    c.send(ch);
    assert.equal(await c.text(), 'ok');
    c.send('put:a:b'); // authenticated, but no ekey yet
    assert.equal(await c.text(), 'refused');
    c.send('ekey');
    await c.text();
    c.send('ping');
    assert.equal(await c.text(), 'lond1');
    assert.equal(lond.received.length, 1);
    assert.equal(lond.stats.requests, 1);
    c.destroy();
  });
});

// ---- requests --------------------------------------------------------------------------

test('plain requests: default handler, any bytes, recorded', async () => {
  await withLond({}, async (lond) => {
    const { c } = await session(lond);
    const binary = Buffer.from([0x65, 0x63, 0x68, 0x6f, 0x3a, 0x00, 0xff, 0x0d, 0x3a, 0x80, 0x41]); // echo:\0\xff\r:\x80A
    const cases: Array<[Buffer | string, Buffer | string]> = [
      ['ping', 'lond1'],
      [binary, binary.subarray(5)],
      ['put:dom:user:k=v', 'ok'],
      ['store:x', 'ok'],
      ['frobnicate:1', 'unknown_cmd'],
      ['big:1000', 'x'.repeat(1000)],
      ['echo:', ''],
    ];
    for (const [req, want] of cases) {
      c.send(req);
      assert.deepEqual(await c.line(), Buffer.from(want));
    }
    const t0 = Date.now();
    c.send('sleep:120');
    assert.equal(await c.text(), 'ok');
    assert.ok(Date.now() - t0 >= 110);
    assert.equal(lond.received.length, cases.length + 1);
    assert.deepEqual(lond.received[1].raw, binary);
    assert.deepEqual(lond.received[1].plain, binary);
    assert.equal(lond.received[1].encrypted, false);
    assert.equal(lond.received[1].session, 0);
    assert.equal(lond.stats.requests, cases.length + 1);
    c.destroy();
  });
});

for (const { idea, skip } of LOND_IDEAS) test(`encrypted requests are decrypted; answers stay plain unless encryptAnswers (${idea} IDEA)`, { skip }, async () => {
  await withLond({ idea }, async (lond) => {
    const { c, hs } = await session(lond);
    for (const cmd of ['echo:secret', 'echo:abc', 'put:1234567890123456789', '']) {
      // lengths 11, 8 (one block of spaces added), 22, 0
      c.send(testEnc(hs.keyHex, cmd));
      const want = cmd === '' ? 'unknown_cmd' : cmd.startsWith('echo:') ? cmd.slice(5) : 'ok';
      assert.equal(await c.text(), want);
    }
    assert.deepEqual(
      lond.received.map((r) => [r.plain.toString(), r.encrypted]),
      [['echo:secret', true], ['echo:abc', true], ['put:1234567890123456789', true], ['', true]],
    );
    assert.match(lond.received[0].raw.toString(), /^enc:11:[0-9a-f]{32}$/);
    c.destroy();
  });
});

for (const { idea, skip } of LOND_IDEAS) test(`encryptAnswers: answers to encrypted requests come back as enc:, plain ones stay plain (${idea} IDEA)`, { skip }, async () => {
  await withLond({ encryptAnswers: true, idea }, async (lond) => {
    const { c, hs } = await session(lond);
    for (const payload of ['hello world', '12345678', '', 'x'.repeat(17)]) {
      c.send(testEnc(hs.keyHex, `echo:${payload}`));
      const line = await c.line();
      assert.match(line.toString(), new RegExp(`^enc:${payload.length}:[0-9a-f]+$`));
      assert.equal(testDec(hs.keyHex, line).toString(), payload);
    }
    c.send('echo:plain');
    assert.equal(await c.text(), 'plain');
    c.destroy();
  });
});

test('malformed enc: requests get an error and are counted, not recorded', async () => {
  await withLond({}, async (lond) => {
    const { c, hs } = await session(lond);
    const good = testEnc(hs.keyHex, 'echo:12345678'); // 13 bytes, 2 blocks
    const oneBlockShort = good.slice(0, -16);
    for (const bad of ['enc:3:zz', oneBlockShort, good.toUpperCase().replace('ENC:', 'enc:'), 'enc:x:00']) {
      c.send(bad);
      assert.equal(await c.text(), 'error: malformed enc request');
    }
    assert.equal(lond.stats.malformed, 4);
    assert.equal(lond.received.length, 0);
    c.send(good);
    assert.equal(await c.text(), '12345678');
    c.destroy();
  });
});

test('pipelined requests are answered in order, one at a time', async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const handler = async (cmd: Buffer): Promise<string> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const n = Number(cmd.toString().split(':')[1]);
    await sleep(n);
    inFlight--;
    return `done:${n}`;
  };
  await withLond({ handler }, async (lond) => {
    const { c } = await session(lond);
    const delays = [60, 5, 40, 0, 20];
    c.socket.write(delays.map((d) => `w:${d}\n`).join(''));
    for (const d of delays) assert.equal(await c.text(), `done:${d}`);
    assert.equal(maxInFlight, 1);
    assert.equal(lond.received.length, 5);
    c.destroy();
  });
});

test('custom handler gets the plaintext and whether it was encrypted; a throw becomes error:', async () => {
  const seen: Array<[string, number, boolean]> = [];
  const handler = (cmd: Buffer, info: { session: number; encrypted: boolean }): string => {
    seen.push([cmd.toString(), info.session, info.encrypted]);
    if (cmd.toString() === 'boom') throw new Error('kaput');
    return 'answer\n';
  };
  await withLond({ handler }, async (lond) => {
    const { c, hs } = await session(lond);
    c.send('a:1');
    assert.equal(await c.text(), 'answer');
    c.send(testEnc(hs.keyHex, 'b:2'));
    assert.equal(await c.text(), 'answer');
    c.send('boom');
    assert.equal(await c.text(), 'error: kaput');
    assert.deepEqual(seen, [['a:1', 0, false], ['b:2', 0, true], ['boom', 0, false]]);
    c.destroy();
  });
});

test('serviceTimeMs delays each answer', async () => {
  await withLond({ serviceTimeMs: 100 }, async (lond) => {
    const { c } = await session(lond);
    const t0 = Date.now();
    c.send('ping');
    c.send('ping');
    await c.line();
    await c.line();
    assert.ok(Date.now() - t0 >= 190, `took ${Date.now() - t0} ms`);
    c.destroy();
  });
});

test('exit is counted and closes the connection, before or after the handshake', async () => {
  await withLond({}, async (lond) => {
    const { c } = await session(lond);
    c.send('exit');
    await c.waitClose();
    const c2 = await RawClient.connect(lond.port);
    c2.send('exit');
    await c2.waitClose();
    assert.equal(lond.stats.exits, 2);
    assert.equal(lond.received.length, 0);
    await lond.waitFor(() => lond.stats.open === 0, 2000, 'all closed');
  });
});

// ---- faults ----------------------------------------------------------------------------

test('fault refuseInit: refused, then closed', async () => {
  await withLond({ faults: { refuseInit: true } }, async (lond) => {
    const c = await RawClient.connect(lond.port);
    c.send('init');
    assert.equal(await c.text(), 'refused');
    await c.waitClose();
  });
});

test('fault rejectChallenge: the right echo is refused, then closed', async () => {
  await withLond({ faults: { rejectChallenge: true } }, async (lond) => {
    const c = await RawClient.connect(lond.port);
    c.send('init');
    c.send(await c.text());
    assert.equal(await c.text(), 'refused');
    await c.waitClose();
    assert.equal(lond.stats.handshakes, 0);
  });
});

test('fault silent: connection accepted, not a byte sent; flipping it off applies to the next line', async () => {
  await withLond({ faults: { silent: true } }, async (lond) => {
    const c = await RawClient.connect(lond.port);
    c.send('init');
    await assertSilence(c, 250);
    assert.equal(c.closed, false);
    assert.equal(lond.stats.open, 1);
    lond.faults.silent = false;
    c.send('init');
    assert.match(await c.text(), /^[0-9]+$/);
    c.destroy();
  });
});

test('fault handshakeDelayMs delays every handshake answer', async () => {
  await withLond({ faults: { handshakeDelayMs: 80 } }, async (lond) => {
    const t0 = Date.now();
    const { c } = await session(lond);
    assert.ok(Date.now() - t0 >= 4 * 75, `took ${Date.now() - t0} ms`);
    const t1 = Date.now();
    c.send('ping');
    await c.line();
    assert.ok(Date.now() - t1 < 70, 'requests are not delayed');
    c.destroy();
  });
});

test('faults pongReply and buildkey are read at each handshake', async () => {
  await withLond({}, async (lond) => {
    lond.faults.pongReply = 'lond1:con_lost';
    lond.faults.buildkey = '0123456789ABCDEF0123';
    const a = await session(lond);
    assert.equal(a.hs.pong, 'lond1:con_lost');
    assert.equal(a.hs.buildkey, '0123456789ABCDEF0123');
    assert.equal(lond.sessionKeys[0].toString('hex'), testKey('lond1', 'gw1', '0123456789ABCDEF0123'));
    a.c.send(testEnc(a.hs.keyHex, 'echo:k'));
    assert.equal(await a.c.text(), 'k');
    lond.faults = {};
    const b = await session(lond);
    assert.equal(b.hs.pong, 'lond1:gw1');
    assert.match(b.hs.buildkey, /^[0-9A-F]{26}$/);
    a.c.destroy();
    b.c.destroy();
  });
});

test('fault stallRequests: the request is recorded but never answered', async () => {
  await withLond({}, async (lond) => {
    const { c } = await session(lond);
    lond.faults.stallRequests = true;
    c.send('put:a');
    await lond.waitFor(() => lond.stats.requests === 1, 2000, 'request');
    await assertSilence(c, 250);
    assert.equal(lond.received[0].plain.toString(), 'put:a');
    assert.equal(c.closed, false);
    c.destroy();
  });
});

test('fault halfAnswer: half a line, no newline, then nothing', async () => {
  await withLond({ faults: { halfAnswer: true } }, async (lond) => {
    const { c } = await session(lond);
    c.send('echo:abcdef');
    await lond.waitFor(() => c.all.toString().endsWith('abc'), 2000, 'half answer');
    c.send('ping');
    await assertSilence(c, 250);
    assert.equal(c.all.subarray(-4).toString(), '\nabc');
    c.destroy();
  });
});

test('fault garbage: every request answered with the raw bytes; switchable at run time', async () => {
  await withLond({}, async (lond) => {
    const { c } = await session(lond);
    lond.faults.garbage = Buffer.from([0x16, 0x03, 0x01, 0x0a]);
    c.send('ping');
    assert.deepEqual(await c.line(), Buffer.from([0x16, 0x03, 0x01]));
    c.send('ping');
    assert.deepEqual(await c.line(), Buffer.from([0x16, 0x03, 0x01]));
    delete lond.faults.garbage;
    c.send('ping');
    assert.equal(await c.text(), 'lond1');
    c.destroy();
  });
});

test('fault killOnRequest: the connection dies when a request arrives; the request is recorded', async () => {
  await withLond({}, async (lond) => {
    const { c, hs } = await session(lond);
    lond.faults.killOnRequest = true;
    c.send('put:critical');
    await c.waitClose();
    assert.equal(lond.received.length, 1);
    assert.ok(c.all.toString().endsWith(`\n${hs.buildkey}\n`), 'nothing after the handshake');
  });
});

test('fault resetOnConnect: every new connection is reset without a byte', async () => {
  await withLond({ faults: { resetOnConnect: true } }, async (lond) => {
    for (let i = 0; i < 3; i++) {
      // The reset may beat the client's own view of the connect: either way, no byte and ECONNRESET.
      const outcome = await new Promise<{ bytes: number; code: string | undefined }>((resolve) => {
        let bytes = 0;
        let code: string | undefined;
        const s = net.connect({ port: lond.port, host: '127.0.0.1' }, () => s.write('init\n'));
        s.on('data', (d) => (bytes += d.length));
        s.on('error', (e: NodeJS.ErrnoException) => (code = e.code));
        s.on('close', () => resolve({ bytes, code }));
      });
      assert.deepEqual(outcome, { bytes: 0, code: 'ECONNRESET' });
    }
    assert.equal(lond.stats.connections, 3);
    assert.equal(lond.stats.open, 0);
  });
});

test('fault closeAfterRequests: closed after answering that many requests', async () => {
  await withLond({ faults: { closeAfterRequests: 2 } }, async (lond) => {
    const { c } = await session(lond);
    c.send('ping');
    c.send('ping');
    c.send('ping');
    assert.equal(await c.text(), 'lond1');
    assert.equal(await c.text(), 'lond1');
    await c.waitClose();
    await assert.rejects(c.line(100));
    assert.equal(lond.stats.requests, 2);
  });
});

// ---- listener --------------------------------------------------------------------------

test('stats, killAll and stop', async () => {
  const lond = await FakeLond.start({ id: 'lond1', clientId: 'gw1' });
  const a = await session(lond);
  const b = await session(lond);
  a.c.send('ping');
  await a.c.line();
  assert.deepEqual({ ...lond.stats }, { connections: 2, handshakes: 2, requests: 1, exits: 0, open: 2, malformed: 0 });
  lond.killAll();
  await a.c.waitClose();
  await b.c.waitClose();
  await lond.waitFor(() => lond.stats.open === 0, 2000, 'open 0');
  const c = await RawClient.connect(lond.port);
  await lond.waitFor(() => lond.stats.open === 1, 2000, 'open 1');
  await lond.stop();
  await c.waitClose();
  await assert.rejects(RawClient.connect(lond.port));
  await assert.rejects(lond.waitFor(() => false, 50, 'the impossible'), /the impossible/);
});

test('startLondNetwork: three londs on one port, one loopback address each', async () => {
  const net3 = await startLondNetwork(['p1', 'p2', 'p3'], 'gw1', { encryptAnswers: true });
  try {
    assert.deepEqual(['p1', 'p2', 'p3'].map((id) => net3.addressOf(id)), ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    for (const [id, lond] of net3.londs) {
      assert.equal(lond.port, net3.port);
      assert.equal(lond.host, net3.addressOf(id));
    }
    net3.londs.get('p2')!.faults.refuseInit = true; // faults are per lond
    for (const id of ['p1', 'p3']) {
      const c = await RawClient.connect(net3.port, net3.addressOf(id));
      const hs = await handshake(c, id, 'gw1');
      assert.equal(hs.pong, `${id}:gw1`);
      c.send('ping');
      assert.equal(await c.text(), id);
      c.send(testEnc(hs.keyHex, 'echo:x'));
      assert.equal(testDec(hs.keyHex, await c.line()).toString(), 'x');
      c.destroy();
    }
    const c2 = await RawClient.connect(net3.port, net3.addressOf('p2'));
    c2.send('init');
    assert.equal(await c2.text(), 'refused');
    assert.deepEqual(
      [...net3.londs.values()].map((l) => [l.stats.connections, l.stats.requests]),
      [[1, 2], [1, 0], [1, 2]],
    );
    assert.throws(() => net3.addressOf('nope'));
  } finally {
    await net3.stop();
  }
  await assert.rejects(RawClient.connect(net3.port, '127.0.0.2'));
});

test('startLondNetwork: firstAddress is honoured', async () => {
  const n = await startLondNetwork(['a', 'b'], 'gw1', { firstAddress: 20 });
  try {
    assert.equal(n.addressOf('b'), '127.0.0.21');
    const c = await RawClient.connect(n.port, '127.0.0.21');
    assert.equal((await handshake(c, 'b', 'gw1')).pong, 'b:gw1');
    c.destroy();
  } finally {
    await n.stop();
  }
});

test("without OpenSSL's IDEA (no legacy provider) the fake lond runs on the plain one; FAKE_LOND_IDEA forces either", () => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.FAKE_LOND_IDEA;
  const mod = path.join(__dirname, 'fake-lond.js');
  const script = `require(${JSON.stringify(mod)}).FakeLond.start({id:'a',clientId:'b'}).then(async(l)=>{console.log(l.idea);await l.stop()},(e)=>{console.error(e.message);process.exit(3)})`;
  const start = (extra: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, ['-e', script], { env: { ...env, ...extra }, encoding: 'utf8', timeout: 10000 });
  let r = start({});
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'plain', 'no legacy provider: the plain IDEA');
  r = start({ FAKE_LOND_IDEA: 'openssl' });
  assert.equal(r.status, 3, 'OpenSSL asked for where it is missing: start fails');
  assert.match(r.stderr, /idea-ecb/);
  if (opensslHasIdea()) {
    r = start({ NODE_OPTIONS: '--openssl-legacy-provider' });
    assert.equal(r.stdout.trim(), 'openssl', r.stderr);
    r = start({ NODE_OPTIONS: '--openssl-legacy-provider', FAKE_LOND_IDEA: 'plain' });
    assert.equal(r.stdout.trim(), 'plain', r.stderr);
  }
});

// ---- CLI -------------------------------------------------------------------------------

test('CLI argument parsing', () => {
  const o = parseCliArgs(['--client', 'demo1', '--port', '56630', '--peer', 'demo2@127.0.0.2', '--peer', 'demo3', '--service-ms', '5', '--encrypt-answers']);
  assert.deepEqual(o, {
    help: false,
    client: 'demo1',
    port: 56630,
    peers: [{ id: 'demo2', address: '127.0.0.2' }, { id: 'demo3', address: '127.0.0.1' }],
    serviceMs: 5,
    encryptAnswers: true,
  });
  assert.equal(parseCliArgs(['--help']).help, true);
  assert.throws(() => parseCliArgs(['--peer', 'x']), /--client/);
  assert.throws(() => parseCliArgs(['--client', 'x']), /--peer/);
  assert.throws(() => parseCliArgs(['--client', 'x', '--peer', 'y', '--port', '-1']));
  assert.throws(() => parseCliArgs(['--client', 'x', '--peer', 'y', '--bogus']));
  const rec = { session: 0, raw: Buffer.alloc(0), encrypted: true, at: 0 };
  assert.equal(commandName({ ...rec, plain: Buffer.from('put:secret') }), 'put');
  assert.equal(commandName({ ...rec, plain: Buffer.from('my password is hunter2') }), '?');
});

test('CLI --help', () => {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'fake-lond-cli.js'), '--help'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--client <id> --peer <id>\[@<address>\]/);
});

test("CLI serves several peers, logs no secrets, stops on SIGTERM; without NODE_OPTIONS on the plain IDEA, which this client's (OpenSSL's where present) understands", async () => {
  const env = { ...process.env };
  // No legacy provider: OpenSSL's IDEA is missing, as on Debian's nodejs.
  delete env.NODE_OPTIONS;
  delete env.FAKE_LOND_IDEA;
  const child = spawn(
    process.execPath,
    [path.join(__dirname, 'fake-lond-cli.js'), '--client', 'gwc', '--port', '0', '--peer', 'cp2@127.0.0.2', '--peer', 'cp3@127.0.0.3', '--encrypt-answers'],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 10000;
    while (!/cp3: listening on 127\.0\.0\.3:\d+/.test(stderr)) {
      assert.ok(Date.now() < deadline, `CLI did not start: ${stderr}`);
      await sleep(20);
    }
    const port = Number(/cp2: listening on 127\.0\.0\.2:(\d+)/.exec(stderr)![1]);
    assert.ok(/cp3: listening on 127\.0\.0\.3:(\d+)/.exec(stderr)![1] === String(port));
    const secrets: string[] = [];
    for (const [id, addr] of [['cp2', '127.0.0.2'], ['cp3', '127.0.0.3']]) {
      const c = await RawClient.connect(port, addr);
      const hs = await handshake(c, id, 'gwc');
      secrets.push(hs.buildkey, hs.keyHex, hs.challenge);
      c.send(testEnc(hs.keyHex, 'echo:SECRETVALUE42'));
      assert.equal(testDec(hs.keyHex, await c.line()).toString(), 'SECRETVALUE42');
      c.send('exit');
      await c.waitClose();
    }
    while (!/cp3: session 0 closed/.test(stderr)) {
      assert.ok(Date.now() < deadline, stderr);
      await sleep(20);
    }
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(stderr, /idea=plain/);
    assert.match(stderr, /cp2: session 0 connected/);
    assert.match(stderr, /cp2: session 0 handshake done/);
    assert.match(stderr, /cp3: session 0 request #1 echo 18 bytes encrypted/);
    assert.match(stderr, /stopped/);
    assert.ok(!stderr.includes('SECRETVALUE42'), 'plaintext logged');
    for (const s of secrets) assert.ok(!stderr.toLowerCase().includes(s.toLowerCase()), 'secret logged');
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
});

test('CLI started with an IPC channel (as the demo starts it) stops when its parent is killed', async () => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const cli = path.join(__dirname, 'fake-lond-cli.js');
  const parentJs = `require('node:child_process').spawn(process.execPath, [${JSON.stringify(cli)}, '--client', 'gwc', '--port', '0', '--peer', 'k1@127.0.0.5'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }); setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['-e', parentJs], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  parent.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // The child shares the pipe: it closes only when both processes are gone.
  const pipeClosed = new Promise<void>((r) => parent.stderr.on('close', () => r()));
  const deadline = Date.now() + 10000;
  while (!/listening on 127\.0\.0\.5:\d+/.test(stderr)) {
    if (Date.now() > deadline) {
      parent.kill('SIGTERM');
      assert.fail(`CLI did not start: ${stderr}`);
    }
    await sleep(20);
  }
  const port = Number(/listening on 127\.0\.0\.5:(\d+)/.exec(stderr)![1]);
  parent.kill('SIGKILL');
  await Promise.race([pipeClosed, sleep(5000).then(() => assert.fail('the CLI is still alive'))]);
  assert.match(stderr, /parent gone: stopping/);
  await assert.rejects(RawClient.connect(port, '127.0.0.5'));
});
