// The main thread's side of the live view: a heartbeat, per-request records, and the monitor
// thread that turns them into a Server-Sent Events stream (monitor-worker.ts).
import { Worker } from 'node:worker_threads';
import { builtFile } from '../paths.ts';
import type { Block as DetectedBlock, Frame } from 'event-loop-block-detector';
import type { GaugeBuffers, LiveGauges } from './gauges.ts';

const HEARTBEAT_MS = 20;

/** The monitor thread's name on Linux (/proc/PID/task/TID/comm, at most 15 characters). */
export const MONITOR_THREAD_NAME = 'anp-monitor';

/** Completed requests are sent to the monitor thread in batches, not one message each. */
const FLUSH_MS = 50;

/** One completed request, with its phases (epoch ms). */
export interface RequestRecord {
  route: string;
  status: number;
  start: number;
  end: number;
  /**
   * Set when the request used a pooled connection: waiting from poolStart to poolAcquired, holding until poolReleased.
   */
  poolStart?: number;
  poolAcquired?: number;
  poolReleased?: number;
  overflow?: boolean;
}

/**
 * A block of the event loop, as the dashboard shows it: the detector's, with the route it served
 * (`GET /block/cpu/`: the route whose handler was running, its synchronous part; null outside any).
 */
export type Block = Omit<DetectedBlock, 'context' | 'pid' | 'tags'> & { route: string | null };

/** A connection held past LEAK_DETECTION, as the pool reported it: once while held, once more when given back. */
export interface Leak {
  /** The same for both reports of one checkout. */
  id: number;
  /** When it was reported (epoch ms). */
  at: number;
  heldMs: number;
  thresholdMs: number;
  /** False while it is held; true once it was given back. */
  released: boolean;
  /** The route it was checked out for (`GET /todos/:id`), or null outside a request. */
  route: string | null;
  /** The innermost frame of ours outside the store: the code that holds the connection. */
  culprit: Frame | undefined;
  /** The checkout's stack, innermost first, in the TypeScript source. */
  frames: Frame[];
}

export interface MonitorInit {
  host: string;
  /** 0: any free port. */
  port: number;
  /** This process's worker number: its stream is served at /live/<worker>/. */
  worker: number;
  /** Pages served under these host names (any port) may read the stream. */
  allowedHosts: string[];
  /** PostgreSQL itself, for its view of our backends. */
  databaseUrl: string;
  /** The PgBouncer the pool goes through, if any: its SHOW POOLS is shown too. */
  bouncerUrl?: string;
  settings: Record<string, unknown>;
  gauges: GaugeBuffers;
  /** The pool's SharedPoolState. */
  poolState: SharedArrayBuffer;
  heartbeatMs: number;
  /** The block detector (BLOCK_DETECTOR), as the pages show it: its threshold, or off. */
  detector: { thresholdMs: number } | false;
  /** Blocks and leaks reported before the thread started, for the pages. */
  blocks: Block[];
  leaks: Leak[];
}

export type MonitorMessage =
  | { type: 'requests'; records: RequestRecord[] }
  | { type: 'leak'; leak: Leak }
  | { type: 'block'; block: Block }
  | { type: 'end-streams' };

/** From the monitor thread: how many pages listen now. */
export type WorkerMessage = { type: 'watchers'; count: number };

export class Monitor {
  private batch: RequestRecord[] = [];
  private flusher: NodeJS.Timeout | undefined;
  /** Pages listening to the stream, as the monitor thread last said. */
  private watchers = 0;

  private constructor (
    private readonly worker: Worker,
    private readonly heartbeat: NodeJS.Timeout,
    readonly port: number
  ) {
    worker.on('message', (msg: WorkerMessage) => {
      if (msg.type === 'watchers') this.watch(msg.count);
    });
  }

  /** True while a page listens: then, and only then, completed requests are worth recording. */
  get watched (): boolean {
    return this.watchers > 0;
  }

  static async start (
    options: Omit<MonitorInit, 'heartbeatMs' | 'gauges'> & { gauges: LiveGauges }
  ): Promise<Monitor> {
    const { gauges, ...rest } = options;
    const workerData: MonitorInit = { ...rest, gauges: gauges.buffers, heartbeatMs: HEARTBEAT_MS };
    gauges.beat();
    const heartbeat = setInterval(() => gauges.beat(), HEARTBEAT_MS);
    heartbeat.unref();
    const worker = new Worker(builtFile('live/monitor-worker.js'), { workerData });
    worker.unref();
    try {
      const port = await new Promise<number>((resolve, reject) => {
        worker.once('error', reject);
        // A thread that ends without an error would otherwise leave the start waiting for ever.
        worker.once('exit', (code) =>
          reject(new Error(`the monitor thread exited (code ${code}) before it listened`))
        );
        worker.once('message', (msg: { type: string; port: number }) => resolve(msg.port));
      });
      return new Monitor(worker, heartbeat, port);
    } catch (err) {
      clearInterval(heartbeat);
      await worker.terminate();
      throw err;
    }
  }

  record (record: RequestRecord): void {
    if (this.watchers > 0) this.batch.push(record);
  }

  /** Rare, and kept for pages that open later: sent at once, watched or not. */
  leak (leak: Leak): void {
    this.worker.postMessage({ type: 'leak', leak } satisfies MonitorMessage);
  }

  /** As rare, and kept as leaks are. */
  block (block: Block): void {
    this.worker.postMessage({ type: 'block', block } satisfies MonitorMessage);
  }

  /** Ends the pages' live streams and stops accepting new ones. */
  endStreams (): void {
    this.worker.postMessage({ type: 'end-streams' } satisfies MonitorMessage);
  }

  async close (): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.flusher);
    await this.worker.terminate();
  }

  /** Requests are batched to the thread only while a page watches: no timer wakes the loop otherwise. */
  private watch (count: number): void {
    this.watchers = count;
    if (count > 0 && !this.flusher) {
      this.flusher = setInterval(() => this.flush(), FLUSH_MS);
      this.flusher.unref();
    } else if (count === 0 && this.flusher) {
      clearInterval(this.flusher);
      this.flusher = undefined;
      this.batch = [];
    }
  }

  private flush (): void {
    if (this.batch.length === 0) return;
    this.worker.postMessage({ type: 'requests', records: this.batch } satisfies MonitorMessage);
    this.batch = [];
  }
}
