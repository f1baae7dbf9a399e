// A FIFO gate with a fixed number of places, in front of a connection pool: who may take a
// connection now, who waits (in order, for at most a timeout), who is turned away at once.
//
// Every waiter waits at most the same time, so the queue, in arrival order, is also in deadline
// order: one timer, for the head of the queue, serves them all. A waiter that leaves early (its
// client went away) is marked and skipped, not searched for.
import { ClientGoneError } from './errors.ts';
import type { Abortable } from './abort.ts';

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  /** performance.now() by which it gets a place or an error. */
  deadline: number;
  done: boolean;
  signal?: Abortable;
  onAbort?: () => void;
}

export interface GateOptions {
  /** Places: callers that may hold one at once. */
  capacity: number;
  /** How long a caller may wait for a place. */
  timeoutMs: number;
  /** Callers that may wait; beyond it, an immediate refusal. */
  queueMax?: number;
  /** The error for a caller that waited `timeoutMs`. */
  timedOut(): Error;
  /** The error for a caller refused because `queueMax` wait already. */
  full(): Error;
  /** Called after every change of `active` or `waiting`. */
  onChange?(): void;
}

export class Gate {
  /** Places taken. */
  active = 0;
  /** Callers waiting for a place. */
  waiting = 0;
  // Slots before `head` are emptied as the head passes them, so that a served waiter (and what
  // its promise reaches) is not kept until the next compaction.
  private queue: (Waiter | undefined)[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  constructor (private readonly options: GateOptions) {}

  /** Resolves when the caller has a place (give it back with leave()); rejects on timeout, a full queue or abort. */
  enter (signal?: Abortable): Promise<void> {
    if (signal?.aborted) return Promise.reject(new ClientGoneError());
    if (this.active < this.options.capacity && this.waiting === 0) {
      this.active++;
      this.options.onChange?.();
      return Promise.resolve();
    }
    if (this.waiting >= (this.options.queueMax ?? Infinity)) return Promise.reject(this.options.full());
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, deadline: performance.now() + this.options.timeoutMs, done: false };
      if (signal) {
        waiter.signal = signal;
        waiter.onAbort = () => this.settle(waiter, new ClientGoneError());
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      this.waiting++;
      this.arm();
      this.options.onChange?.();
    });
  }

  /** Gives a place back: straight to the longest waiter, if any, so no newcomer overtakes it. */
  leave (): void {
    const next = this.nextWaiter();
    if (next) this.settle(next);
    else {
      this.active--;
      this.options.onChange?.();
    }
  }

  private nextWaiter (): Waiter | undefined {
    while (this.head < this.queue.length) {
      const w = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      if (!w.done) {
        this.compact();
        return w;
      }
    }
    this.compact();
    return undefined;
  }

  /** Ends a wait: with a place (no error), or with an error. */
  private settle (waiter: Waiter, err?: Error): void {
    if (waiter.done) return;
    waiter.done = true;
    this.waiting--;
    if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort);
    if (err) waiter.reject(err);
    else waiter.resolve(); // the place passes from the leaver to this waiter: `active` is unchanged
    if (this.waiting === 0) this.disarm();
    this.options.onChange?.();
  }

  /** One timer, for the earliest deadline still waiting: the head's. */
  private arm (): void {
    let i = this.head;
    while (i < this.queue.length && this.queue[i]!.done) i++;
    const first = this.queue[i];
    if (!first) return this.disarm();
    if (this.timer && this.timerAt <= first.deadline) return;
    clearTimeout(this.timer);
    this.timerAt = first.deadline;
    this.timer = setTimeout(() => this.expire(), Math.max(0, first.deadline - performance.now()));
  }

  private disarm (): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private expire (): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    while (this.head < this.queue.length) {
      const w = this.queue[this.head]!;
      if (!w.done && w.deadline > now) break;
      this.queue[this.head++] = undefined;
      if (!w.done) this.settle(w, this.options.timedOut());
    }
    this.compact();
    this.arm();
  }

  /** Drops the settled waiters at the front once they are many. */
  private compact (): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
