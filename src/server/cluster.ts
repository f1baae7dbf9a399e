// WORKERS > 1: the primary prepares the database once, then runs the workers (node:cluster),
// restarts one that dies, sums their metrics, and drains them all on shutdown.
import cluster, { type Worker } from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { announce } from './banner.ts';
import type { Database } from './database.ts';
import type { LiveStreamAddress } from '../app/plugins/live.ts';
import type { MetricsText } from '../app/plugins/metrics.ts';
import type { DatabaseTopology } from '../db/topology.ts';
import { ListenError } from '../os/net.ts';
import { closeHttp, startHttp } from './http.ts';
import type { Shutdown } from './shutdown.ts';

interface Ready {
  type: 'anp:ready';
  address: string;
}

export async function runPrimary (
  config: Config,
  database: Database,
  log: Logger,
  shutdown: Shutdown
): Promise<void> {
  const fork = (): Worker =>
    cluster.fork({
      WORKER_DATABASE_URL: database.url,
      WORKER_DIRECT_DATABASE_URL: database.directUrl,
      WORKER_REPLICAS: JSON.stringify(database.replicas.map(({ name, url }) => ({ name, url }))),
      WORKER_SERVER_VERSION: String(database.serverVersion),
    });
  serveClusterMetrics();
  // Before the workers start: a page may ask for the stream as soon as one listens.
  await serveStreams(config, log, shutdown);
  const ready = new Set<number>();
  let announced = false;
  let stopping = false;
  cluster.on('message', (worker, msg: Ready) => {
    if (msg?.type !== 'anp:ready') return;
    ready.add(worker.id);
    if (!announced && ready.size === config.workers) {
      announced = true;
      announce(
        log,
        config,
        msg.address,
        database.label,
        database.budget,
        database.replicas.map((r) => r.label)
      );
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    ready.delete(worker.id);
    if (stopping) return;
    log.error({ worker: worker.id, code, signal }, 'worker died; starting a new one');
    setTimeout(fork, 1000).unref();
  });
  for (let i = 0; i < config.workers; i++) fork();

  const workers = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w));
  shutdown.add(
    async () => {
      stopping = true;
      // A message, not a signal: on Ctrl-C the workers got SIGINT from the terminal already.
      const exited = workers().map((w) => new Promise((resolve) => w.once('exit', resolve)));
      for (const w of workers()) w.send('shutdown');
      await Promise.all(exited);
    },
    () => {
      for (const w of workers()) w.process.kill('SIGKILL');
    }
  );
}

export async function runWorker (config: Config, log: Logger, shutdown: Shutdown): Promise<void> {
  process.on('message', (msg) => {
    if (msg === 'shutdown') shutdown.begin('the primary asked');
  });
  // One dashboard for every worker: the primary serves their live streams on one port.
  const asked = new Map<number, (stream: LiveStreamAddress) => void>();
  let asks = 0;
  const clusterStream = () =>
    new Promise<LiveStreamAddress>((resolve) => {
      const id = ++asks;
      asked.set(id, (stream) => {
        asked.delete(id);
        resolve(stream);
      });
      process.send!({ type: 'anp:stream?', id } satisfies MonitorMessage);
    });
  const database: DatabaseTopology = {
    url: process.env.WORKER_DATABASE_URL!,
    directUrl: process.env.WORKER_DIRECT_DATABASE_URL!,
    replicas: JSON.parse(process.env.WORKER_REPLICAS ?? '[]') as { name: string; url: string }[],
    serverVersion: Number(process.env.WORKER_SERVER_VERSION) || undefined,
  };
  const http = await startHttp(config, database, log, { id: cluster.worker!.id, clusterStream, clusterMetrics });
  process.on('message', (msg: MonitorMessage) => {
    if (msg?.type === 'anp:stream') asked.get(msg.id)?.(msg.stream);
    if (msg?.type !== 'anp:monitor-start') return;
    http.fastify.live.monitorPort().then(
      (port) => process.send!({ type: 'anp:monitor-port', port } satisfies MonitorMessage),
      (err: Error) => log.warn({ err }, 'the monitor did not start')
    );
  });
  shutdown.add(() => closeHttp(http, config, log));
  process.send!({ type: 'anp:ready', address: http.address } satisfies Ready);
}

type MonitorMessage =
  | { type: 'anp:stream?'; id: number }
  | { type: 'anp:stream'; id: number; stream: LiveStreamAddress }
  | { type: 'anp:monitor-start' }
  | { type: 'anp:monitor-port'; port: number };

/** How long the primary waits for a worker's monitor to start. */
const MONITOR_WAIT_MS = 3000;

/**
 * Every worker's live stream on one port, MONITOR_PORT: the primary forwards /live/<worker>/ to
 * that worker's monitor thread (on a loopback port of its own). The primary runs no request, so
 * it keeps forwarding while a worker's event loop is blocked, as the monitor thread keeps talking.
 */
async function serveStreams (config: Config, log: Logger, shutdown: Shutdown): Promise<void> {
  const ports = new Map<number, number>();
  let streamPort = 0;
  cluster.on('message', (worker, msg: MonitorMessage) => {
    if (msg?.type !== 'anp:stream?') return;
    const workers = Object.values(cluster.workers ?? {})
      .filter((w): w is Worker => Boolean(w?.isConnected()))
      .map((w) => w.id)
      .sort((a, b) => a - b);
    if (worker.isConnected()) {
      worker.send({
        type: 'anp:stream',
        id: msg.id,
        stream: { port: streamPort, workers },
      } satisfies MonitorMessage);
    }
  });
  const waiting = new Map<number, ((port: number) => void)[]>();
  cluster.on('message', (worker, msg: MonitorMessage) => {
    if (msg?.type !== 'anp:monitor-port') return;
    ports.set(worker.id, msg.port);
    for (const resolve of waiting.get(worker.id) ?? []) resolve(msg.port);
    waiting.delete(worker.id);
  });
  cluster.on('exit', (worker) => ports.delete(worker.id));
  const monitorOf = (worker: Worker) => {
    const known = ports.get(worker.id);
    if (known) return Promise.resolve(known);
    return new Promise<number | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), MONITOR_WAIT_MS);
      waiting.set(worker.id, [
        ...(waiting.get(worker.id) ?? []),
        (port) => {
          clearTimeout(timer);
          resolve(port);
        },
      ]);
      worker.send({ type: 'anp:monitor-start' } satisfies MonitorMessage);
    });
  };

  const refuse = (res: http.ServerResponse, status: number, code: string, message: string) => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      ...(status === 503 ? { 'retry-after': '1' } : {}),
    });
    res.end(JSON.stringify({ statusCode: status, error: http.STATUS_CODES[status], code, message }));
  };
  const server = http.createServer(async (req, res) => {
    const id = Number(/^\/live\/(\d+)\//.exec(req.url ?? '')?.[1]);
    const worker = cluster.workers?.[id];
    if (!worker) {
      return refuse(
        res,
        404,
        'NO_SUCH_WORKER',
        `${id ? `no worker ${id} here` : 'not a live stream'}: they are at /live/<worker>/events and /live/<worker>` +
          `/snapshot, for workers ${Object.keys(cluster.workers ?? {}).join(', ')}`
      );
    }
    const port = worker.isConnected() ? await monitorOf(worker) : undefined;
    if (!port) {
      return refuse(
        res,
        503,
        'MONITOR_UNAVAILABLE',
        `worker ${id}'s monitor is not answering (the worker may be starting or stopping)`
      );
    }
    // Headers as they came: the worker's monitor checks Host and Origin itself.
    const upstream = http.request(
      { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      }
    );
    upstream.on('error', () => {
      if (!res.headersSent) {
        refuse(
          res,
          503,
          'MONITOR_UNAVAILABLE',
          `worker ${id}'s monitor is not answering (the worker may be starting or stopping)`
        );
      } else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new ListenError(config.host, config.monitorPort, err, 'MONITOR_PORT'))
    );
    server.listen(config.monitorPort, config.host, () => resolve());
  });
  server.on('error', (err) => log.error({ err }, 'the live stream server failed'));
  streamPort = (server.address() as AddressInfo).port;
  shutdown.add(async () => {
    // The workers end their streams as they drain; a page's reconnect is refused from here on.
    server.close();
    server.closeAllConnections();
  });
}

/**
 * In a worker: its registry joins prom-client's AggregatorRegistry, and a scrape, which reaches one
 * worker, asks the primary for every worker's metrics, summed (serveClusterMetrics).
 */
function clusterMetrics (registry: client.Registry): () => Promise<MetricsText> {
  client.AggregatorRegistry.setRegistries([registry]);
  // Constructing an AggregatorRegistry is what makes a worker answer the primary's requests.
  // eslint-disable-next-line no-new
  new client.AggregatorRegistry();
  let nextId = 0;
  return () => {
    const id = ++nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        process.off('message', onMessage);
        reject(new Error('the primary did not answer with metrics'));
      }, 10_000);
      const onMessage = (msg: { type?: string; id?: number; body?: string; contentType?: string }) => {
        if (msg?.type !== 'anp:metrics' || msg.id !== id) return;
        clearTimeout(timer);
        process.off('message', onMessage);
        resolve({ contentType: msg.contentType!, body: msg.body! });
      };
      process.on('message', onMessage);
      process.send!({ type: 'anp:metrics?', id });
    });
  };
}

/** Answers a worker's request for the metrics of every worker, summed (prom-client's AggregatorRegistry). */
function serveClusterMetrics (): void {
  const aggregator = new client.AggregatorRegistry();
  cluster.on('message', async (worker, msg: { type?: string; id?: number }) => {
    if (msg?.type !== 'anp:metrics?') return;
    try {
      const body = await aggregator.clusterMetrics();
      worker.send({ type: 'anp:metrics', id: msg.id, body, contentType: aggregator.contentType });
    } catch (err) {
      worker.send({
        type: 'anp:metrics',
        id: msg.id,
        body: `# error: ${(err as Error).message}\n`,
        contentType: 'text/plain',
      });
    }
  });
}
