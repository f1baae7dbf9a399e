// What a block is, as the detector reports it: the shapes shared by the watcher thread and the
// thread it watches.

/** One frame of the stalled thread's stack, mapped through source maps where the file has one. */
export interface Frame {
  /** The function's name, or "(anonymous)". */
  fn: string;
  /**
   * The source file: relative to `root` for the application's own files, `node:internal/...` for
   * Node's, an absolute path otherwise.
   */
  file: string;
  line: number;
  column: number;
}

/** One stall of the event loop, reported once the loop answers again. */
export interface Block {
  /** When the loop last answered before the stall (epoch ms). */
  at: number;
  /** How long the loop stalled, in ms (to within the heartbeat). */
  ms: number;
  /** How long after the stall began the stack was taken, in ms. */
  sampledAfterMs: number;
  /**
   * The stalled thread's stack, innermost first (at most `maxFrames`); empty when the thread let
   * go before its stack could be taken.
   */
  frames: Frame[];
  /** The innermost frame of the application's own code (under `root`, outside node_modules): what to fix. */
  culprit: Frame | undefined;
  /**
   * What `context` returned on the stalled thread when its stack was taken: by default the request
   * an adapter says is being served ({@link RequestInfo}); undefined outside any.
   */
  context: unknown;
  /**
   * The share of the stall the stalled thread spent on a CPU, from 0 to 1, measured from the moment the
   * stall was seen to its end: near 1 for a loop or a synchronous hash, near 0 for a thread waiting (a
   * synchronous read of a slow disk, `Atomics.wait`, a child process run synchronously). Undefined where
   * the thread's CPU time cannot be read (outside Linux).
   */
  cpuShare: number | undefined;
  /**
   * The share of the stall the thread was ready to run but waited for a CPU, from 0 to 1: other
   * threads and processes had the cores. A CPU loop on a busy machine reads as some `cpuShare` and
   * some of this; together they are the share the thread wanted a CPU. Undefined where `cpuShare` is.
   */
  runnableShare: number | undefined;
  /** The process, for logs gathered from several (`node:cluster` workers). */
  pid: number;
  /** The `tags` the detector was started with. */
  tags: Record<string, string>;
}

/** The request an adapter says is being served; the default `context` of a block. */
export interface RequestInfo {
  method: string;
  /** The URL as the client asked for it, query string included. */
  url: string;
  /** The route's pattern (`/todos/:id`), where the framework has one. */
  route?: string;
}
