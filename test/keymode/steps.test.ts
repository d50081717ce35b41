// sslHandshake and localHandshake against the fake lond, through a minimal session that
// implements RawChannel the way the daemon's session is meant to (InboundRouter between
// the socket and a LineReader). After the handshake, an encrypted request proves that
// both ends hold the same key.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Idea } from '../../src/crypto/idea';
import { encodeEncryptedRequest } from '../../src/protocol/codec';
import { LineReader, stripCR } from '../../src/protocol/framing';
import { LineDialogue } from '../../src/peer/dialogue';
import { HandshakeError } from '../../src/peer/handshake';
import { systemClock } from '../../src/util/clock';
import { InboundRouter, RawChannel, localHandshake, sslHandshake } from '../../src/peer/keymode/steps';
import { FakeLond, FakeLondOptions, startLondNetwork } from '../support/fake-lond';
import { FakeTlsOptions } from '../support/fake-lond-tls';
import { material, testPki } from '../support/certs';

const CLIENT = 'gwclient';
const PEER = 'msul1';

/**
 * The parts of a daemon session the key modes rely on, and nothing else: the daemon's own
 * LineDialogue (one question at a time) and InboundRouter between the socket and a
 * LineReader. Lines nobody asked for are recorded instead of failing the session, so the
 * tests can see them.
 */
class MiniSession {
  readonly warnings: string[] = [];
  readonly unsolicited: string[] = [];
  private readonly dialogue: LineDialogue;
  private readonly reader = new LineReader({ maxLineBytes: 1 << 20, onLine: (l) => this.onLine(l) });
  readonly router = new InboundRouter((c) => this.reader.push(c));

  private constructor(private readonly sock: net.Socket, private readonly askTimeoutMs: number) {
    this.dialogue = new LineDialogue({
      write: (line) => this.sock.write(Buffer.concat([line, Buffer.from('\n')])),
      clock: systemClock,
      onFault: (err) => this.fail(err),
    });
    sock.on('data', (c: Buffer) => this.router.push(c));
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('peer closed the connection')));
  }

  static connect(port: number, askTimeoutMs = 5000, host = '127.0.0.1'): Promise<MiniSession> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      sock.once('connect', () => resolve(new MiniSession(sock, askTimeoutMs)));
      sock.once('error', reject);
    });
  }

  channel(): RawChannel {
    return {
      ask: (_step, line) => this.ask(typeof line === 'string' ? line : line.toString('latin1')),
      warn: (m) => this.warnings.push(m),
      startRaw: (h) => this.router.startRaw(h, (c) => this.sock.write(c)),
    };
  }

  async ask(line: string | Buffer): Promise<string> {
    const answer = await this.dialogue.askAsync(typeof line === 'string' ? Buffer.from(line, 'latin1') : line, this.askTimeoutMs, 'test');
    return answer.toString('latin1');
  }

  close(): void {
    this.sock.destroy();
  }

  private onLine(raw: Buffer): void {
    const line = stripCR(raw);
    if (!this.dialogue.waiting) this.unsolicited.push(line.toString('latin1'));
    else this.dialogue.receive(line);
  }

  private fail(err: Error): void {
    this.router.close(err);
    this.dialogue.close(err);
    this.sock.destroy();
  }
}

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function lond(opts: Partial<FakeLondOptions>): Promise<FakeLond> {
  const l = await FakeLond.start({ id: PEER, clientId: CLIENT, ...opts });
  cleanups.push(() => l.stop());
  return l;
}

async function session(l: FakeLond, askTimeoutMs?: number): Promise<MiniSession> {
  const s = await MiniSession.connect(l.port, askTimeoutMs);
  cleanups.push(() => s.close());
  return s;
}

/** An encrypted echo under `key`: only a lond with the same key answers it right. */
async function encryptedEcho(s: MiniSession, key: Buffer): Promise<string> {
  const wire = encodeEncryptedRequest(Buffer.from('echo:top secret'), new Idea(key));
  return s.ask(wire);
}

describe('sslHandshake', () => {
  let pki: ReturnType<typeof testPki>;
  before(() => {
    pki = testPki();
  });
  const ours = () => material(pki.host(CLIENT));
  const sslLond = (o: Partial<FakeTlsOptions> = {}) => lond({ keyModes: { ssl: { ...material(pki.host(PEER)), ...o } } });
  const run = (s: MiniSession, timeoutMs = 5000) => sslHandshake(s.channel(), { peerId: PEER, version: '2.12', material: ours(), timeoutMs });

  it('negotiates the key over TLS and goes on in the clear with IDEA', async () => {
    const l = await sslLond({ waitForCloseNotify: true });
    const s = await session(l);
    const key = await run(s);
    // This lond switches only once our close_notify arrived, so ask first, then compare.
    assert.equal(await s.ask('ping'), PEER);
    assert.deepEqual(key, l.sessionKeys[0]);
    assert.equal(await encryptedEcho(s, key), 'top secret');
    assert.equal(l.received.at(-1)?.encrypted, true);
    assert.equal(l.tlsReports[0].clientCN, CLIENT);
    assert.equal(l.tlsReports[0].clientCloseNotify, true);
    assert.equal(s.router.inRawPhase, false);
    assert.deepEqual(s.warnings, []);
  });

  it('drops the peer close_notify that shares a segment with the first answer', async () => {
    const l = await sslLond({ holdCloseNotify: true });
    const s = await session(l);
    const key = await run(s);
    assert.equal(s.router.inRawPhase, true, 'still filtering: a TLS record may come');
    assert.equal(await s.ask('ping'), PEER);
    assert.equal(s.router.inRawPhase, false);
    assert.equal(await encryptedEcho(s, key), 'top secret');
    assert.deepEqual(s.unsolicited, []);
  });

  it('works with a lond that sends no close_notify', async () => {
    const l = await sslLond({ closeNotify: false });
    const s = await session(l);
    const key = await run(s);
    assert.equal(await encryptedEcho(s, key), 'top secret');
  });

  it('hands cleartext that came with the TLS part to the line reader, with a warning', async () => {
    const l = await sslLond({ greeting: 'hello\n' });
    const s = await session(l);
    await run(s);
    assert.deepEqual(s.unsolicited, ['hello']);
    assert.match(s.warnings.join('\n'), /sent "hello\\n" \(6 bytes\) in the clear right after the TLS part/);
  });

  it('tolerates case, spaces and a CR around ok:ssl', async () => {
    const l = await sslLond({ answer: ' OK:SSL \r' });
    const s = await session(l);
    const key = await run(s);
    assert.equal(await encryptedEcho(s, key), 'top secret');
  });

  it('reports refused to init:ssl as a refusal', async () => {
    const l = await sslLond({ answer: 'refused' });
    const s = await session(l);
    await assert.rejects(run(s), (e: unknown) => {
      assert.ok(e instanceof HandshakeError);
      assert.equal(e.refused, true);
      assert.match(e.message, /peer answered refused to init:ssl/);
      return true;
    });
  });

  it('says so when the peer only knows the 2002 exchange', async () => {
    const l = await sslLond({ answer: '123451700000000' });
    const s = await session(l);
    await assert.rejects(run(s), /answered init:ssl with a challenge: it only knows the 2002 exchange/);
  });

  it('shows an unexpected answer', async () => {
    const l = await sslLond({ answer: 'what?' });
    const s = await session(l);
    await assert.rejects(run(s), /answered init:ssl with "what\?", not ok:ssl/);
  });

  it('refuses a lond whose certificate is from another CA', async () => {
    const l = await sslLond({ cert: pki.foreign(PEER).cert, key: pki.foreign(PEER).key });
    const s = await session(l);
    await assert.rejects(run(s), (e: unknown) => e instanceof HandshakeError && /not signed by our CA/.test(e.message));
    assert.equal(l.stats.handshakes, 0);
  });

  it('refuses a lond with an expired certificate', async () => {
    const l = await sslLond({ cert: pki.expired(PEER).cert, key: pki.expired(PEER).key });
    const s = await session(l);
    await assert.rejects(run(s), /has expired/);
  });

  it('is refused by a lond whose CA did not sign our certificate', async () => {
    const l = await sslLond();
    const s = await session(l);
    await assert.rejects(sslHandshake(s.channel(), { peerId: PEER, version: '2.12', material: material(pki.foreign(CLIENT)), timeoutMs: 5000 }), HandshakeError);
    await l.waitFor(() => l.tlsErrors.length > 0);
    assert.match(l.tlsErrors[0], /client certificate refused: not signed by our CA/);
  });

  it('fails when the connection is cut half-way through TLS', async () => {
    const l = await sslLond({ cutAfterBytes: 300 });
    const s = await session(l);
    await assert.rejects(run(s), /failed during the TLS handshake: peer closed the connection/);
    assert.equal(s.router.inRawPhase, false);
  });

  it('gives each lond of a network its own certificate', async () => {
    const network = await startLondNetwork(['alpha', 'beta'], CLIENT, { keyModes: { ssl: (id) => material(pki.host(id)) } });
    cleanups.push(() => network.stop());
    for (const id of ['alpha', 'beta']) {
      const l = network.londs.get(id) as FakeLond;
      const s = await MiniSession.connect(network.port, 5000, network.addressOf(id));
      cleanups.push(() => s.close());
      const key = await sslHandshake(s.channel(), { peerId: id, version: '2.12', material: ours(), timeoutMs: 5000 });
      assert.equal(await s.ask('ping'), id);
      assert.deepEqual(key, l.sessionKeys[0]);
      assert.deepEqual(s.warnings, [], 'the certificate names the peer');
    }
  });

  it('times out on a lond that goes quiet after ok:ssl', async () => {
    const l = await sslLond({ notTls: Buffer.alloc(0) });
    const s = await session(l);
    await assert.rejects(run(s, 200), /timed out after 0.2 s/);
  });
});

describe('localHandshake', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-local-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  });

  it('hands lond the key in a file and goes on with IDEA', async () => {
    const l = await lond({ keyModes: { local: true } });
    const s = await session(l);
    const key = await localHandshake(s.channel(), { dir });
    assert.deepEqual(key, l.sessionKeys[0]);
    assert.equal(path.dirname(l.localKeyFiles[0]), dir);
    assert.equal(fs.existsSync(l.localKeyFiles[0]), false);
    assert.equal(await encryptedEcho(s, key), 'top secret');
  });

  it('removes the file when lond leaves it', async () => {
    const l = await lond({ keyModes: { local: { keepFile: true } } });
    const s = await session(l);
    await localHandshake(s.channel(), { dir });
    assert.equal(fs.existsSync(l.localKeyFiles[0]), false);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('removes the file when lond refuses', async () => {
    const l = await lond({ keyModes: { local: { answer: 'refused' } } });
    const s = await session(l);
    await assert.rejects(localHandshake(s.channel(), { dir }), /peer answered refused to init:local/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('removes the file when lond does not answer', async () => {
    const l = await lond({ keyModes: { local: true }, faults: { silent: true } });
    const s = await session(l, 200);
    await assert.rejects(localHandshake(s.channel(), { dir }), /no answer to the test within 0\.2 s/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('is refused by a lond without the local mode', async () => {
    const l = await lond({});
    const s = await session(l);
    await assert.rejects(localHandshake(s.channel(), { dir }), (e: unknown) => e instanceof HandshakeError && e.refused);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
