// The places of a pool (size + overflow) and the FIFO queue of callers waiting for one.
//
// Every caller waits until the same offset from its arrival, so the queue, in arrival order, is
// also in deadline order: one timer, for the head's deadline, serves them all. A caller that
// leaves early (aborted) is marked and skipped, not searched for.
import type { AbortSignalLike } from './options.js';

interface Waiter {
  resolve(value: unknown): void;
  reject(err: Error): void;
  /** Runs as the place is handed over; the wait settles with what it returns (or throws). */
  onPlace(): unknown;
  deadline: number;
  done: boolean;
  signal?: AbortSignalLike;
  onAbort?: () => void;
}

export interface QueueOptions {
  capacity: number;
  queueMax: number;
  now: () => number;
  timedOut(): Error;
  full(): Error;
  aborted(reason: unknown): Error;
  /** After every change of `active` or `waiting`. */
  onChange(): void;
}

export class PlaceQueue {
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

  constructor (private readonly options: QueueOptions) {}

  /** True when a caller would get a place at once. */
  get free (): boolean {
    return this.active < this.options.capacity && this.waiting === 0;
  }

  /** Takes a place now; only when `free`. */
  take (): void {
    this.active++;
    this.options.onChange();
  }

  /**
   * Waits for a place until `deadline` (on the queue's clock); rejects on timeout, a full queue or
   * abort. `onPlace` runs the moment the place is handed over, inside `leave()`, and the wait
   * settles with its result: one promise per wait, no extra turn before the caller has it.
   */
  wait<T>(deadline: number, signal: AbortSignalLike | undefined, onPlace: () => T | Promise<T>): Promise<T> {
    if (this.waiting >= this.options.queueMax) return Promise.reject(this.options.full());
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: resolve as (value: unknown) => void,
        reject,
        onPlace,
        deadline,
        done: false,
      };
      if (signal) {
        waiter.signal = signal;
        waiter.onAbort = () => this.settle(waiter, this.options.aborted(signal.reason));
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      this.waiting++;
      this.arm();
      this.options.onChange();
    });
  }

  /** Gives a place back: straight to the longest waiter, if any, so that no newcomer overtakes it. */
  leave (): void {
    const next = this.nextWaiter();
    if (next) this.settle(next);
    else {
      this.active--;
      this.options.onChange();
    }
  }

  /** Rejects every waiter (the pool is ending). */
  rejectAll (err: () => Error): void {
    while (this.head < this.queue.length) {
      const w = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      if (!w.done) this.settle(w, err());
    }
    this.compact();
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

  /** Ends a wait: with a place (no error; it passes from the leaver, `active` unchanged), or with an error. */
  private settle (waiter: Waiter, err?: Error): void {
    if (waiter.done) return;
    waiter.done = true;
    this.waiting--;
    if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort);
    if (this.waiting === 0) this.disarm();
    this.options.onChange();
    if (err) return waiter.reject(err);
    let value: unknown;
    try {
      value = waiter.onPlace();
    } catch (thrown) {
      return waiter.reject(thrown as Error);
    }
    waiter.resolve(value);
  }

  /** One timer, for the earliest deadline still waiting: the head's. */
  private arm (): void {
    let i = this.head;
    while (i < this.queue.length && this.queue[i]!.done) i++;
    const first = this.queue[i];
    if (!first) return this.disarm();
    if (first.deadline === Infinity) return;
    if (this.timer && this.timerAt <= first.deadline) return;
    clearTimeout(this.timer);
    this.timerAt = first.deadline;
    this.timer = setTimeout(() => this.expire(), Math.max(0, first.deadline - this.options.now()));
    this.timer.unref?.();
  }

  private disarm (): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private expire (): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.options.now();
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
