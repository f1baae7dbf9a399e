// WORKERS > 1: the primary prepares the database once, then runs the workers (node:cluster),
// restarts one that dies, sums their metrics, and drains them all on shutdown.
import cluster, { type Worker } from 'node:cluster';
import client from 'prom-client';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { announce } from './banner.ts';
import type { Database } from './database.ts';
import type { MonitorAddress } from '../app/plugins/live.ts';
import { closeHttp, startHttp } from './http.ts';
import type { Shutdown } from './shutdown.ts';

interface Ready {
  type: 'anp:ready';
  address: string;
}

export function runPrimary (config: Config, database: Database, log: Logger, shutdown: Shutdown): void {
  const fork = (): Worker => cluster.fork({ WORKER_DATABASE_URL: database.url, WORKER_DIRECT_DATABASE_URL: database.directUrl });
  serveClusterMetrics();
  serveMonitors();
  const ready = new Set<number>();
  let announced = false;
  let stopping = false;
  cluster.on('message', (worker, msg: Ready) => {
    if (msg?.type !== 'anp:ready') return;
    ready.add(worker.id);
    if (!announced && ready.size === config.workers) {
      announced = true;
      announce(log, config, msg.address, database.label, database.budget);
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
  shutdown.add(async () => {
    stopping = true;
    // A message, not a signal: on Ctrl-C the workers got SIGINT from the terminal already.
    const exited = workers().map((w) => new Promise((resolve) => w.once('exit', resolve)));
    for (const w of workers()) w.send('shutdown');
    await Promise.all(exited);
  }, () => {
    for (const w of workers()) w.process.kill('SIGKILL');
  });
}

export async function runWorker (config: Config, log: Logger, shutdown: Shutdown): Promise<void> {
  process.on('message', (msg) => {
    if (msg === 'shutdown') shutdown.begin('the primary asked');
  });
  // One dashboard for every worker: the page lists each worker's live stream.
  const asked = new Map<number, (list: MonitorAddress[]) => void>();
  let asks = 0;
  const monitors = () => new Promise<MonitorAddress[]>((resolve) => {
    const id = ++asks;
    asked.set(id, (list) => { asked.delete(id); resolve(list); });
    process.send!({ type: 'anp:monitors?', id } satisfies MonitorMessage);
  });
  const urls = { url: process.env.WORKER_DATABASE_URL!, directUrl: process.env.WORKER_DIRECT_DATABASE_URL! };
  const http = await startHttp(config, urls, log, cluster.worker!.id, monitors);
  process.on('message', (msg: MonitorMessage) => {
    if (msg?.type === 'anp:monitors') asked.get(msg.id)?.(msg.list);
    if (msg?.type !== 'anp:monitor-start') return;
    const worker = cluster.worker!.id;
    http.fastify.live.monitorPort().then(
      (port) => process.send!({ type: 'anp:monitor-port', id: msg.id, worker, port } satisfies MonitorMessage),
      (err: Error) => log.warn({ err }, 'the monitor did not start'));
  });
  shutdown.add(() => closeHttp(http, config, log));
  process.send!({ type: 'anp:ready', address: http.address } satisfies Ready);
}

type MonitorMessage =
  | { type: 'anp:monitors?'; id: number }
  | { type: 'anp:monitor-start'; id: number }
  | { type: 'anp:monitor-port'; id: number; worker: number; port: number }
  | { type: 'anp:monitors'; id: number; list: MonitorAddress[] };

/** How long the primary waits for every worker's monitor port; a worker that is restarting is left out. */
const MONITORS_WAIT_MS = 3000;

/**
 * A worker asks for every worker's monitor: the primary asks each to start its own and answers
 * with the ports that came back (node:cluster gives workers no other way to reach each other).
 */
function serveMonitors (): void {
  let next = 0;
  const gathering = new Map<number, { list: MonitorAddress[]; expected: number; done: () => void }>();
  cluster.on('message', (worker, msg: MonitorMessage) => {
    if (msg?.type === 'anp:monitor-port') {
      const g = gathering.get(msg.id);
      if (!g) return;
      g.list.push({ worker: msg.worker, port: msg.port });
      if (g.list.length === g.expected) g.done();
      return;
    }
    if (msg?.type !== 'anp:monitors?') return;
    const id = ++next;
    const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w?.isConnected()));
    const g = {
      list: [] as MonitorAddress[],
      expected: live.length,
      done: () => {
        clearTimeout(timer);
        gathering.delete(id);
        g.list.sort((a, b) => a.worker - b.worker);
        if (worker.isConnected()) worker.send({ type: 'anp:monitors', id: msg.id, list: g.list } satisfies MonitorMessage);
      },
    };
    const timer = setTimeout(() => g.done(), MONITORS_WAIT_MS);
    gathering.set(id, g);
    for (const w of live) w.send({ type: 'anp:monitor-start', id } satisfies MonitorMessage);
  });
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
      worker.send({ type: 'anp:metrics', id: msg.id, body: `# error: ${(err as Error).message}\n`, contentType: 'text/plain' });
    }
  });
}
