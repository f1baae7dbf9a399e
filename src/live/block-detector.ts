// Names what blocks the event loop, live, from the monitor thread. The main loop writes a
// heartbeat into shared memory every few milliseconds; when it stops for longer than the
// threshold, this thread connects an in-process inspector session to the main thread and asks
// it to evaluate one expression. The inspector serves that by an interrupt, so it runs on the
// stalled thread itself (in JavaScript, between native calls, or waiting in Atomics.wait), and
// Error.captureStackTrace there sees the frames it interrupted. The block is recorded when the
// heartbeat comes back: when it began, how long it lasted, the frames mapped to the TypeScript
// source, and the route whose handler was running when the stall was seen.
//
// No debugger is involved. Debugger.enable replays every loaded script to the session (about
// 1,700 here), which held the stalled thread 50-200 ms more, so that a stack often came after
// a 200 ms block had ended; and V8 runs every promise through the debugger's hooks while it is
// on, and an await-heavy loop stayed about 4 % slower for the process's life after it had been
// on once. An evaluation takes about a millisecond and leaves nothing behind. The session
// exists only during a stall: while nothing blocks, only this thread's timer runs. No port is
// opened: the session is this process's own.
import { Session } from 'node:inspector';
import { now } from '../clock.ts';
import { SourceFrames, type Frame, type RawFrame } from './frames.ts';

export type BlockFrame = Frame;

export interface Block {
  /** When the loop last answered before the stall (epoch ms). */
  at: number;
  /** How long it stalled, in ms: known once the loop answers again. */
  ms: number;
  /** How long after the stall began the stack was taken. */
  sampledAfterMs: number;
  /** The main thread's stack, innermost first (at most 8 frames); empty if it could not be taken in time. */
  frames: BlockFrame[];
  /** The innermost frame of our own code: the function to fix. */
  culprit: BlockFrame | undefined;
  /** The route whose handler was running (its synchronous part), or null outside any handler. */
  route: string | null;
}

export interface DetectorOptions {
  thresholdMs: number;
  heartbeatMs: number;
  /** The main loop's last heartbeat (epoch ms). */
  lastBeat: () => number;
  /** The route being handled right now, if any. */
  route: () => string | null;
  /** The project's root: frames under it (outside node_modules) are ours. */
  root: string;
  onBlock: (block: Block) => void;
}

const MAX_FRAMES = 8;

/**
 * Evaluated on the main thread, inside the interrupt that serves it: the frames beneath it, as
 * data. Error.prepareStackTrace is swapped for the moment (and put back, whatever happens), so
 * that neither the service's own nor Node's source-map handling runs on the stalled thread.
 * The evaluation's own frames have no file and are left out.
 */
const STACK_EXPRESSION = `(() => {
  const prepare = Error.prepareStackTrace, limit = Error.stackTraceLimit, holder = {};
  try {
    Error.stackTraceLimit = ${MAX_FRAMES + 4};
    Error.prepareStackTrace = (_, sites) => sites
      .filter((s) => s.getFileName())
      .map((s) => [s.getFunctionName(), s.getFileName(), s.getLineNumber() ?? 0, s.getColumnNumber() ?? 0]);
    Error.captureStackTrace(holder);
    return holder.stack;
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
})()`;

export class BlockDetector {
  private readonly frames: SourceFrames;
  /** The session taking a stack now, if any: one at a time, and none while nothing blocks. */
  private session: Session | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The heartbeat a stall was seen after, so that one stall is sampled once. */
  private stalledAfter = 0;
  private current: Omit<Block, 'ms'> | undefined;

  constructor (private readonly options: DetectorOptions) {
    this.frames = new SourceFrames(options.root);
  }

  start (): void {
    this.schedule();
  }

  stop (): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.session?.disconnect();
    this.session = undefined;
  }

  /**
   * The next look is due when the last heartbeat, if no other follows, becomes a stall past the
   * threshold: while the loop beats, one wakeup of this thread per threshold (about 9 a second
   * at 100 ms), and a stall is seen the moment it counts as one. During a stall, and before the
   * first beat, it looks every heartbeat, to see the loop answer again.
   */
  private schedule (): void {
    if (this.stopped) return;
    const beat = this.options.lastBeat();
    const due =
      this.current || beat === 0
        ? this.options.heartbeatMs
        : beat + this.options.heartbeatMs + this.options.thresholdMs - now() + 1;
    this.timer = setTimeout(
      () => {
        this.check();
        this.schedule();
      },
      Math.max(1, due)
    );
  }

  private check (): void {
    const beat = this.options.lastBeat();
    if (beat === 0) return;
    const stalledMs = now() - beat - this.options.heartbeatMs;
    if (this.current && beat !== this.stalledAfter) {
      // The loop answered: the block is over.
      const block = {
        ...this.current,
        ms: Math.max(this.options.thresholdMs, beat - this.stalledAfter - this.options.heartbeatMs),
      };
      this.current = undefined;
      this.options.onBlock(block);
    }
    if (!this.current && stalledMs > this.options.thresholdMs && beat !== this.stalledAfter) {
      this.stalledAfter = beat;
      const block: Omit<Block, 'ms'> = {
        at: beat,
        sampledAfterMs: 0,
        frames: [],
        culprit: undefined,
        route: this.options.route(),
      };
      this.current = block;
      if (!this.session) this.sample();
    }
  }

  /**
   * Connects a session to the main thread, has it evaluate STACK_EXPRESSION, and lets go.
   * A callback, not await: the session's answer comes on this thread's loop.
   */
  private sample (): void {
    const session = new Session();
    this.session = session;
    session.connectToMainThread();
    session.post(
      'Runtime.evaluate',
      { expression: STACK_EXPRESSION, returnByValue: true, silent: true },
      (err, answer) => {
        session.disconnect();
        if (this.session === session) this.session = undefined;
        const raw = answer?.result?.value as RawFrame[] | undefined;
        // The frames belong to the block stalled now, which need not be the one that asked for
        // them: when blocks come back to back (requests of 200 ms each, served in one turn of the
        // loop) the stack can come in the next one. If the heartbeat moved since that block
        // began, the loop had let go: the frames are of whatever ran next, and are dropped.
        const block = this.current;
        if (
          err ||
          !Array.isArray(raw) ||
          !block ||
          block.frames.length > 0 ||
          this.options.lastBeat() !== this.stalledAfter
        ) {
          return;
        }
        block.frames = raw.slice(0, MAX_FRAMES).map((f) => this.frames.frameOf(f));
        block.culprit = block.frames.find((f) => this.frames.ours(f));
        block.sampledAfterMs = now() - block.at;
      }
    );
  }
}
