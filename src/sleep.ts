// The two ways to wait in the app runtime.
import { setTimeout as delay } from 'node:timers/promises';
import type { Mode } from './config.ts';

const cell = new Int32Array(new SharedArrayBuffer(4));

/** Stalls the whole event loop, like time.sleep in a gunicorn sync worker. */
export function blockingSleep(seconds: number): void {
  Atomics.wait(cell, 0, 0, seconds * 1000);
}

/** Yields to the event loop: other requests run meanwhile. */
export function nonblockingSleep(seconds: number): Promise<void> {
  return delay(seconds * 1000);
}

export function appSleep(mode: Mode): (seconds: number) => Promise<void> {
  return mode === 'blocking' ? async (s) => blockingSleep(s) : nonblockingSleep;
}
