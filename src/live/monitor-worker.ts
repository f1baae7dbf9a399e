// The monitor thread: measures the main event loop's lag from a heartbeat in shared memory
// and streams live figures over Server-Sent Events from its own HTTP server. It shares no
// event loop with the requests, so it keeps talking while the main loop is blocked.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import type pg from 'pg';
import { now } from '../clock.ts';
import { APPLICATION_NAME } from '../db/application.ts';
import { SharedPoolState } from '../db/pool-state.ts';
import { hostName } from '../os/net.ts';
import { BouncerStats, type BouncerView } from '../postgres/pgbouncer-stats.ts';
import { LiveGauges } from './gauges.ts';
import {
  MONITOR_THREAD_NAME,
  type Block,
  type Leak,
  type MonitorInit,
  type MonitorMessage,
  type RequestRecord,
  type WorkerMessage,
} from './monitor.ts';

const FRAME_MS = 100;
const DB_VIEW_MS = 500;
const KEEP_REQUESTS = 2000;
/** Blocks, and leaks, kept for pages that open later. */
const KEEP_BLOCKS = 20;
const KEEP_LEAKS = 20;
/** Pages that may watch at once: each costs a frame every FRAME_MS. */
const MAX_STREAMS = 100;

// Named, where Linux lets a thread name itself, so that `top -H` and `ps -L` show what this
// thread costs apart from the requests' (and the benchmark reads it by that name).
try {
  writeFileSync('/proc/thread-self/comm', MONITOR_THREAD_NAME);
} catch {
  /* not Linux: the thread keeps its name */
}

const init = workerData as MonitorInit;
const gauges = new LiveGauges(init.gauges);
const pool = new SharedPoolState(init.poolState);
const clients = new Set<http.ServerResponse>();
const recent: RequestRecord[] = [];
let pending: RequestRecord[] = [];
let dbView: DbView = { at: 0, states: {}, sleeping: 0 };
const blocks: Block[] = [...init.blocks];
let pendingBlocks: Block[] = [];
// Both reports of a leak are kept (held, then given back): the page shows the latest of each.
const leaks: Leak[] = [...init.leaks];
let pendingLeaks: Leak[] = [];

interface DbView {
  at: number;
  states: Record<string, number>;
  sleeping: number;
  error?: string;
  /** PgBouncer's SHOW POOLS, when the pool goes through it. */
  bouncer?: BouncerView | { error: string };
}

parentPort!.on('message', (msg: MonitorMessage) => {
  if (msg.type === 'end-streams') {
    server.close();
    for (const res of clients) res.end();
    clients.clear();
    watchers();
  } else if (msg.type === 'block') {
    blocks.push(msg.block);
    if (blocks.length > KEEP_BLOCKS) blocks.shift();
    if (frames) pendingBlocks.push(msg.block);
  } else if (msg.type === 'leak') {
    leaks.push(msg.leak);
    if (leaks.length > KEEP_LEAKS) leaks.shift();
    if (frames) pendingLeaks.push(msg.leak);
  } else if (msg.type === 'requests') {
    pending.push(...msg.records);
    recent.push(...msg.records);
    if (recent.length > KEEP_REQUESTS) recent.splice(0, recent.length - KEEP_REQUESTS);
    if (pending.length > KEEP_REQUESTS) pending.splice(0, pending.length - KEEP_REQUESTS);
  }
});

function lagMs (): number {
  return Math.max(0, now() - gauges.lastBeat() - init.heartbeatMs);
}

function frame () {
  const requests = pending;
  pending = [];
  const newBlocks = pendingBlocks;
  pendingBlocks = [];
  const newLeaks = pendingLeaks;
  pendingLeaks = [];
  return {
    t: now(),
    lagMs: lagMs(),
    threadPoolMs: gauges.threadPoolDelayMs(),
    inFlight: gauges.inFlight(),
    pool: pool.read(),
    requests,
    blocks: newBlocks,
    leaks: newLeaks,
    db: dbView,
  };
}

function send (res: http.ServerResponse, event: string, data: unknown): void {
  if (res.writableNeedDrain) return; // a slow page skips frames rather than buffering them
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** A page served by the service under an allowed host name, on any port, may read the stream. */
const anyHost = init.allowedHosts.includes('*');
const allowed = (host: string) => anyHost || init.allowedHosts.includes(host);

function allowedOrigin (origin: string | undefined): string | undefined {
  if (!origin) return undefined;
  try {
    const u = new URL(origin);
    return u.protocol === 'http:' && allowed(u.hostname) ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

let frames: NodeJS.Timeout | undefined;
let dbViews: NodeJS.Timeout | undefined;

/**
 * Tells the main thread how many pages listen (it records requests only while one does), and
 * runs the frames and the database view only then: a timer that wakes an idle thread costs some
 * 0.1 ms of CPU a time on this machine, and nothing is owed to nobody.
 */
function watchers (): void {
  parentPort!.postMessage({ type: 'watchers', count: clients.size } satisfies WorkerMessage);
  if (clients.size > 0 && !frames) {
    frames = setInterval(() => {
      const data = frame();
      for (const res of clients) send(res, 'frame', data);
    }, FRAME_MS);
    dbViews = setInterval(() => {
      refreshDbView();
    }, DB_VIEW_MS);
    refreshDbView();
  } else if (clients.size === 0 && frames) {
    clearInterval(frames);
    clearInterval(dbViews);
    frames = dbViews = undefined;
    pending = [];
    pendingBlocks = [];
    pendingLeaks = [];
  }
}

/**
 * Every path has the worker in it, so that one port (a reverse proxy's, or the cluster primary's) can serve every
 * worker's.
 */
const base = `/live/${init.worker}/`;

const server = http.createServer((req, res) => {
  // As the service itself: only requests addressed to a host name it answers to (no DNS rebinding).
  if (req.headers.host !== undefined && !allowed(hostName(req.headers.host))) {
    res.writeHead(421, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        statusCode: 421,
        error: 'Misdirected Request',
        code: 'HOST_NOT_ALLOWED',
        message: 'this monitor does not answer to that host name (ALLOWED_HOSTS)',
      })
    );
    return;
  }
  const origin = allowedOrigin(req.headers.origin);
  const headers = {
    ...(origin ? { 'access-control-allow-origin': origin } : {}),
    vary: 'origin',
    'cache-control': 'no-store',
  };
  const path = req.url?.split('?')[0];
  if (path === `${base}events`) {
    if (clients.size >= MAX_STREAMS) {
      res.writeHead(503, { ...headers, 'content-type': 'application/json', 'retry-after': '5' });
      res.end(
        JSON.stringify({
          statusCode: 503,
          error: 'Service Unavailable',
          code: 'STREAMS_FULL',
          message: `${MAX_STREAMS} pages are watching already`,
        })
      );
      return;
    }
    // X-Accel-Buffering: nginx passes each frame on as it comes, even where buffering is on.
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    clients.add(res);
    watchers();
    req.on('close', () => {
      clients.delete(res);
      watchers();
    });
    send(res, 'hello', {
      settings: init.settings,
      heartbeatMs: init.heartbeatMs,
      frameMs: FRAME_MS,
      recent,
      detector: detectorState(),
      blocks,
      leaks,
    });
    return;
  }
  if (path === `${base}snapshot`) {
    res.writeHead(200, { ...headers, 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        lagMs: lagMs(),
        threadPoolMs: gauges.threadPoolDelayMs(),
        inFlight: gauges.inFlight(),
        pool: pool.read(),
        db: dbView,
        detector: detectorState(),
        blocks,
        leaks,
      })
    );
    return;
  }
  res.writeHead(404, { ...headers, 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      statusCode: 404,
      error: 'Not Found',
      code: 'NOT_FOUND',
      message: `the monitor serves ${base}events and ${base}snapshot`,
    })
  );
});

let db: pg.Client | undefined;
const bouncer = init.bouncerUrl ? new BouncerStats(init.bouncerUrl) : undefined;
let refreshing = false;

async function refreshDbView (): Promise<void> {
  if (refreshing) return; // a slow database must not pile up queries
  refreshing = true;
  try {
    const [view, bouncerView] = await Promise.all([
      readPostgres(),
      bouncer?.read().catch((err: Error) => ({ error: err.message })),
    ]);
    dbView = { ...view, bouncer: bouncerView };
  } finally {
    refreshing = false;
  }
}

async function readPostgres (): Promise<DbView> {
  try {
    if (!db) {
      // pg is loaded when a page first watches (the database view), not at every start.
      const {
        default: { Client },
      } = await import('pg');
      db = new Client({
        connectionString: init.databaseUrl,
        application_name: `${APPLICATION_NAME}-monitor`,
        connectionTimeoutMillis: 2000,
      });
      db.on('error', () => {
        db = undefined;
      });
      await db.connect();
    }
    const { rows } = await db.query<{ state: string | null; n: number; sleeping: number }>(
      `SELECT state, count(*)::int AS n,
              count(*) FILTER (WHERE state = 'active' AND query ILIKE '%pg_sleep%')::int AS sleeping
         FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = $1
        GROUP BY state`,
      [APPLICATION_NAME]
    );
    return {
      at: now(),
      states: Object.fromEntries(rows.map((r) => [r.state ?? 'unknown', r.n])),
      sleeping: rows.reduce((a, r) => a + r.sleeping, 0),
    };
  } catch (err) {
    const broken = db;
    db = undefined;
    await broken?.end().catch(() => {});
    return { at: now(), states: {}, sleeping: 0, error: (err as Error).message };
  }
}

const detectorState = () => (init.detector ? { on: true, thresholdMs: init.detector.thresholdMs } : { on: false });
server.listen(init.port, init.host, () => {
  const address = server.address();
  parentPort!.postMessage({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
});
