// The unit tests' tools: node:test's mocked timers and clock, a pool over the fake client, and
// the outcome of a checkout read without awaiting it.
import { afterEach, beforeEach, mock } from 'node:test';
import { Pool, type Lease, type PoolOptions } from '../../src/index.ts';
import { fakeClientClass, type Behaviour, type FakeClient } from '../fake-client.ts';

/** Mocked setTimeout and Date, from 0, for every test of the file. */
export function useMockTimers (): void {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
  afterEach(() => mock.timers.reset());
}

/** Lets promise continuations run (the mocked timers fire synchronously, their callbacks' awaits do not). */
export async function flush (): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
  // Callbacks the pool calls on the next tick (pg-pool's callback style) run once the microtasks are drained.
  await new Promise((resolve) => process.nextTick(resolve));
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

/**
 * Advances the mocked clock by `ms`, `step` ms at a time (1 by default), so that work scheduled on the way runs at its
 * time.
 */
export async function advance (ms: number, step = 1): Promise<void> {
  await flush();
  for (let i = 0; i < ms; i += step) {
    mock.timers.tick(Math.min(step, ms - i));
    await flush();
  }
}

export const now = () => Date.now();

/** What the pool's CancelRequests do: answered at once (the default), or never (the server cannot be reached). */
export type CancelAnswer = 'answered' | 'unanswered';

export function makePool (
  options: PoolOptions = {},
  behaviour: Partial<Behaviour> = {},
  cancelAnswer: CancelAnswer = 'answered'
) {
  const { Client, made } = fakeClientClass(behaviour);
  const cancels: FakeClient[] = [];
  const pool = new Pool<FakeClient>({ clock: now, ...options }, Client);
  // Cancels go nowhere in a unit test: record them; the "server" closes their socket at once, or
  // never (then the sender gives up after checkTimeout, as sendCancel does).
  pool.cancel = (client: FakeClient) => {
    cancels.push(client);
    (pool as unknown as { counters: { cancels: number } }).counters.cancels++;
    if (cancelAnswer === 'answered') return Promise.resolve(true);
    return new Promise((resolve) => setTimeout(() => resolve(false), pool.checkTimeout));
  };
  return { pool, made, cancels };
}

/** Settles to 'ok' with the lease, or to the error's code. */
export function outcome (p: Promise<Lease<FakeClient>>) {
  const o: { value?: Lease<FakeClient>; code?: string; at?: number } = {};
  p.then(
    (v) => {
      o.value = v;
      o.at = now();
    },
    (err: { code?: string; message?: string }) => {
      o.code = err.code ?? err.message;
      o.at = now();
    }
  );
  return o;
}

/** Settles to the value, or to the error's code, and when. */
export function settled<T> (p: Promise<T>) {
  const o: { value?: T; code?: string; message?: string; at?: number; done: boolean } = { done: false };
  p.then(
    (v) => {
      o.value = v;
      o.at = now();
      o.done = true;
    },
    (err: { code?: string; message?: string }) => {
      o.code = err.code;
      o.message = err.message;
      o.at = now();
      o.done = true;
    }
  );
  return o;
}
