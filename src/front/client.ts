import type * as net from 'node:net';
import { LineReader } from '../protocol/framing';
import { writeLine } from '../protocol/write-line';
import type { Answer } from '../peer/session';

/** What a client connection needs from its peer. */
export interface RequestSink {
  request(line: Buffer, cb: (answer: Answer) => void): { cancelled: boolean };
  closeSessions(): void;
}

const CON_LOST = Buffer.from('con_lost\n');
const OK = Buffer.from('ok\n');
const CLOSE_CONNECTION_EXIT = Buffer.from('close_connection_exit');

/** Lines read ahead of the one in flight before the client socket is paused. */
const READ_AHEAD = 64;
/**
 * Bytes of complete lines read ahead before the socket is paused. Counting lines alone let
 * one client park 64 × gatewaycMaxRequestBytes (256 MiB by default) in the daemon.
 */
const READ_AHEAD_BYTES = 1024 * 1024;
/** Answer bytes waiting for a slow reader before we stop sending it more work. */
const WRITE_HIGH_WATER = 4 * 1024 * 1024;

type Item = Buffer | { preset: Buffer };

const itemBytes = (item: Item): number => (Buffer.isBuffer(item) ? item.length : item.preset.length);

/**
 * One local client. Its requests are carried one at a time, in its order, so answers come
 * back in its order and a client's writes keep their order on the peer (a `put` then a
 * `get` behave as sent). Different clients run side by side on the peer's sessions.
 */
export class ClientConnection {
  private pending: Item[] = [];
  private head = 0;
  private pendingBytes = 0;
  private inFlight: { cancelled: boolean } | undefined;
  private closed = false;
  private paused = false;
  private readonly reader: LineReader;

  constructor(
    private readonly sock: net.Socket,
    private readonly sink: RequestSink,
    maxRequestBytes: number,
    private readonly onOversize: () => void,
  ) {
    this.reader = new LineReader({
      maxLineBytes: maxRequestBytes,
      onLine: (line) => this.enqueue(line),
      onOverflow: () => {
        this.onOversize();
        this.enqueue({ preset: Buffer.from(`error: request longer than gatewaycMaxRequestBytes (${maxRequestBytes} bytes)\n`) });
      },
    });
    sock.on('data', (chunk: Buffer) => this.reader.push(chunk));
    sock.on('drain', () => this.maybeResume());
    sock.on('error', () => this.close());
    sock.on('close', () => this.close());
    // A client that half-closes after its last request still gets its answers.
    sock.on('end', () => {
      if (this.pendingCount() === 0 && !this.inFlight) sock.end();
    });
  }

  private pendingCount(): number {
    return this.pending.length - this.head;
  }

  private enqueue(item: Item): void {
    if (this.closed) return;
    this.pending.push(item);
    this.pendingBytes += itemBytes(item);
    if (!this.paused && (this.pendingCount() > READ_AHEAD || this.pendingBytes > READ_AHEAD_BYTES)) {
      this.paused = true;
      this.sock.pause();
    }
    if (!this.inFlight) this.next();
  }

  private next(): void {
    while (!this.closed && !this.inFlight && this.pendingCount() > 0) {
      const item = this.pending[this.head] as Item;
      this.pending[this.head++] = undefined as unknown as Item;
      this.pendingBytes -= itemBytes(item);
      if (this.head > 1024 && this.head * 2 > this.pending.length) {
        this.pending = this.pending.slice(this.head);
        this.head = 0;
      }
      if (!Buffer.isBuffer(item)) {
        this.write(item.preset);
        continue;
      }
      if (item.equals(CLOSE_CONNECTION_EXIT)) {
        this.sink.closeSessions();
        this.write(OK);
        continue;
      }
      const ticket = { cancelled: false };
      this.inFlight = ticket;
      let sync = true;
      // Filled once request() returns; the callback may run before that (peer down).
      const holder: { req?: { cancelled: boolean } } = {};
      holder.req = this.sink.request(item, (answer) => {
        if (this.inFlight === ticket || this.inFlight === holder.req) this.inFlight = undefined;
        if (this.closed) return; // the client left: its answer is dropped, the session carries on
        this.writeAnswer(answer);
        // An answer given at once (peer down) is picked up by this loop; recursing here
        // would grow the stack with every pipelined request.
        if (!sync) this.next();
      });
      sync = false;
      if (this.inFlight === ticket) this.inFlight = holder.req;
    }
    this.maybeResume();
    if (!this.closed && !this.inFlight && this.pendingCount() === 0 && this.sock.readableEnded) this.sock.end();
  }

  private write(buf: Buffer): void {
    this.sock.write(buf);
  }

  private writeAnswer(answer: Answer): void {
    if (answer === undefined) {
      this.write(CON_LOST);
      return;
    }
    writeLine(this.sock, answer);
  }

  private maybeResume(): void {
    if (this.paused && !this.closed && this.pendingCount() <= READ_AHEAD / 2 && this.pendingBytes <= READ_AHEAD_BYTES / 2 && this.sock.writableLength < WRITE_HIGH_WATER) {
      this.paused = false;
      this.sock.resume();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Requests not yet handed to the peer are dropped; the one in flight is cancelled
    // if still queued there (it is never sent), or its answer is discarded.
    if (this.inFlight) this.inFlight.cancelled = true;
    this.pending = [];
    this.head = 0;
    this.pendingBytes = 0;
    this.reader.reset();
    this.sock.destroy();
  }
}
