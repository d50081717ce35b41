import type { Clock, Timer } from '../util/clock';

/**
 * One question at a time on a line stream (lond serves a connection strictly request by
 * request): write a line, wait for exactly one line back within a deadline. A line that
 * arrives while nobody asked is a protocol violation, reported through `onFault`, as is
 * a deadline that passes; after either, the owner closes the stream.
 */
export interface DialogueOptions {
  write(line: Buffer): void;
  clock: Clock;
  onFault(err: Error): void;
}

type Done = (err: Error | undefined, answer: Buffer) => void;

const NO_LINE = Buffer.alloc(0);

export class LineDialogue {
  private waiter: { done: Done; timer: Timer } | undefined;
  private closedWith: Error | undefined;

  constructor(private readonly opts: DialogueOptions) {}

  get waiting(): boolean {
    return this.waiter !== undefined;
  }

  /** Sends `line` (without its '\n') and calls `done` once: the answer, or why there is none. */
  ask(line: Buffer, timeoutMs: number, what: string, done: Done): void {
    if (this.closedWith) {
      done(this.closedWith, NO_LINE);
      return;
    }
    if (this.waiter) {
      done(new Error(`${what}: a question is already waiting for its answer`), NO_LINE);
      return;
    }
    const timer = this.opts.clock.after(timeoutMs, () => this.opts.onFault(new Error(`no answer to the ${what} within ${timeoutMs / 1000} s`)));
    this.waiter = { done, timer };
    this.opts.write(line);
  }

  askAsync(line: Buffer, timeoutMs: number, what: string): Promise<Buffer> {
    return new Promise((resolve, reject) => this.ask(line, timeoutMs, what, (err, answer) => (err ? reject(err) : resolve(answer))));
  }

  /** A complete line from the stream (its '\n' and a trailing '\r' removed). */
  receive(line: Buffer): void {
    const w = this.waiter;
    if (!w) {
      this.opts.onFault(new Error('peer sent a line nobody asked for'));
      return;
    }
    this.waiter = undefined;
    w.timer.cancel();
    w.done(undefined, line);
  }

  /** The stream is gone: a waiting question fails with `err`, later ones at once. */
  close(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    const w = this.waiter;
    this.waiter = undefined;
    if (w) {
      w.timer.cancel();
      w.done(err, NO_LINE);
    }
  }
}
