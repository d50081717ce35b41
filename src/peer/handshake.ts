import { deriveSessionKey } from '../protocol/key';

/**
 * The line dialogue a session runs before it carries requests, written against a tiny
 * channel interface so it can be tested without sockets. Each `ask` sends one line and
 * waits (under the handshake timeout) for one answer line.
 */
export interface HandshakeChannel {
  ask(step: string, line: Buffer | string): Promise<string>;
  warn(message: string): void;
}

export class HandshakeError extends Error {
  constructor(message: string, readonly refused = false) {
    super(message);
  }
}

/** What a peer said, made safe for a log line: bounded, printable, never a secret. */
export function describeReply(reply: string): string {
  const shown = reply.length > 60 ? `${reply.slice(0, 60)}…` : reply;
  return JSON.stringify(shown);
}

/**
 * The 2002 exchange of PROTOCOL.md ("insecure" key mode): init → challenge echoed →
 * ok, pong, ekey → buildkey. Returns the 16-byte IDEA session key. Error messages name
 * the step and what the peer answered — except where the answer is the challenge or
 * the buildkey, which are secrets.
 */
export async function insecureHandshake(ch: HandshakeChannel, peerId: string, hostId: string): Promise<Buffer> {
  const challenge = await ch.ask('init', 'init');
  if (challenge === 'refused' || challenge === 'rejected') {
    throw new HandshakeError(`peer answered ${challenge} to init (does its hosts.tab know this server?)`, true);
  }
  if (challenge === '') throw new HandshakeError('peer answered init with an empty line');

  const ok = await ch.ask('challenge', challenge);
  if (ok !== 'ok') {
    throw new HandshakeError(`peer did not accept the challenge echo: answered ${describeReply(ok)}`, ok === 'refused');
  }

  const pong = await ch.ask('pong', 'pong');
  if (!pong.startsWith(peerId)) {
    ch.warn(`pong reply does not start with the peer id: ${describeReply(pong)}`);
  }

  const buildkey = await ch.ask('ekey', 'ekey');
  if (buildkey === '' || buildkey === 'refused' || buildkey === 'rejected' || buildkey === 'unknown_cmd') {
    throw new HandshakeError(buildkey === '' ? 'peer answered ekey with an empty line' : `peer answered ${buildkey} to ekey`);
  }
  if (!/^[0-9A-Fa-f]+$/.test(buildkey)) {
    // lond's buildkeys are hex; the derivation still works for any character (Perl's
    // pack rule), so a strange one is worth a warning, not a failure.
    ch.warn(`ekey answer is not hexadecimal (${buildkey.length} characters); deriving the key anyway`);
  }
  return deriveSessionKey(peerId, hostId, buildkey);
}
