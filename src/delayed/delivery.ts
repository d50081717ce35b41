import type { Logger } from '../log';
import type { PeerState, PeerStateChange } from '../peer/peer';
import type { Answer, RequestHandle, RequestOptions } from '../peer/request';
import type { Clock, Timer } from '../util/clock';
import type { Signal } from '../util/signal';
import type { SpoolRead } from './spool';

/** What delivery needs of a peer: its state, and the same request() local clients use. */
export interface DeliveryPeer {
  readonly id: string;
  readonly currentState: PeerState;
  readonly stateChanged: Signal<PeerStateChange>;
  request(line: Buffer, opts: RequestOptions): RequestHandle;
}

/** What delivery needs of the spool. */
export interface DeliverySpool {
  next(peerId: string, after?: string): string | undefined;
  read(name: string): Promise<SpoolRead>;
  release(line: Buffer): void;
  remove(name: string): Promise<void>;
}

/** Where delivery waits when memory is short (the daemon-wide byte budget). */
export interface DeliveryRoom {
  waitForRoom(w: { resume(): void }): void;
  cancelWait(w: { resume(): void }): void;
}

const ERROR_TOKENS = /^(refused|rejected|unknown_cmd|error:)/;
/** A message still being written is looked at again after this long. */
const INCOMPLETE_RETRY_MS = 2000;
/** A message that could not be read (an I/O error) is tried again after this long. */
const UNREADABLE_RETRY_MS = 30_000;

/**
 * Delayed messages of one peer: sent one at a time, oldest first, through the peer's
 * request() at the delayed priority (ahead of queued live requests) whenever the peer is
 * up and the spool has files for it. A file is removed only after lond answered it
 * (at least once); on loss it stays for the next session. stop() lets the message in
 * flight finish and sends no other.
 */
export class DelayedDelivery {
  private running = false;
  private again = false;
  private stopped = false;
  private retryTimer: Timer | undefined;
  private inFlight: Promise<void> | undefined;
  private readonly unsubscribe: () => void;
  private readonly roomWaiter = { resume: () => this.kick() };
  delivered = 0;

  constructor(
    private readonly peer: DeliveryPeer,
    private readonly spool: DeliverySpool,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly room?: DeliveryRoom,
  ) {
    this.unsubscribe = peer.stateChanged.on((c) => {
      if (c.to === 'up') this.kick();
    });
  }

  /** The spool has files for this peer, or the peer came up. */
  kick(): void {
    if (this.stopped || this.peer.currentState !== 'up') return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.inFlight = this.run().finally(() => {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /** Sends nothing more; resolves once the message in flight (if any) is settled. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.retryTimer?.cancel();
    this.room?.cancelWait(this.roomWaiter);
    await this.inFlight;
  }

  private async run(): Promise<void> {
    let after: string | undefined;
    let retryMs = Infinity;
    while (!this.stopped && this.peer.currentState === 'up') {
      const name = this.spool.next(this.peer.id, after);
      if (name === undefined) break;
      after = name;
      const read = await this.spool.read(name);
      if ('skip' in read && read.skip === 'no-room') {
        this.room?.waitForRoom(this.roomWaiter);
        return;
      }
      if ('skip' in read) {
        if (read.skip === 'incomplete') retryMs = Math.min(retryMs, INCOMPLETE_RETRY_MS);
        if (read.skip === 'unreadable') retryMs = Math.min(retryMs, UNREADABLE_RETRY_MS);
        continue; // never holds up the messages behind it
      }
      if (this.stopped) {
        this.spool.release(read.line);
        break;
      }
      const answer = await new Promise<Answer>((resolve) => this.peer.request(read.line, { priority: 'delayed', onAnswer: resolve }));
      this.spool.release(read.line);
      if (answer === undefined || answer.length === 0) {
        this.log.warn({ event: 'delayed.kept', peer: this.peer.id, file: name }, 'delayed message not delivered: kept for the next session');
        return;
      }
      await this.spool.remove(name);
      this.delivered++;
      const token = answer.subarray(0, 40).toString('latin1');
      if (ERROR_TOKENS.test(token)) {
        this.log.warn({ event: 'delayed.delivered', peer: this.peer.id, file: name, answer: token.split(':', 1)[0] }, `delayed message delivered but peer answered ${JSON.stringify(token.split(':', 1)[0])}`);
      } else {
        this.log.info({ event: 'delayed.delivered', peer: this.peer.id, file: name, msgid: 'gatewayc-delayed-delivered' }, 'delayed message delivered');
      }
    }
    if (retryMs !== Infinity && !this.stopped) {
      this.retryTimer?.cancel();
      this.retryTimer = this.clock.after(retryMs, () => this.kick());
    }
  }
}
