// SslKeyExchange against a real TLS server (node's TLSSocket in server mode, driven by
// test/support/fake-lond-tls.ts) over plain TCP on 127.0.0.1, playing lond: ok:ssl, TLS,
// the key line, then cleartext.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { PeerNameCheck, SslExchangeResult, SslKeyExchange, TlsMaterial, parseKeyLine, describeTlsError } from '../../src/peer/keymode/ssl';
import { FakeTlsOptions, TlsServerSide } from '../support/fake-lond-tls';
import { issue, material, testPki } from '../support/certs';

const CLIENT = 'gwclient';
const PEER = 'msul1';

interface ServerConn {
  side: TlsServerSide | undefined;
  lines: string[];
  socket: net.Socket;
}

/**
 * A TCP server playing lond for one test: answers the first line with ok:ssl, runs the TLS
 * side, then answers every cleartext line `x` with `got:x`.
 */
async function startServer(opts: () => FakeTlsOptions): Promise<{ port: number; conns: ServerConn[]; close(): Promise<void> }> {
  const conns: ServerConn[] = [];
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    const conn: ServerConn = { side: undefined, lines: [], socket };
    conns.push(conn);
    let pending = Buffer.alloc(0);
    let raw: ((c: Buffer) => void) | undefined;
    const takeLines = (chunk: Buffer): void => {
      pending = Buffer.concat([pending, chunk]);
      let nl: number;
      while ((nl = pending.indexOf(0x0a)) >= 0) {
        const line = pending.subarray(0, nl).toString('latin1');
        pending = pending.subarray(nl + 1);
        if (!conn.side) {
          const o = opts();
          const side = new TlsServerSide(o, { write: (d) => socket.write(d), destroy: () => socket.destroy() });
          conn.side = side;
          const early = pending;
          pending = Buffer.alloc(0);
          raw = (c) => side.feed(c);
          socket.write(`${o.answer ?? 'ok:ssl'}\n`);
          if (early.length) side.feed(early);
          side.done.then(
            ({ leftover }) => {
              raw = (c) => {
                const clear = side.filter(c);
                if (side.inCleartext) raw = undefined;
                if (clear.length) takeLines(clear);
              };
              if (leftover.length) {
                raw = undefined;
                takeLines(leftover);
              }
            },
            // A peer that is not TLS keeps the line open: the client must notice by itself.
            () => {
              if (!o.notTls) socket.destroy();
            },
          );
          return;
        }
        conn.lines.push(line);
        socket.write(side(conn).wrapAnswer(Buffer.from(`got:${line}\n`, 'latin1')));
      }
    };
    socket.on('data', (c: Buffer) => (raw ? raw(c) : takeLines(c)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function side(conn: ServerConn): TlsServerSide {
  return conn.side as TlsServerSide;
}

interface ClientRun {
  result: Promise<SslExchangeResult>;
  socket: net.Socket;
  warnings: string[];
  /** Cleartext lines read after the exchange, through result.tail. */
  lines: string[];
  /** Every chunk the socket delivered, for the byte-boundary assertions. */
  chunks: Buffer[];
  waitLines(n: number): Promise<string[]>;
}

/** The client side: init:ssl, ok:ssl, then SslKeyExchange on the raw socket. */
function runClient(port: number, mat: TlsMaterial, timeoutMs = 5000, closeNotify?: boolean, peerName?: PeerNameCheck): ClientRun {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  const warnings: string[] = [];
  const lines: string[] = [];
  const chunks: Buffer[] = [];
  let exchange: SslKeyExchange | undefined;
  let tailFilter: ((c: Buffer) => Buffer) | undefined;
  let clearBuf = Buffer.alloc(0);
  let okBuf = Buffer.alloc(0);
  let resolveResult!: (r: SslExchangeResult) => void;
  let rejectResult!: (e: Error) => void;
  const result = new Promise<SslExchangeResult>((res, rej) => {
    resolveResult = res;
    rejectResult = rej;
  });
  result.catch(() => undefined);
  const takeClear = (c: Buffer): void => {
    clearBuf = Buffer.concat([clearBuf, c]);
    let nl: number;
    while ((nl = clearBuf.indexOf(0x0a)) >= 0) {
      lines.push(clearBuf.subarray(0, nl).toString('latin1'));
      clearBuf = clearBuf.subarray(nl + 1);
    }
  };
  socket.on('connect', () => socket.write('init:ssl:test\n'));
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    if (tailFilter) {
      takeClear(tailFilter(chunk));
      return;
    }
    if (exchange) {
      exchange.feed(chunk);
      return;
    }
    okBuf = Buffer.concat([okBuf, chunk]);
    const nl = okBuf.indexOf(0x0a);
    if (nl < 0) return;
    const answer = okBuf.subarray(0, nl).toString('latin1');
    if (answer !== 'ok:ssl') {
      rejectResult(new Error(`server answered ${answer}`));
      return;
    }
    const ex = new SslKeyExchange({ peerId: PEER, material: mat, peerName, timeoutMs, write: (c) => socket.write(c), warn: (m) => warnings.push(m), closeNotify });
    exchange = ex;
    ex.result.then(
      (r) => {
        tailFilter = (c) => r.tail.filter(c);
        takeClear(r.leftover);
        resolveResult(r);
      },
      (e: Error) => rejectResult(e),
    );
    const rest = okBuf.subarray(nl + 1);
    if (rest.length) ex.feed(rest);
  });
  socket.on('close', () => exchange?.abort(new Error('peer closed the connection')));
  return {
    result,
    socket,
    warnings,
    lines,
    chunks,
    async waitLines(n: number): Promise<string[]> {
      const deadline = Date.now() + 5000;
      while (lines.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${lines.length} lines`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return lines;
    },
  };
}

describe('SslKeyExchange against a TLS lond', () => {
  let pki: ReturnType<typeof testPki>;
  let clientMat: TlsMaterial;
  let serverMat: { ca: string; cert: string; key: string };
  const servers: { close(): Promise<void> }[] = [];
  const sockets: net.Socket[] = [];

  before(() => {
    pki = testPki();
    clientMat = material(pki.host(CLIENT));
    serverMat = material(pki.host(PEER));
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => s.close()));
  });

  async function setup(opts: Partial<FakeTlsOptions>, mat: TlsMaterial = clientMat, timeoutMs = 5000, closeNotify?: boolean, peerName?: PeerNameCheck) {
    const key = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const srv = await startServer(() => ({ ...serverMat, sessionKey: key, ...opts }));
    servers.push(srv);
    const client = runClient(srv.port, mat, timeoutMs, closeNotify, peerName);
    sockets.push(client.socket);
    return { srv, client, key };
  }

  it('gets the key over TLS, sends close_notify, then talks in the clear on the same socket', async () => {
    const { srv, client, key } = await setup({ waitForCloseNotify: true });
    const r = await client.result;
    assert.deepEqual(r.key, key);
    assert.equal(r.leftover.length, 0);
    client.socket.write('hello\n');
    assert.deepEqual(await client.waitLines(1), ['got:hello']);
    const conn = srv.conns[0];
    assert.equal(side(conn).report.clientCN, CLIENT);
    assert.equal(side(conn).report.clientCloseNotify, true, 'the server saw our close_notify');
    assert.deepEqual(conn.lines, ['hello']);
    assert.deepEqual(client.warnings, []);
  });

  it('cleartext sent in the same TCP write as the key record and close_notify comes out as leftover', async () => {
    const greeting = Buffer.from('first\r\nsecond line \xff\x00\n', 'latin1');
    const { client, key } = await setup({ greeting });
    const r = await client.result;
    assert.deepEqual(r.key, key);
    assert.deepEqual(r.leftover, greeting);
    assert.equal(r.tail.done, true);
    // The proof that it was one segment: the greeting shares its chunk with TLS bytes.
    const withGreeting = client.chunks.find((c) => c.includes(Buffer.from('first')));
    assert.ok(withGreeting && withGreeting[0] >= 0x14 && withGreeting[0] <= 0x17, 'greeting arrived in a chunk that starts with a TLS record');
  });

  it('cleartext right after the key record, with no close_notify at all, comes out as leftover', async () => {
    const greeting = Buffer.from('x\n');
    const { client, key } = await setup({ greeting, closeNotify: false });
    const r = await client.result;
    assert.deepEqual(r.key, key);
    assert.deepEqual(r.leftover, greeting);
  });

  it('does not wait for a peer that never sends close_notify', async () => {
    const { srv, client, key } = await setup({ closeNotify: false });
    const r = await client.result;
    assert.deepEqual(r.key, key);
    assert.equal(side(srv.conns[0]).report.sentCloseNotify, false);
    client.socket.write('after\n');
    assert.deepEqual(await client.waitLines(1), ['got:after']);
  });

  it('drops a close_notify that arrives after the switch, in the same segment as the first answer', async () => {
    const { srv, client } = await setup({ holdCloseNotify: true });
    const r = await client.result;
    assert.equal(r.tail.done, false, 'nothing in the clear yet');
    client.socket.write('one\n');
    assert.deepEqual(await client.waitLines(1), ['got:one']);
    assert.equal(r.tail.done, true);
    const answerChunk = client.chunks.find((c) => c.includes(Buffer.from('got:one')));
    assert.ok(answerChunk && answerChunk[0] === 0x17, 'the answer came behind a TLS record in one chunk');
    client.socket.write('two\n');
    assert.deepEqual(await client.waitLines(2), ['got:one', 'got:two']);
    assert.equal(side(srv.conns[0]).report.sentCloseNotify, true);
  });

  it('can end TLS without a close_notify of its own (closeNotify: false)', async () => {
    const { srv, client, key } = await setup({ waitForCloseNotify: false }, clientMat, 5000, false);
    const r = await client.result;
    assert.deepEqual(r.key, key);
    client.socket.write('plain\n');
    assert.deepEqual(await client.waitLines(1), ['got:plain']);
    assert.deepEqual(srv.conns[0].lines, ['plain']);
  });

  it('tolerates an upper-case key line with spaces and a CR', async () => {
    const { client, key } = await setup({ keyLine: (hex) => `  ${hex.toUpperCase()} \r\n` });
    assert.deepEqual((await client.result).key, key);
  });

  it('takes a key line without a newline when the peer ends TLS after it, with a warning', async () => {
    const { client, key } = await setup({ keyLine: (hex) => hex });
    assert.deepEqual((await client.result).key, key);
    assert.match(client.warnings.join('\n'), /without a newline/);
  });

  it('refuses a key line that is not 32 hex digits, without showing it', async () => {
    const { client, key } = await setup({ keyLine: (hex) => `${hex.slice(0, 31)}\n` });
    await assert.rejects(client.result, (e: Error) => {
      assert.match(e.message, /not 32 hex digits \(31 characters, 0 of them not hex\)/);
      assert.ok(!e.message.includes(key.toString('hex').slice(0, 31)));
      return true;
    });
  });

  it('refuses a peer certificate from another CA', async () => {
    const { client } = await setup({ cert: pki.foreign(PEER).cert, key: pki.foreign(PEER).key });
    await assert.rejects(client.result, /during the TLS handshake: the peer's certificate is not signed by our CA/);
  });

  it('refuses an expired peer certificate', async () => {
    const { client } = await setup({ cert: pki.expired(PEER).cert, key: pki.expired(PEER).key });
    await assert.rejects(client.result, /the peer's certificate has expired \(CERT_HAS_EXPIRED\)/);
  });

  it('refuses a peer certificate that is not valid yet', async () => {
    const { client } = await setup({ cert: pki.notYetValid(PEER).cert, key: pki.notYetValid(PEER).key });
    await assert.rejects(client.result, /not valid yet/);
  });

  it('refuses a certificate of our CA that names another host, before the key line', async () => {
    const other = pki.host('someotherhost');
    const { srv, client } = await setup({ cert: other.cert, key: other.key });
    await assert.rejects(client.result, (e: Error) => {
      assert.match(e.message, /^TLS key exchange with msul1 failed during the TLS handshake: the peer's certificate is for someotherhost, not for msul1/);
      return true;
    });
    assert.deepEqual(srv.conns[0]?.lines, [], 'nothing in the clear after it');
  });

  it('names what it would have accepted: the host id and the hosts.tab host name', async () => {
    const other = pki.host('someotherhost');
    const { client } = await setup({ cert: other.cert, key: other.key }, clientMat, 5000, undefined, { names: [PEER, 'l1.msu.example'], policy: 'strict' });
    await assert.rejects(client.result, /certificate is for someotherhost, not for msul1 \(its host id\) or l1\.msu\.example \(its host name in hosts\.tab\)/);
  });

  it('accepts the hosts.tab host name as CN, in any case', async () => {
    const byName = issue('L1.MSU.Example', { issuer: pki.ca }, 'host:byname');
    const { client, key } = await setup({ cert: byName.cert, key: byName.key }, clientMat, 5000, undefined, { names: [PEER, 'l1.msu.example'], policy: 'strict' });
    assert.deepEqual((await client.result).key, key);
    assert.deepEqual(client.warnings, []);
  });

  it('accepts the host id as a DNS subject alternative name; a certificate with no CN and no matching name is refused', async () => {
    const bySan = issue('x', { issuer: pki.ca, cn: 'unrelated', dns: ['elsewhere.example', 'MSUL1'] }, 'host:bysan');
    const ok = await setup({ cert: bySan.cert, key: bySan.key });
    assert.ok((await ok.client.result).key);
    const anonymous = issue('y', { issuer: pki.ca, cn: null }, 'host:anon');
    const bad = await setup({ cert: anonymous.cert, key: anonymous.key });
    await assert.rejects(bad.client.result, /certificate is for no CN and no DNS or IP subject alternative name, not for msul1/);
  });

  it('gatewaycTlsPeerName ca-only: any certificate of our CA, with a warning', async () => {
    const other = pki.host('someotherhost');
    const { client, key } = await setup({ cert: other.cert, key: other.key }, clientMat, 5000, undefined, { names: [PEER], policy: 'ca-only' });
    assert.deepEqual((await client.result).key, key);
    assert.match(client.warnings.join('\n'), /certificate for someotherhost, not for msul1 \(its host id\); accepted since our CA signed it \(gatewaycTlsPeerName ca-only\)/);
  });

  it('ca-only still refuses a certificate of another CA', async () => {
    const { client } = await setup({ cert: pki.foreign(PEER).cert, key: pki.foreign(PEER).key }, clientMat, 5000, undefined, { names: [PEER], policy: 'ca-only' });
    await assert.rejects(client.result, /not signed by our CA/);
  });

  it('fails clearly when the peer hangs up on our certificate (signed by another CA)', async () => {
    const { srv, client } = await setup({}, material(pki.foreign(CLIENT)));
    await assert.rejects(client.result, /TLS key exchange with msul1 failed (while waiting for the key line|during the TLS handshake): /);
    assert.equal(srv.conns[0].lines.length, 0);
  });

  it('fails when TLS is cut half-way', async () => {
    const { client } = await setup({ cutAfterBytes: 200 });
    await assert.rejects(client.result, /failed during the TLS handshake: peer closed the connection/);
  });

  it('fails fast on a peer that answers with something that is not TLS', async () => {
    const started = Date.now();
    const { client } = await setup({ notTls: Buffer.from('HTTP/1.0 400 Bad Request\r\n\r\n') }, clientMat, 10000);
    await assert.rejects(client.result, /failed during the TLS handshake: peer sent data that is not TLS: "HTTP\/1.0 400 Bad Request\\r\\n\\r\\n" \(28 bytes\)/);
    assert.ok(Date.now() - started < 5000);
  });

  it('times out on a peer that never speaks TLS', async () => {
    const srv = await startServer(() => ({ ...serverMat, notTls: Buffer.alloc(0) }));
    servers.push(srv);
    const client = runClient(srv.port, clientMat, 300);
    sockets.push(client.socket);
    await assert.rejects(client.result, /failed during the TLS handshake: timed out after 0.3 s/);
  });

  it('fails clearly when our own key does not fit our certificate', async () => {
    const { client } = await setup({}, { ...clientMat, key: pki.host('unrelated').key });
    await assert.rejects(client.result, /cannot use our certificate and key/);
  });
});

describe('parseKeyLine', () => {
  it('accepts 32 hex digits in any case with whitespace around', () => {
    assert.deepEqual(parseKeyLine(Buffer.from(' 00112233445566778899AABBCCDDeeff\r')), Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
  });
  it('says what is wrong without the key', () => {
    assert.equal(parseKeyLine(Buffer.from('')), 'peer sent an empty key line');
    assert.equal(parseKeyLine(Buffer.from('0011223344556677889xaabbccddeeff')), 'the key line is not 32 hex digits (32 characters, 1 of them not hex)');
    assert.equal(parseKeyLine(Buffer.from('00 11')), 'the key line is not 32 hex digits (5 characters, 1 of them not hex)');
  });
});

describe('describeTlsError', () => {
  it('explains the certificate codes', () => {
    const e = (code: string): NodeJS.ErrnoException => Object.assign(new Error('x'), { code });
    assert.match(describeTlsError(e('UNABLE_TO_VERIFY_LEAF_SIGNATURE')), /not signed by our CA/);
    assert.match(describeTlsError(e('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA')), /rejected our certificate/);
    assert.match(describeTlsError(e('ERR_SSL_WRONG_VERSION_NUMBER')), /does not speak TLS/);
    assert.equal(describeTlsError(e('SOMETHING')), 'x (SOMETHING)');
  });
});
