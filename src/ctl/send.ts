/**
 * `gatewayctl send`: a LON-CAPA client in a few lines. Requests are written to the peer
 * socket one line each, as they come (pipelined on one connection); answers are read
 * back in order. Bytes pass unchanged. The text of a request is never put in a message:
 * it may be an `encrypt:` request carrying a password.
 */
import type * as net from 'node:net';
import { connectUnix, CtlError, EXIT, peerConnectError } from './client';

export const CON_LOST = 'con_lost';

export interface SendResult {
  sent: number;
  answered: number;
  conLost: number;
}

/** Splits a byte stream into lines (without '\n'); the last line may lack one. Empty lines are dropped. */
export async function* requestLines(input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): AsyncGenerator<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of input) {
    pending = Buffer.concat([pending, typeof chunk === 'string' ? Buffer.from(chunk) : chunk]);
    let nl: number;
    while ((nl = pending.indexOf(10)) >= 0) {
      const line = pending.subarray(0, nl);
      pending = pending.subarray(nl + 1);
      if (line.length > 0) yield Buffer.from(line);
    }
  }
  if (pending.length > 0) yield pending;
}

/**
 * Sends every request to the peer socket and hands each answer line to `onAnswer` as it
 * arrives. Resolves once every request is answered; a connection closed before that is
 * a CtlError (the missing answers are lost, like con_lost).
 */
export async function sendRequests(socketPath: string, peer: string, requests: AsyncIterable<Buffer>, onAnswer: (answer: Buffer) => void): Promise<SendResult> {
  const sock = await connectUnix(socketPath, (err) => peerConnectError(err, peer, socketPath));
  const result: SendResult = { sent: 0, answered: 0, conLost: 0 };
  let inputDone = false;
  let closed = false;
  let settle: ((err?: CtlError) => void) | undefined;
  const allAnswered = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  // It may fail while stdin is still being read; it is awaited below.
  allAnswered.catch(() => undefined);
  const check = (): void => {
    if (inputDone && result.answered >= result.sent) settle?.();
  };

  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let nl: number;
    while ((nl = buf.indexOf(10)) >= 0) {
      const answer = buf.subarray(0, nl);
      buf = buf.subarray(nl + 1);
      result.answered++;
      if (answer.toString('latin1') === CON_LOST) result.conLost++;
      onAnswer(answer);
    }
    check();
  });
  const onClose = (): void => {
    closed = true;
    const missing = result.sent - result.answered;
    if (missing > 0 || !inputDone) {
      settle?.(new CtlError(`gatewayc closed the connection on ${socketPath} before answering ${missing > 0 ? `${missing} request${missing === 1 ? '' : 's'}` : 'every request'}`, EXIT.conLost));
    } else {
      check();
    }
  };
  sock.on('close', onClose);
  sock.on('error', () => undefined); // 'close' follows and says what matters

  try {
    for await (const line of requests) {
      if (closed) break;
      result.sent++;
      if (!writeLine(sock, line)) await new Promise<void>((r) => sock.once('drain', r).once('close', r));
    }
  } catch (err) {
    sock.destroy();
    throw err;
  }
  inputDone = true;
  if (closed) onClose();
  check();
  try {
    await allAnswered;
  } finally {
    sock.destroy();
  }
  return result;
}

function writeLine(sock: net.Socket, line: Buffer): boolean {
  return sock.write(Buffer.concat([line, Buffer.from('\n')]));
}
