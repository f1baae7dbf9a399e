// WORKERS > 1: the primary prepares the database once, then runs the workers (node:cluster),
// restarts one that dies, sums their metrics, and drains them all on shutdown.
import cluster, { type Worker } from 'node:cluster';
import client from 'prom-client';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { banner } from './banner.ts';
import type { Database } from './database.ts';
import { closeHttp, startHttp } from './http.ts';
import type { Shutdown } from './shutdown.ts';

interface Ready {
  type: 'anp:ready';
  address: string;
}

export function runPrimary (config: Config, database: Database, log: Logger, shutdown: Shutdown): void {
  const fork = (): Worker => cluster.fork({ WORKER_DATABASE_URL: database.url, WORKER_DIRECT_DATABASE_URL: database.directUrl });
  serveClusterMetrics();
  const ready = new Set<number>();
  let announced = false;
  let stopping = false;
  cluster.on('message', (worker, msg: Ready) => {
    if (msg?.type !== 'anp:ready') return;
    ready.add(worker.id);
    if (!announced && ready.size === config.workers) {
      announced = true;
      console.log(banner(config, msg.address, database.label, database.budget));
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
  const urls = { url: process.env.WORKER_DATABASE_URL!, directUrl: process.env.WORKER_DIRECT_DATABASE_URL! };
  const http = await startHttp(config, urls, log, cluster.worker!.id);
  shutdown.add(() => closeHttp(http, config, log));
  process.send!({ type: 'anp:ready', address: http.address } satisfies Ready);
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
