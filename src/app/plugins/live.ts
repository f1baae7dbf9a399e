// The live view's resources: request gauges in shared memory, and the monitor thread that
// streams them to the dashboard. The monitor starts once the app is ready (so the dashboard
// works as soon as the service listens); its streams end before the server closes.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { allowedHosts, behindBouncer, type Config } from '../../config.ts';
import { LiveGauges } from '../../live/gauges.ts';
import { Monitor, type RequestRecord } from '../../live/monitor.ts';
import { maskSecrets } from '../../config.ts';

export interface Live {
  gauges: LiveGauges;
  /** Hands a completed request to the timeline. */
  record(record: RequestRecord): void;
  /** The monitor thread's port: its live stream is served there. */
  monitorPort(): number;
}

declare module 'fastify' {
  interface FastifyInstance {
    live: Live;
  }
}

export interface LivePluginOptions {
  config: Config;
  /** Where the pool connects (maybe a PgBouncer), and PostgreSQL itself. */
  url: string;
  directUrl: string;
  /** This process's number among the cluster's workers (1 without workers). */
  workerId: number;
}

export default fp(async (fastify: FastifyInstance, { config, url, directUrl, workerId }: LivePluginOptions) => {
  const gauges = new LiveGauges();
  let monitor: Monitor | undefined;
  fastify.decorate('live', {
    gauges,
    record: (r: RequestRecord) => monitor?.record(r),
    monitorPort: () => {
      if (!monitor) throw new Error('the monitor starts when the app is ready');
      return monitor.port;
    },
  });

  fastify.addHook('onReady', async () => {
    monitor = await Monitor.start({
      host: config.host,
      // With workers and a fixed MONITOR_PORT, each worker takes the next port.
      port: config.monitorPort && config.monitorPort + workerId - 1,
      allowedHosts: allowedHosts(config),
      // PostgreSQL's own view, read directly: through PgBouncer it would queue behind the requests.
      databaseUrl: directUrl,
      bouncerUrl: behindBouncer(config) ? url : undefined,
      gauges,
      poolState: fastify.poolState.buffer,
      settings: {
        ...config,
        databaseUrl: undefined,
        pgbouncerUrl: config.pgbouncerUrl && maskSecrets(config.pgbouncerUrl),
        database: maskSecrets(url),
        worker: workerId,
      },
    });
  });
  // Open streams would hold close() until the grace period ends.
  fastify.addHook('preClose', async () => monitor?.endStreams());
  fastify.addHook('onClose', async () => monitor?.close());
}, { name: 'live', dependencies: ['store'] });
