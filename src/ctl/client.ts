/**
 * The two sockets gatewayctl opens: the daemon's control socket (JSON lines) and a
 * peer socket (request lines, as a LON-CAPA program writes them). Every failure becomes
 * a CtlError: one sentence for the administrator and the exit status that goes with it.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { SERVICE_GROUP } from '../config/defaults';
import { EXIT } from '../exit-codes';

export { EXIT };

export class CtlError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CtlError';
  }
}

/** How long a control request may take before the daemon counts as hung. */
const CONTROL_TIMEOUT_MS = 30_000;

/** The group owning a path, by name when /etc/group knows it. */
function groupOf(file: string, groupFile = '/etc/group'): string | undefined {
  let gid: number;
  try {
    gid = fs.statSync(file).gid;
  } catch {
    return undefined;
  }
  try {
    for (const line of fs.readFileSync(groupFile, 'utf8').split('\n')) {
      const [name, , g] = line.split(':');
      if (g === String(gid) && name) return name;
    }
  } catch {
    // no group file: the number will do
  }
  return String(gid);
}

/** One sentence for a failed connect to the control socket. */
export function controlConnectError(err: NodeJS.ErrnoException, socketPath: string): CtlError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
    case 'ENOTSOCK':
      return new CtlError(`cannot reach the gatewayc daemon at ${socketPath}: is it running? (systemctl status gatewayc)`, EXIT.unreachable);
    case 'EACCES':
    case 'EPERM':
      return new CtlError(
        `permission denied on the control socket ${socketPath}: it is for root and the members of the group ${SERVICE_GROUP} (run as root, or add yourself to ${SERVICE_GROUP})`,
        EXIT.denied,
      );
    default:
      return new CtlError(`cannot reach the gatewayc daemon at ${socketPath}: ${err.message}`, EXIT.unreachable);
  }
}

/** One sentence for a failed connect to a peer socket. */
export function peerConnectError(err: NodeJS.ErrnoException, peer: string, socketPath: string): CtlError {
  switch (err.code) {
    case 'ENOENT':
      return new CtlError(`there is no socket for ${peer} at ${socketPath}: is ${peer} in hosts.tab, and is gatewayc running? (gatewayctl status)`, EXIT.unreachable);
    case 'ECONNREFUSED':
    case 'ENOTSOCK':
      return new CtlError(`nothing is listening on ${socketPath}: is gatewayc running? (systemctl status gatewayc)`, EXIT.unreachable);
    case 'EACCES':
    case 'EPERM': {
      const group = groupOf(socketPath);
      const who = group ? `root and the members of the group ${group}` : 'root and the group that owns it';
      return new CtlError(`permission denied on ${socketPath}: the peer sockets are for ${who}, as for the LON-CAPA programs`, EXIT.denied);
    }
    default:
      return new CtlError(`cannot connect to ${socketPath}: ${err.message}`, EXIT.unreachable);
  }
}

/** Connects to a UNIX socket; a failure is turned into a CtlError by `describe`. */
export function connectUnix(socketPath: string, describe: (err: NodeJS.ErrnoException) => CtlError): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ path: socketPath });
    const onError = (err: NodeJS.ErrnoException): void => reject(describe(err));
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

/** Sends one request object over the control socket and resolves with the reply object. */
export async function controlRequest(socketPath: string, req: Record<string, unknown>, timeoutMs = CONTROL_TIMEOUT_MS): Promise<Record<string, unknown>> {
  const sock = await connectUnix(socketPath, (err) => controlConnectError(err, socketPath));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (err: CtlError | undefined, reply?: Record<string, unknown>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply as Record<string, unknown>);
    };
    const timer = setTimeout(
      () => finish(new CtlError(`the gatewayc daemon at ${socketPath} did not answer within ${timeoutMs / 1000} s (systemctl status gatewayc; journalctl -u gatewayc)`, EXIT.unreachable)),
      timeoutMs,
    );
    sock.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (!chunk.includes(10)) return;
      const all = Buffer.concat(chunks);
      const line = all.subarray(0, all.indexOf(10)).toString('utf8');
      let reply: unknown;
      try {
        reply = JSON.parse(line);
      } catch {
        finish(new CtlError(`the program at ${socketPath} does not answer like gatewayc (is it its control socket?)`, EXIT.failed));
        return;
      }
      if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) {
        finish(new CtlError(`the program at ${socketPath} does not answer like gatewayc (is it its control socket?)`, EXIT.failed));
        return;
      }
      finish(undefined, reply as Record<string, unknown>);
    });
    const closed = (): void => finish(new CtlError(`the gatewayc daemon at ${socketPath} closed the connection without answering: is it running? (systemctl status gatewayc)`, EXIT.unreachable));
    sock.on('end', closed);
    sock.on('close', closed);
    sock.on('error', closed);
    sock.write(`${JSON.stringify(req)}\n`);
  });
}

/** A reply `{ok:false, error}` as a CtlError (exit status 1); otherwise the reply. */
export function expectOk(reply: Record<string, unknown>): Record<string, unknown> {
  if (reply.ok === true) return reply;
  const error = typeof reply.error === 'string' && reply.error !== '' ? reply.error : 'the daemon refused the request without saying why';
  throw new CtlError(error, EXIT.failed);
}
