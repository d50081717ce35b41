import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Logger } from '../log';
import { LineReader } from '../protocol/framing';

/**
 * The control socket speaks JSON lines: one request object `{"op": ..., ...}` per line,
 * one reply object per line (`{"ok": true, ...}` or `{"ok": false, "error": "..."}`).
 * Access control is the socket's owner and mode (root and the service group only).
 */
/** Reply to `{"op":"reload"}`: what changed, or why the new configuration was refused. */
export interface ReloadResult {
  ok: boolean;
  error?: string;
  added: string[];
  removed: string[];
  reconnected: string[];
  warnings: string[];
}

export type ControlRequest = { op: string; [k: string]: unknown };
export type ControlHandler = (req: ControlRequest) => Promise<Record<string, unknown>>;

const MAX_CONTROL_LINE = 64 * 1024;

export class ControlServer {
  private server: net.Server | undefined;

  constructor(
    private readonly handler: ControlHandler,
    private readonly log: Logger,
  ) {}

  async listen(source: { path: string; gid?: number } | { fd: number }): Promise<void> {
    const server = net.createServer((sock) => this.serve(sock));
    this.server = server;
    if ('fd' in source) {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ fd: source.fd }, resolve));
      return;
    }
    await fs.promises.mkdir(path.dirname(source.path), { recursive: true, mode: 0o755 });
    try {
      if ((await fs.promises.lstat(source.path)).isSocket()) await fs.promises.unlink(source.path);
    } catch {
      // nothing there
    }
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ path: source.path }, resolve));
    await fs.promises.chmod(source.path, 0o660);
    if (source.gid !== undefined) {
      await fs.promises.chown(source.path, -1, source.gid).catch((err: NodeJS.ErrnoException) => {
        this.log.warn(`cannot give ${source.path} group ${source.gid} (gatewaycSocketGroup): ${err.code ?? err.message}`);
      });
    }
  }

  private serve(sock: net.Socket): void {
    let chain = Promise.resolve();
    const reply = (obj: Record<string, unknown>): void => {
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
            this.log.error(`control request ${JSON.stringify(req.op)} failed: ${(err as Error).message}`);
            reply({ ok: false, error: (err as Error).message });
          }
        });
      },
    });
    sock.on('data', (chunk: Buffer) => reader.push(chunk));
    sock.on('error', () => sock.destroy());
  }

  async close(unlinkPath?: string): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (unlinkPath) await fs.promises.rm(unlinkPath, { force: true });
  }
}
