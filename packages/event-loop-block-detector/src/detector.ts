// The thread's side of the detector: a heartbeat in shared memory, the watcher thread that reads
// it, the function the watcher has the stalled thread run to give its stack, and the policy applied
// to each block the watcher reports (ignore, rate limit, pause) before it reaches the application.
import { channel } from 'node:diagnostics_channel';
import { isMainThread, Worker } from 'node:worker_threads';
import type { Block, Frame } from './block.js';
import type { RawFrame } from './frames.js';
import { currentRequest } from './request.js';
import type { WatcherInit, WatcherMessage } from './watcher.js';

/** Options of {@link startBlockDetector}. */
export interface BlockDetectorOptions {
  /** A stall longer than this, in ms, is a block. Default 100. */
  thresholdMs?: number;
  /**
   * How often the thread writes its heartbeat, in ms: a block's duration is known to within it. Default 20
   * (50 timer callbacks a second on the watched thread, its whole cost while nothing blocks).
   */
  heartbeatMs?: number;
  /** The application's root: frames in files under it, outside node_modules, are its own. Default `process.cwd()`. */
  root?: string;
  /** Frames kept of each stack, innermost first. Default 8. */
  maxFrames?: number;
  /**
   * Called on the stalled thread when its stack is taken, inside the stall: what it returns (made
   * JSON) is the block's `context`. Keep it small and quick. Default: the request an adapter
   * (`trackRequests`, `requestTracker`, the Fastify plugin) says is being served.
   */
  context?: () => unknown;
  /** Called with each block, on the watched thread, once the loop answers again. */
  onBlock?: (block: Block) => void;
  /** Added to every block (the service, the release, the region...). */
  tags?: Record<string, string>;
  /** At most this many blocks are reported in any minute; the rest are counted (`stats().suppressed`). Default 60. */
  maxPerMinute?: number;
  /**
   * Known blocks not to report: a block any of whose frames (`fn (file:line)`) contains the string,
   * or matches the expression, is counted (`stats().ignored`) and dropped.
   */
  ignore?: (string | RegExp)[];
}

/** What the detector saw since it started. */
export interface BlockDetectorStats {
  /** Blocks reported to `onBlock` and the channel. */
  reported: number;
  /** Blocks past `maxPerMinute`, not reported. */
  suppressed: number;
  /** Blocks matching `ignore`. */
  ignored: number;
  /** Stalls seen while paused (`pause()`, `ignoring()`): their stack is not taken. */
  paused: number;
}

/** A running detector. */
export interface BlockDetector {
  readonly thresholdMs: number;
  /**
   * Stops reporting until `resume()`: a stall that is seen while paused is counted, its stack not taken.
   * Calls nest.
   */
  pause(): void;
  resume(): void;
  /** Runs `fn`, synchronous work known to block, with the detector paused. */
  ignoring<T>(fn: () => T): T;
  stats(): BlockDetectorStats;
  /** Stops the heartbeat and the watcher thread. */
  stop(): Promise<void>;
}

/** The `node:diagnostics_channel` each block is published on, as {@link Block}. */
export const BLOCK_CHANNEL = 'event-loop-block-detector:block';

/** The watcher thread's name on Linux (`top -H`, `ps -L`): at most 15 characters. */
export const WATCHER_THREAD_NAME = 'block-detector';

/** The function the watcher has the stalled thread call, under this global name. */
const SAMPLER = Symbol.for('event-loop-block-detector.sample');

const blocks = channel(BLOCK_CHANNEL);
let running = false;

/** A blocked thread's own answer: its frames, and the application's context. */
export type Sample = [frames: RawFrame[], context: unknown];

function check (name: string, value: number | undefined, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) {
    throw new RangeError(`event-loop-block-detector: ${name} must be a number >= ${min}, got ${String(value)}`);
  }
  return value;
}

/**
 * Starts watching this thread's event loop (the main thread's: the watcher reaches it through the
 * in-process inspector). One detector per process; under `node:cluster`, one per worker, each its own.
 * Resolves once the watcher thread runs.
 */
export async function startBlockDetector (options: BlockDetectorOptions = {}): Promise<BlockDetector> {
  if (!isMainThread) throw new Error('event-loop-block-detector watches the main thread: start it there');
  if (running) throw new Error('event-loop-block-detector is running already: one detector per process');
  const thresholdMs = check('thresholdMs', options.thresholdMs, 1, 100);
  const heartbeatMs = check('heartbeatMs', options.heartbeatMs, 1, 20);
  const maxFrames = check('maxFrames', options.maxFrames, 1, 8);
  const maxPerMinute = check('maxPerMinute', options.maxPerMinute, 0, 60);
  const context = options.context ?? currentRequest;
  const ignore = options.ignore ?? [];
  const tags = { ...options.tags };
  const beat = new Float64Array(new SharedArrayBuffer(8));
  const pausedFlag = new Int32Array(new SharedArrayBuffer(4));
  const stopFlag = new Int32Array(new SharedArrayBuffer(4));
  const stats: BlockDetectorStats = { reported: 0, suppressed: 0, ignored: 0, paused: 0 };
  /** When the blocks of the last minute were reported: a sliding window. */
  const recent: number[] = [];
  const now = () => performance.timeOrigin + performance.now();

  // Runs inside the stall, by the inspector's interrupt. Error.prepareStackTrace is swapped for
  // the moment (and put back, whatever happens), so that neither the application's own nor Node's
  // source-map handling runs on the stalled thread: the watcher maps the frames.
  const sample = (): Sample => {
    const prepare = Error.prepareStackTrace;
    const limit = Error.stackTraceLimit;
    const holder: { stack?: RawFrame[] } = {};
    let stack: RawFrame[] | undefined;
    try {
      Error.stackTraceLimit = maxFrames + 4;
      Error.prepareStackTrace = (_, sites) =>
        sites
          .filter((s) => s.getFileName())
          .map((s): RawFrame => [
            s.getFunctionName(),
            s.getFileName()!,
            s.getLineNumber() ?? 0,
            s.getColumnNumber() ?? 0,
          ]);
      Error.captureStackTrace(holder, sample);
      // Read here: V8 formats the stack when it is first read, with the prepareStackTrace of that moment.
      stack = holder.stack;
    } finally {
      Error.prepareStackTrace = prepare;
      Error.stackTraceLimit = limit;
    }
    let ctx: unknown;
    try {
      const value = context();
      ctx = value === undefined ? undefined : JSON.parse(JSON.stringify(value));
    } catch {
      ctx = undefined;
    }
    return [(stack ?? []).slice(0, maxFrames), ctx];
  };

  const deliver = (block: Block) => {
    const text = (f: Frame) => `${f.fn} (${f.file}:${f.line})`;
    if (ignore.some((p) => block.frames.some((f) => (typeof p === 'string' ? text(f).includes(p) : p.test(text(f)))))) {
      stats.ignored++;
      return;
    }
    const t = now();
    while (recent.length > 0 && recent[0]! <= t - 60_000) recent.shift();
    if (recent.length >= maxPerMinute) {
      stats.suppressed++;
      return;
    }
    recent.push(t);
    stats.reported++;
    try {
      options.onBlock?.(block);
    } finally {
      if (blocks.hasSubscribers) blocks.publish(block);
    }
  };

  // The built watcher beside this file: the package runs from its build (its tests too).
  const file = new URL('./watcher.js', import.meta.url);
  const workerData: WatcherInit = {
    thresholdMs,
    heartbeatMs,
    root: options.root ?? process.cwd(),
    beat: beat.buffer as SharedArrayBuffer,
    paused: pausedFlag.buffer as SharedArrayBuffer,
    stop: stopFlag.buffer as SharedArrayBuffer,
    sampler: SAMPLER.description!,
    pid: process.pid,
    tags,
  };
  (globalThis as Record<symbol, unknown>)[SAMPLER] = sample;
  running = true;
  beat[0] = now();
  const heartbeat = setInterval(() => {
    beat[0] = now();
  }, heartbeatMs);
  heartbeat.unref();
  const worker = new Worker(file, { workerData });
  worker.unref();
  const stopAll = async () => {
    clearInterval(heartbeat);
    // Wakes the watcher from its sleep; terminate() ends it either way.
    Atomics.store(stopFlag, 0, 1);
    Atomics.notify(stopFlag, 0);
    delete (globalThis as Record<symbol, unknown>)[SAMPLER];
    running = false;
    await worker.terminate();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the watcher thread exited (code ${code}) before it ran`)));
      worker.once('message', () => resolve());
    });
  } catch (err) {
    await stopAll();
    throw err;
  }
  worker.on('message', (msg: WatcherMessage) => {
    if (msg.type === 'paused') stats.paused++;
    else if (msg.type === 'block') deliver(msg.block);
  });
  let depth = 0;
  const pause = () => {
    depth++;
    Atomics.store(pausedFlag, 0, 1);
  };
  const resume = () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) Atomics.store(pausedFlag, 0, 0);
  };
  let stopped: Promise<void> | undefined;
  return {
    thresholdMs,
    pause,
    resume,
    ignoring (fn) {
      pause();
      try {
        return fn();
      } finally {
        resume();
      }
    },
    stats: () => ({ ...stats }),
    stop: () => (stopped ??= stopAll()),
  };
}
