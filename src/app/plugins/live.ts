// The live view's resources: request gauges in shared memory, and the monitor thread that
// streams them to the dashboard, with the blocks and leaks named. The monitor starts with the
// first dashboard page; its streams end before the server closes.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { maskSecrets } from 'pg-queuepool';
import { allowedHosts, behindBouncer } from '../../config.ts';
import { LiveGauges } from '../../live/gauges.ts';
import { Monitor, type Block, type Leak, type RequestRecord } from '../../live/monitor.ts';

export interface Live {
  gauges: LiveGauges;
  /** True while a dashboard page listens: only then are requests recorded for its timeline. */
  readonly watched: boolean;
  /** Hands a completed request to the timeline. */
  record(record: RequestRecord): void;
  /**
   * Starts the monitor thread, the first time, and resolves with its port: its live stream is served there, at
   * /live/<worker>/.
   */
  monitorPort(): Promise<number>;
  /** Where the dashboard page reads every worker's live stream (this process's alone without workers). */
  stream(): Promise<LiveStreamAddress>;
  /** Shows a block of the event loop on the dashboard (the blocks plugin, with BLOCK_DETECTOR on). */
  block(block: Block): void;
  /** Shows a leaked connection on the dashboard (the leaks plugin, with LEAK_DETECTION on). */
  leak(leak: Leak): void;
}

/** The one port that serves every worker's live stream, at /live/<worker>/events. */
export interface LiveStreamAddress {
  port: number;
  workers: number[];
}

declare module 'fastify' {
  interface FastifyInstance {
    live: Live;
  }
}

// The monitor thread (a second V8 instance, about 20 MB) starts when the first dashboard page is
// asked for; the blocks (the blocks plugin) and leaks named before it are kept for it. Requests
// are recorded for the timeline only while a page listens.
/** Leaks and blocks kept for a monitor thread that starts later (as many as it keeps itself). */
const KEEP_LEAKS = 20;
const KEEP_BLOCKS = 20;

export default fp(
  async (fastify: FastifyInstance) => {
    const {
      config,
      database: { url, directUrl },
      worker,
    } = fastify;
    // Without workers this process is the one worker; with them the cluster primary serves every
    // worker's stream on MONITOR_PORT, forwarding to each worker's monitor (src/server/cluster.ts).
    const workerId = worker?.id ?? 1;
    const clusterStream = worker?.clusterStream;
    const gauges = new LiveGauges();
    let monitor: Monitor | undefined;
    let starting: Promise<Monitor> | undefined;
    let closing = false;
    // Leaks reported before the monitor thread runs reach it when it starts: a page opened later shows them.
    const leaks: Leak[] = [];
    const blocks: Block[] = [];
    // A monitor thread that is starting took its copy of `leaks` and `blocks` as it began: what
    // comes meanwhile is sent once it runs, or a page opened then would miss it.
    const toMonitor = (send: (m: Monitor) => void) => {
      if (monitor) send(monitor);
      else starting?.then(send, () => {});
    };
    const start = () =>
      Monitor.start({
        // With workers, only the primary, on this machine, reads a worker's monitor.
        host: clusterStream ? '127.0.0.1' : config.host,
        port: clusterStream ? 0 : config.monitorPort,
        worker: workerId,
        allowedHosts: allowedHosts(config),
        // PostgreSQL's own view, read directly: through PgBouncer it would queue behind the requests.
        databaseUrl: directUrl,
        bouncerUrl: behindBouncer(config) ? url : undefined,
        gauges,
        detector: config.blockDetector && { thresholdMs: config.blockThreshold },
        blocks,
        leaks,
        poolState: fastify.poolState.buffer,
        settings: {
          ...config,
          databaseUrl: undefined,
          pgbouncerUrl: config.pgbouncerUrl && maskSecrets(config.pgbouncerUrl),
          database: maskSecrets(url),
          worker: workerId,
        },
      });

    const monitorPort = async () => {
      if (closing) throw new Error('the service is shutting down');
      starting ??= start().then((m) => (monitor = m));
      return (await starting).port;
    };
    fastify.decorate('live', {
      gauges,
      get watched () {
        return monitor !== undefined && monitor.watched;
      },
      record: (r: RequestRecord) => monitor?.record(r),
      monitorPort,
      stream: clusterStream ?? (async () => ({ port: await monitorPort(), workers: [workerId] })),
      block: (block) => {
        blocks.push(block);
        if (blocks.length > KEEP_BLOCKS) blocks.shift();
        toMonitor((m) => m.block(block));
      },
      leak: (leak) => {
        leaks.push(leak);
        if (leaks.length > KEEP_LEAKS) leaks.shift();
        toMonitor((m) => m.leak(leak));
      },
    });

    // Open streams would hold close() until the grace period ends.
    fastify.addHook('preClose', async () => {
      closing = true;
      (await starting?.catch(() => undefined))?.endStreams();
    });
    fastify.addHook('onClose', async () => {
      await (await starting?.catch(() => undefined))?.close();
    });
  },
  { name: 'live', dependencies: ['store'] }
);
