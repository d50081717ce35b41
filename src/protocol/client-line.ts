/**
 * What a line from a local client means before it goes anywhere. Most lines are requests
 * for lond. A few are not: `close_connection_exit` is ours (PROTOCOL.md), and the words
 * that set up or end a lond session (init…, ekey, pong, sethost:, exit) and raw `enc:`
 * lines belong to the session itself — sent by a client through the shared session, they
 * would re-key it or end it under every other client's feet. They are answered here.
 */
export type ClientLine = { kind: 'request' } | { kind: 'close-sessions' } | { kind: 'session-word'; word: string };

const CLOSE_CONNECTION_EXIT = Buffer.from('close_connection_exit', 'latin1');
const SESSION_WORDS = new Set(['ekey', 'pong', 'exit', 'sethost']);
const REQUEST: ClientLine = { kind: 'request' };
const CLOSE: ClientLine = { kind: 'close-sessions' };

/** The command word: up to the first ':' (or the end), without trailing CR/blanks. */
function commandWord(line: Buffer): string {
  let end = line.indexOf(0x3a);
  if (end < 0) end = line.length;
  if (end > 16) return ''; // longer than any word checked here
  return line.toString('latin1', 0, end).replace(/[\r\t ]+$/, '').toLowerCase();
}

export function classifyClientLine(line: Buffer): ClientLine {
  if (line.equals(CLOSE_CONNECTION_EXIT)) return CLOSE;
  // Fast path: nearly every request starts with a lower-case letter other than e/i/p/s.
  const first = line[0];
  if (first !== 0x65 && first !== 0x69 && first !== 0x70 && first !== 0x73 && first !== 0x45 && first !== 0x49 && first !== 0x50 && first !== 0x53) return REQUEST;
  // A 2002 lond takes any line that starts with "init" for init, whatever follows.
  if (line.length >= 4 && line.toString('latin1', 0, 4).toLowerCase() === 'init') return { kind: 'session-word', word: 'init' };
  const word = commandWord(line);
  if (SESSION_WORDS.has(word)) return { kind: 'session-word', word };
  if (word === 'enc' && line.length > 3 && line[3] === 0x3a) return { kind: 'session-word', word: 'enc' };
  return REQUEST;
}
