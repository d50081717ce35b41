import * as net from 'node:net';
import type { ControlRequest } from '../control/protocol';
import type { Logger } from '../log';
import { LineReader } from '../protocol/framing';
import { closeServer, listenUnix, MadeSocket, SocketSource } from './unix-socket';

export type ControlHandler = (req: ControlRequest) => Promise<object>;

const MAX_CONTROL_LINE = 64 * 1024;

/**
 * The control socket: JSON lines (control/protocol.ts), answered one after another per
 * connection. Access control is the socket's owner and mode: root and the service group
 * under systemd (the socket unit), the daemon's own user and group otherwise — never the
 * web server's group, which may talk to peers but not steer the daemon.
 */
export class ControlServer {
  private server: net.Server | undefined;
  private made: MadeSocket | undefined;

  constructor(
    private readonly handler: ControlHandler,
    private readonly log: Logger,
  ) {}

  async listen(source: SocketSource): Promise<void> {
    const server = net.createServer((sock) => this.serve(sock));
    this.server = server;
    this.made = await listenUnix(server, source, { mode: 0o660, warn: (m) => this.log.warn({ event: 'socket.chown-failed' }, m) });
  }

  private serve(sock: net.Socket): void {
    let chain = Promise.resolve();
    const reply = (obj: object): void => {
      if (!sock.destroyed) sock.write(`${JSON.stringify(obj)}\n`);
    };
    const reader = new LineReader({
      maxLineBytes: MAX_CONTROL_LINE,
      onOverflow: () => {
        reply({ ok: false, error: `control request longer than ${MAX_CONTROL_LINE} bytes` });
        sock.end();
      },
      onLine: (line) => {
        chain = chain.then(async () => {
          let req: ControlRequest;
          try {
            req = JSON.parse(line.toString('utf8')) as ControlRequest;
            if (typeof req !== 'object' || req === null || typeof req.op !== 'string') throw new Error('missing "op"');
          } catch (err) {
            reply({ ok: false, error: `malformed control request: ${(err as Error).message}` });
            return;
          }
          try {
            reply(await this.handler(req));
          } catch (err) {
            this.log.error({ event: 'control.failed', op: req.op }, `control request ${JSON.stringify(req.op)} failed: ${(err as Error).message}`);
            reply({ ok: false, error: (err as Error).message });
          }
        });
      },
    });
    sock.on('data', (chunk: Buffer) => reader.push(chunk));
    sock.on('error', () => sock.destroy());
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await closeServer(server, this.made);
  }
}
