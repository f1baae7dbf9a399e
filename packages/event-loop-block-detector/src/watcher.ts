// The watcher thread. The watched thread writes a heartbeat into shared memory every few
// milliseconds; when it stops for longer than the threshold, this thread connects an in-process
// inspector session to it and has it evaluate one call. The inspector serves that by an interrupt,
// so the call runs on the stalled thread itself (in JavaScript, between native calls, or waiting in
// Atomics.wait), and the stack it captures there holds the frames it interrupted. The block is
// reported when the heartbeat comes back: when it began, how long it lasted, the frames mapped to
// the source, the application's context, and the share of it the stalled thread spent on a CPU.
//
// No debugger is involved. Debugger.enable replays every loaded script to the session (thousands
// in a large service), which held the stalled thread 50-200 ms more; and V8 runs every promise
// through the debugger's hooks while it is on, which left an await-heavy loop about 4 % slower for
// the process's life. An evaluation takes about a millisecond and leaves nothing behind. The
// session exists only during a stall: while nothing blocks, only this thread's timer runs. No port
// is opened: the session is the process's own.
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { parentPort, workerData } from 'node:worker_threads';
import type { Block } from './block.js';
import { SourceFrames, type RawFrame } from './frames.js';

export interface WatcherInit {
  thresholdMs: number;
  heartbeatMs: number;
  root: string;
  /** [0]: the watched thread's last heartbeat, epoch ms. */
  beat: SharedArrayBuffer;
  /** [0]: 1 while the application paused the detector. */
  paused: SharedArrayBuffer;
  /** [0]: 1 once the detector stops. */
  stop: SharedArrayBuffer;
  /** The Symbol.for() key of the sampling function on the watched thread. */
  sampler: string;
  pid: number;
  tags: Record<string, string>;
}

export type WatcherMessage = { type: 'ready' } | { type: 'block'; block: Block } | { type: 'paused' };

// Named where Linux lets a thread name itself, so that `top -H` and `ps -L` show what it costs.
try {
  writeFileSync('/proc/thread-self/comm', 'block-detector');
} catch {
  /* not Linux: the thread keeps its name */
}

const init = workerData as WatcherInit;
const beat = new Float64Array(init.beat);
const paused = new Int32Array(init.paused);
/** [0]: set to 1 (and notified) when the detector stops. */
const stop = new Int32Array(init.stop);
const frames = new SourceFrames(init.root);
/** This package's own files (the adapters' wrappers): left out of the stacks it reports. */
const OWN = new URL('.', import.meta.url).href;
const now = () => performance.timeOrigin + performance.now();
const lastBeat = () => beat[0]!;
const EXPRESSION = `globalThis[Symbol.for(${JSON.stringify(init.sampler)})]()`;
/**
 * The watched (main) thread's time on a CPU and its time ready to run but waiting for one, in ms,
 * from the scheduler's own counts (nanoseconds); undefined where there is no such file.
 */
const SCHEDSTAT = `/proc/${init.pid}/task/${init.pid}/schedstat`;

function cpuMs (): [onCpu: number, runnable: number] | undefined {
  try {
    const [onCpu, runnable] = readFileSync(SCHEDSTAT, 'utf8').split(' ', 2).map((n) => Number(n) / 1e6);
    return [onCpu!, runnable!];
  } catch {
    return undefined;
  }
}

const share = (part: number, whole: number) => Math.round(Math.min(1, Math.max(0, part / whole)) * 100) / 100;

interface Stall {
  block: Omit<Block, 'ms' | 'cpuShare' | 'runnableShare'>;
  /** The watched thread's CPU times and the clock when the stall was seen. */
  cpuAt: [onCpu: number, runnable: number] | undefined;
  seenAt: number;
}

/** The heartbeat a stall was seen after, so that one stall is looked at once. */
let stalledAfter = 0;
let current: Stall | undefined;
/** The session taking a stack now, if any: one at a time, and none while nothing blocks. */
let session: Session | undefined;

/**
 * While the loop beats, this thread sleeps in the kernel (Atomics.wait) until the last heartbeat,
 * if no other follows, becomes a stall past the threshold: one wakeup per threshold, and a stall is
 * seen the moment it counts as one. A sleep in Atomics.wait costs about a quarter of a timer's here
 * (0.9 ms of CPU a second against 3.2, and no work for V8's helper threads), which is most of what
 * the detector costs while nothing blocks. During a stall the thread's own event loop runs (the
 * inspector's answer comes there), looking every heartbeat until the loop answers again.
 */
function watch (): void {
  for (;;) {
    const seen = lastBeat() === stalledAfter;
    const due = seen ? init.heartbeatMs : lastBeat() + init.heartbeatMs + init.thresholdMs - now() + 1;
    if (due > 0 && Atomics.wait(stop, 0, 0, due) !== 'timed-out') return;
    look();
    if (current) break;
  }
  const during = () => {
    look();
    if (current) setTimeout(during, init.heartbeatMs);
    else setImmediate(watch);
  };
  setTimeout(during, init.heartbeatMs);
}

function look (): void {
  const beatAt = lastBeat();
  if (current && beatAt !== stalledAfter) {
    // The loop answered: the block is over.
    const { block, cpuAt, seenAt } = current;
    current = undefined;
    const cpuEnd = cpuAt === undefined ? undefined : cpuMs();
    // The stall's part seen, up to the first beat after it: not up to this look, which can come a
    // heartbeat later, when the thread is idle again (a short stall would read as part wait).
    const seen = beatAt - seenAt;
    const wall = seen >= 10 ? seen : now() - seenAt;
    const measured = cpuAt !== undefined && cpuEnd !== undefined && wall > 0;
    const cpuShare = measured ? share(cpuEnd[0] - cpuAt[0], wall) : undefined;
    const runnableShare = measured ? share(cpuEnd[1] - cpuAt[1], wall) : undefined;
    const ms = Math.round(Math.max(init.thresholdMs, beatAt - stalledAfter - init.heartbeatMs));
    parentPort!.postMessage({
      type: 'block',
      block: { ...block, ms, cpuShare, runnableShare },
    } satisfies WatcherMessage);
  }
  const stalledMs = now() - beatAt - init.heartbeatMs;
  if (!current && stalledMs > init.thresholdMs && beatAt !== stalledAfter) {
    stalledAfter = beatAt;
    if (Atomics.load(paused, 0) === 1) {
      parentPort!.postMessage({ type: 'paused' } satisfies WatcherMessage);
      return;
    }
    current = {
      block: {
        at: beatAt,
        sampledAfterMs: 0,
        frames: [],
        culprit: undefined,
        context: undefined,
        pid: init.pid,
        tags: init.tags,
      },
      cpuAt: cpuMs(),
      seenAt: now(),
    };
    if (!session) sample();
  }
}

/**
 * Connects a session to the watched thread, has it call the sampler, and lets go. A callback, not
 * await: the session's answer comes on this thread's loop.
 */
function sample (): void {
  const own = new Session();
  session = own;
  own.connectToMainThread();
  own.post('Runtime.evaluate', { expression: EXPRESSION, returnByValue: true, silent: true }, (err, answer) => {
    own.disconnect();
    if (session === own) session = undefined;
    const value = answer?.result?.value as [RawFrame[], unknown] | undefined;
    // The frames belong to the stall under way now, which need not be the one that asked for
    // them: when blocks come back to back the stack can come in the next one. If the heartbeat
    // moved since this stall began, the loop had let go: the frames are of whatever ran next.
    const block = current?.block;
    if (err || !Array.isArray(value?.[0]) || !block || block.frames.length > 0 || lastBeat() !== stalledAfter) {
      return;
    }
    block.frames = value[0].filter(([, file]) => !file.startsWith(OWN)).map((f) => frames.frameOf(f));
    block.culprit = block.frames.find((f) => frames.ours(f));
    block.context = value[1] ?? undefined;
    block.sampledAfterMs = Math.round(now() - block.at);
  });
}

parentPort!.postMessage({ type: 'ready' } satisfies WatcherMessage);
watch();
