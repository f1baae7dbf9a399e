// The third remedy, besides blocking and offloading: the same work on the event loop, cut into
// slices that give the loop back between them, so that other requests are served in the gaps. It
// costs no thread, but each slice waits its turn behind everything else the loop has to do, so the
// work itself finishes later than in one piece.
import { scheduler, setImmediate as nextTurn } from 'node:timers/promises';
import { spinFor } from './stalls.ts';

/** One turn of the loop: scheduler.yield where Node has it (a check-phase task), setImmediate otherwise. */
const yieldToLoop: () => Promise<unknown> =
  typeof (scheduler as { yield?: unknown } | undefined)?.yield === 'function'
    ? () => scheduler.yield()
    : () => nextTurn();

/** spinFor's `ms` of computing, in slices of `sliceMs`, yielding between them. Returns the turns and the slices. */
export async function spinInSlices (ms: number, sliceMs: number): Promise<{ turns: number; slices: number }> {
  let turns = 0;
  let slices = 0;
  for (let left = ms; left > 0; left -= sliceMs) {
    turns += spinFor(Math.min(sliceMs, left));
    slices++;
    await yieldToLoop();
  }
  return { turns, slices };
}
