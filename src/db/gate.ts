// A FIFO gate with a fixed number of places, in front of a connection pool: who may take a
// connection now, who waits (in order, for at most a timeout), who is turned away at once.
import { ClientGoneError } from './errors.ts';

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** A FIFO gate with `capacity` places; a place is handed straight to the next waiter. */
export class Gate {
  active = 0;
  // A Set keeps insertion order (FIFO) and removes a timed-out waiter in O(1).
  private readonly waiters = new Set<Waiter>();

  constructor(
    private readonly capacity: number,
    private readonly queueMax = Infinity,
    private readonly onChange: () => void = () => {},
  ) {}

  get waiting(): number {
    return this.waiters.size;
  }

  enter(timeoutMs: number, onTimeout: () => Error, onFull: () => Error, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new ClientGoneError());
    if (this.active < this.capacity && this.waiters.size === 0) {
      this.active++;
      this.onChange();
      return Promise.resolve();
    }
    if (this.waiters.size >= this.queueMax) return Promise.reject(onFull());
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        timer: setTimeout(() => this.drop(waiter, onTimeout()), timeoutMs),
      };
      if (signal) {
        waiter.onAbort = () => this.drop(waiter, new ClientGoneError());
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.add(waiter);
      this.onChange();
    });
  }

  leave(): void {
    const next = this.waiters.values().next();
    if (next.done) {
      this.active--;
    } else {
      this.forget(next.value);
      next.value.resolve();
    }
    this.onChange();
  }

  private drop(waiter: Waiter, err: Error): void {
    if (!this.waiters.has(waiter)) return;
    this.forget(waiter);
    waiter.reject(err);
    this.onChange();
  }

  private forget(waiter: Waiter): void {
    this.waiters.delete(waiter);
    clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
  }
}

