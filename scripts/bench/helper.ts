// The benchmark's second process: fake londs (test/support/fake-lond.ts) or a trivial echo
// server, driven over the IPC channel by main.ts. Kept out of the generator's and the
// daemon's processes so that none of the three steals the others' event loop.
// Needs OpenSSL's IDEA: main.ts forks it with --openssl-legacy-provider.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { FakeLond } from '../../test/support/fake-lond';
import { connect, londHandshake, LineSocket } from './loadgen';

export interface PeerSpec {
  id: string;
  address: string;
}

export type HelperCommand =
  | { op: 'londs'; clientId: string; peers: PeerSpec[]; serviceTimeMs: number; precise?: boolean }
  | { op: 'echo'; path: string }
  | { op: 'proxy'; path: string; host: string; port: number; peerId: string; clientId: string }
  | { op: 'stats' };

export type HelperReply =
  | { op: 'ready'; port: number }
  | { op: 'stats'; handshakes: number; requests: number; open: number; malformed: number }
  | { op: 'error'; message: string };

const londs: FakeLond[] = [];

/**
 * Waits of one fixed length, ended within a few microseconds instead of a node timer's
 * 1–2 ms granularity: the loop polls (setImmediate) while any wait is pending, so it costs
 * up to a core while requests are being served and nothing when idle. Waits all have the
 * same length, so they end in the order they began: a FIFO is enough.
 */
class PreciseDelay {
  private readonly due: { at: number; resolve: () => void }[] = [];
  private head = 0;
  private polling = false;

  constructor(private readonly ms: number) {}

  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.due.push({ at: performance.now() + this.ms, resolve });
      if (!this.polling) {
        this.polling = true;
        setImmediate(() => this.poll());
      }
    });
  }

  private poll(): void {
    const now = performance.now();
    while (this.head < this.due.length && (this.due[this.head] as { at: number }).at <= now) {
      (this.due[this.head++] as { resolve: () => void }).resolve();
    }
    if (this.head === this.due.length) {
      this.due.length = 0;
      this.head = 0;
      this.polling = false;
      return;
    }
    setImmediate(() => this.poll());
  }
}

/** The fake lond's own echo: `echo:<x>` answers `<x>`. */
function echoHandler(delay: PreciseDelay) {
  return async (cmd: Buffer): Promise<Buffer | string> => {
    await delay.wait();
    return cmd.length >= 5 && cmd.toString('latin1', 0, 5) === 'echo:' ? cmd.subarray(5) : 'unknown_cmd';
  };
}

function reply(msg: HelperReply): void {
  process.send?.(msg);
}

async function startLonds(clientId: string, peers: PeerSpec[], serviceTimeMs: number, precise: boolean): Promise<number> {
  const timing = precise && serviceTimeMs > 0 ? { handler: echoHandler(new PreciseDelay(serviceTimeMs)) } : { serviceTimeMs };
  // All londs share one port (gatewayc has one londPort); the first picks a free one.
  for (let attempt = 0; attempt < 20; attempt++) {
    let port = 0;
    try {
      for (const p of peers) {
        const lond = await FakeLond.start({ id: p.id, clientId, host: p.address, port, ...timing });
        londs.push(lond);
        port = lond.port;
      }
      return port;
    } catch (err) {
      await Promise.all(londs.splice(0).map((l) => l.stop()));
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('no port free on every lond address after 20 attempts');
}

function startEcho(path: string): Promise<void> {
  const server = net.createServer((sock) => {
    sock.on('data', (chunk) => sock.write(chunk));
    sock.on('error', () => undefined);
  });
  fs.rmSync(path, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
}

/**
 * The floor for any gateway: each local client gets its own lond session, and after the
 * handshake bytes are piped both ways untouched (plain requests only). What gatewayc
 * adds beyond this is its own cost; up to this is the cost of one more hop.
 */
function startProxy(cmd: Extract<HelperCommand, { op: 'proxy' }>): Promise<void> {
  const server = net.createServer((client) => {
    client.pause();
    client.on('error', () => undefined);
    void (async () => {
      const sock = await connect({ host: cmd.host, port: cmd.port });
      sock.setNoDelay(true);
      sock.on('error', () => undefined);
      await londHandshake(new LineSocket(sock), cmd.peerId, cmd.clientId);
      sock.removeAllListeners('data');
      client.pipe(sock);
      sock.pipe(client);
      client.resume();
    })().catch(() => client.destroy());
  });
  fs.rmSync(cmd.path, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cmd.path, () => resolve());
  });
}

function stats(): HelperReply {
  const s = { op: 'stats' as const, handshakes: 0, requests: 0, open: 0, malformed: 0 };
  for (const l of londs) {
    s.handshakes += l.stats.handshakes;
    s.requests += l.stats.requests;
    s.open += l.stats.open;
    s.malformed += l.stats.malformed;
  }
  return s;
}

async function handle(cmd: HelperCommand): Promise<void> {
  try {
    switch (cmd.op) {
      case 'londs':
        reply({ op: 'ready', port: await startLonds(cmd.clientId, cmd.peers, cmd.serviceTimeMs, cmd.precise === true) });
        return;
      case 'echo':
        await startEcho(cmd.path);
        reply({ op: 'ready', port: 0 });
        return;
      case 'proxy':
        await startProxy(cmd);
        reply({ op: 'ready', port: 0 });
        return;
      case 'stats':
        reply(stats());
        return;
    }
  } catch (err) {
    reply({ op: 'error', message: err instanceof Error ? err.message : String(err) });
  }
}

if (require.main === module) {
  process.on('message', (m: HelperCommand) => void handle(m));
  // The fake lond keeps every request it saw, for tests; a long run must not grow on it.
  setInterval(() => {
    for (const l of londs) l.received.length = 0;
  }, 500).unref();
  process.on('disconnect', () => process.exit(0));
}
