// Prometheus metrics (prom-client). Gauges alone miss what happens between two scrapes, so
// the pool also has counters and a wait-time histogram.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { performance } from 'node:perf_hooks';
import client from 'prom-client';
import { behindBouncer } from '../../config.ts';
import type { PoolStats } from 'pg-queuepool';
import type { ReplicatedTodoStore } from '../../db/replicated.ts';
import type { LeaseTiming } from '../../db/todos.ts';
import { BouncerStats, type BouncerView } from '../../postgres/pgbouncer-stats.ts';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

export interface Metrics {
  registry: client.Registry;
  requestEnded(route: string, method: string, status: number, seconds: number, lease?: LeaseTiming): void;
  /** A block of the event loop the detector named; `route` is one of the service's routes, or null. */
  blocked(route: string | null, seconds: number): void;
  /** A connection held past LEAK_DETECTION, by the route it was checked out for (`GET /leak/`), or null. */
  leaked(route: string | null): void;
  /** The exposition text: this process's, or with workers, all workers' summed by the primary. */
  text(): Promise<{ contentType: string; body: string }>;
}

/**
 * OpenTelemetry's name for a pool (db.client.connection.pool.name): server.address:server.port/db.namespace, as its
 * conventions advise when the pool has none.
 */
export function poolName (url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 5432}${u.pathname}`;
}

export function createMetrics (
  stats: () => PoolStats,
  inFlight: () => Record<string, number>,
  bouncer?: BouncerStats,
  replicas?: ReplicatedTodoStore,
  pool = 'primary',
  clusterMetrics?: ClusterMetrics
): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  if (bouncer) bouncerMetrics(registry, bouncer);
  if (replicas) replicaMetrics(registry, replicas);
  const gauge = <L extends string>(config: client.GaugeConfiguration<L>) =>
    new client.Gauge({ ...config, registers: [registry] });

  const duration = new HotHistogram(
    'http_request_duration_seconds',
    'HTTP request duration by route and status',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
  );
  registry.registerMetric(duration as unknown as client.Metric);
  // Read from the live gauges at scrape time: they count requests in flight already.
  gauge({
    name: 'http_requests_in_flight',
    help: 'Requests being served, by route',
    labelNames: ['route'],
    collect () {
      for (const [route, n] of Object.entries(inFlight())) this.set({ route }, n);
    },
  });
  const poolWait = new HotHistogram(
    'db_pool_wait_seconds',
    'Time a request waited for a pooled connection',
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30]
  );
  registry.registerMetric(poolWait as unknown as client.Metric);

  // The states add up to the open connections: sum(db_pool_connections) is their total.
  gauge({
    name: 'db_pool_connections',
    help:
      'Open pool connections by state: idle, or in_use (checked out, or being opened for a request); they add up ' +
      'to the open connections',
    labelNames: ['state'],
    collect () {
      const s = stats();
      this.set({ state: 'idle' }, s.idle);
      this.set({ state: 'in_use' }, s.total - s.idle);
    },
  });
  gauge({
    name: 'db_pool_overflow_connections_in_use',
    help: 'Checked-out connections beyond POOL_SIZE (a part of db_pool_connections{state="in_use"})',
    collect () {
      this.set(stats().overflowInUse);
    },
  });
  gauge({
    name: 'db_pool_waiting',
    help: 'Requests waiting for a pooled connection',
    collect () {
      this.set(stats().waiting);
    },
  });
  gauge({
    name: 'db_pool_max_connections',
    help: 'Pool size + overflow: the most connections this process opens (0: NullPool, no limit)',
    collect () {
      const s = stats();
      this.set(s.kind === 'queue' ? s.size + s.maxOverflow : 0);
    },
  });
  const otel = otelPoolMetrics(registry, stats, pool);
  counterFrom(registry, 'db_pool_acquired_total', 'Connections handed out by the pool', () => stats().acquired);
  counterFrom(
    registry,
    'db_pool_timeouts_total',
    'Requests that waited longer than POOL_TIMEOUT',
    () => stats().timeouts
  );
  counterFrom(
    registry,
    'db_pool_rejected_total',
    'Requests refused because POOL_QUEUE_MAX were waiting',
    () => stats().rejected
  );
  counterFrom(
    registry,
    'db_pool_connect_errors_total',
    'Failed attempts to open a database connection',
    () => stats().connectErrors
  );
  counterFrom(
    registry,
    'db_pool_aborted_total',
    'Requests whose client went away while they waited for a connection',
    () => stats().aborted
  );
  counterFrom(
    registry,
    'db_pool_cancels_total',
    'CancelRequests sent for the queries of requests whose client went away, and for queries past QUERY_TIMEOUT',
    () => stats().cancels
  );
  // The unhappy path: what the pool did so that no request gets a connection it cannot trust.
  counterFrom(
    registry,
    'db_pool_resets_total',
    'Connections given back inside a transaction and rolled back before reuse',
    () => stats().resets
  );
  counterFrom(
    registry,
    'db_pool_query_timeouts_total',
    'Queries with no answer within QUERY_TIMEOUT (answered 504 QUERY_TIMEOUT)',
    () => stats().queryTimeouts
  );
  counterFrom(
    registry,
    'db_pool_health_checks_total',
    'Idle connections checked in the background (POOL_HEALTH_CHECK, and suspects after one broke)',
    () => stats().healthChecks
  );
  const causes = Object.keys(stats().closed) as (keyof PoolStats['closed'])[];
  countersFrom(
    registry,
    'db_pool_closed_total',
    'Connections the pool closed because it could not trust them, by cause: broken, reset (a failed rollback on ' +
      'return), busy, deadline (QUERY_TIMEOUT), cancel, healthCheck, ' +
      'invalidated (a suspect after another broke), prePing',
    'cause',
    Object.fromEntries(causes.map((cause) => [cause, () => stats().closed[cause]]))
  );
  gauge({
    name: 'db_pool_refill_backoff_seconds',
    aggregator: 'max',
    help:
      'After failed connects: the pause before the pool tries again to reopen its POOL_SIZE connections (0: not ' +
      'backing off)',
    collect () {
      this.set(stats().refillBackoffMs / 1000);
    },
  });

  // Counters, not a gauge reset at each scrape (two scrapers would each see half): the
  // utilization over any window is rate(active) / (rate(active) + rate(idle)).
  counterFrom(
    registry,
    'nodejs_eventloop_active_seconds_total',
    'Time the event loop spent running callbacks',
    () => performance.eventLoopUtilization().active / 1000
  );
  counterFrom(
    registry,
    'nodejs_eventloop_idle_seconds_total',
    'Time the event loop spent waiting for events',
    () => performance.eventLoopUtilization().idle / 1000
  );

  // Labelled by route (one of the service's, or "none"): a bounded set, whatever the clients send.
  const blocks = new client.Counter({
    name: 'event_loop_blocks_total',
    help:
      'Times the event loop stalled past BLOCK_THRESHOLD_MS, by the route whose handler held it ("none": outside ' +
      'any handler)',
    labelNames: ['route'],
    registers: [registry],
  });
  const blockSeconds = new client.Histogram({
    name: 'event_loop_block_seconds',
    help: 'How long each block of the event loop lasted, by route',
    labelNames: ['route'],
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const leaks = new client.Counter({
    name: 'db_pool_leaks_total',
    help: 'Connections held past LEAK_DETECTION, by the route that checked them out ("none": outside any request)',
    labelNames: ['route'],
    registers: [registry],
  });

  return {
    registry,
    requestEnded (route, method, status, seconds, lease) {
      duration.observe(
        `${route} ${method} ${status}`,
        () => ({ route, method, status_code: String(status) }),
        seconds
      );
      if (!lease) return;
      poolWait.observe('', () => ({}), lease.waitMs / 1000);
      otel.leased(lease);
    },
    blocked (route, seconds) {
      blocks.inc({ route: route ?? 'none' });
      blockSeconds.observe({ route: route ?? 'none' }, seconds);
    },
    leaked (route) {
      leaks.inc({ route: route ?? 'none' });
    },
    text:
      clusterMetrics?.(registry) ??
      (async () => ({
        contentType: registry.contentType,
        body: await registry.metrics(),
      })),
  };
}

/**
 * The pool by OpenTelemetry's semantic conventions for database client connections (db.client.connection.*), in
 * Prometheus's spelling (dots to underscores, the unit as a suffix), beside the db_pool_* series: a dashboard built for
 * those conventions reads them as it reads any instrumented pool.
 */
function otelPoolMetrics (
  registry: client.Registry,
  stats: () => PoolStats,
  pool: string
): { leased(lease: LeaseTiming): void } {
  const poolLabel = { db_client_connection_pool_name: pool };
  const gauge = (name: string, help: string, value: (s: PoolStats) => number) =>
    new client.Gauge({
      name,
      help,
      labelNames: ['db_client_connection_pool_name'],
      registers: [registry],
      collect () {
        this.set(poolLabel, value(stats()));
      },
    });
  registry.registerMetric(
    new client.Gauge({
      name: 'db_client_connection_count',
      help: 'db.client.connection.count: open connections by state, idle or used (checked out, or being opened)',
      labelNames: ['db_client_connection_pool_name', 'db_client_connection_state'],
      registers: [],
      collect () {
        const s = stats();
        this.set({ ...poolLabel, db_client_connection_state: 'idle' }, s.idle);
        this.set({ ...poolLabel, db_client_connection_state: 'used' }, s.total - s.idle);
      },
    })
  );
  gauge(
    'db_client_connection_max',
    'db.client.connection.max: the most connections the pool opens (POOL_SIZE + POOL_MAX_OVERFLOW)',
    (s) => s.size + s.maxOverflow
  );
  gauge(
    'db_client_connection_idle_max',
    'db.client.connection.idle.max: the most idle connections kept, for overflowIdle at most past POOL_SIZE',
    (s) => s.size + s.maxOverflow
  );
  gauge(
    'db_client_connection_idle_min',
    'db.client.connection.idle.min: the idle connections kept open (POOL_SIZE)',
    (s) => s.size
  );
  gauge(
    'db_client_connection_pending_requests',
    'db.client.connection.pending_requests: requests waiting for a connection',
    (s) => s.waiting
  );
  countersFrom(
    registry,
    'db_client_connection_timeouts',
    'db.client.connection.timeouts: checkouts that gave up at POOL_TIMEOUT',
    'db_client_connection_pool_name',
    { [pool]: () => stats().timeouts }
  );
  const buckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60];
  const wait = new HotHistogram(
    'db_client_connection_wait_time_seconds',
    'db.client.connection.wait_time: the time it took to obtain a connection',
    buckets
  );
  const use = new HotHistogram(
    'db_client_connection_use_time_seconds',
    'db.client.connection.use_time: the time between borrowing a connection and returning it',
    buckets
  );
  registry.registerMetric(wait as unknown as client.Metric);
  registry.registerMetric(use as unknown as client.Metric);
  const labels = () => poolLabel;
  return {
    leased (lease) {
      wait.observe(pool, labels, lease.waitMs / 1000);
      use.observe(pool, labels, lease.holdMs / 1000);
    },
  };
}

/**
 * PgBouncer's SHOW POOLS, read at scrape time. Every worker reads the same PgBouncer, so with
 * workers the primary keeps one worker's figure (aggregator 'max'), not their sum.
 */
function bouncerMetrics (registry: client.Registry, bouncer: BouncerStats): void {
  // prom-client starts every collect() of a scrape before awaiting any of them, so one
  // SHOW POOLS in flight serves the whole scrape; the next scrape reads again.
  let reading: Promise<BouncerView | undefined> | undefined;
  const read = () =>
    (reading ??= bouncer
      .read()
      .catch(() => undefined)
      .finally(() => {
        reading = undefined;
      }));
  const gauge = (name: string, help: string, values: (v: BouncerView) => Record<string, number> | number) =>
    new client.Gauge({
      name,
      help,
      labelNames: ['state'],
      registers: [registry],
      aggregator: 'max',
      async collect () {
        const v = await read();
        if (!v) return;
        const value = values(v);
        if (typeof value === 'number') this.set(value);
        else for (const [state, n] of Object.entries(value)) this.set({ state }, n);
      },
    });
  gauge(
    'pgbouncer_clients',
    'Client connections to PgBouncer by state: active (linked or idle), waiting (for a server connection)',
    (v) => ({ active: v.clientsActive, waiting: v.clientsWaiting })
  );
  gauge(
    'pgbouncer_servers',
    "PgBouncer's server connections to PostgreSQL by state: active, idle, other (used, tested, login)",
    (v) => ({ active: v.serversActive, idle: v.serversIdle, other: v.serversOther })
  );
  gauge(
    'pgbouncer_max_wait_seconds',
    'How long the oldest client waiting inside PgBouncer has waited',
    (v) => v.maxWaitMs / 1000
  );
  registry.registerMetric(
    new client.Gauge({
      name: 'pgbouncer_up',
      help: "1 when PgBouncer's admin console answered this scrape",
      aggregator: 'max',
      registers: [],
      async collect () {
        this.set((await read()) ? 1 : 0);
      },
    })
  );
}

/**
 * With replicas: each server's pool and each replica's lag, labelled by server (the unlabelled
 * db_pool_* series are the primary's), and how reads were routed. With workers, the primary sums
 * the pools and counters and keeps the worst lag (every worker watches the same replicas).
 */
function replicaMetrics (registry: client.Registry, store: ReplicatedTodoStore): void {
  const gauge = (
    name: string,
    help: string,
    aggregator: 'sum' | 'max' | 'min',
    set: (g: client.Gauge<'server' | 'state'>) => void
  ) =>
    new client.Gauge({
      name,
      help,
      labelNames: ['server', 'state'],
      aggregator,
      registers: [registry],
      collect () {
        set(this);
      },
    });
  gauge('db_server_pool_connections', 'Open pool connections by server and state (idle, in_use)', 'sum', (g) => {
    for (const { name, stats } of store.servers()) {
      g.set({ server: name, state: 'idle' }, stats.idle);
      g.set({ server: name, state: 'in_use' }, stats.total - stats.idle);
    }
  });
  gauge('db_server_pool_waiting', 'Requests waiting for a pooled connection, by server', 'sum', (g) => {
    for (const { name, stats } of store.servers()) g.set({ server: name }, stats.waiting);
  });
  gauge('db_replica_lag_bytes', 'WAL a replica has not replayed yet, in bytes', 'max', (g) => {
    for (const r of store.watch.replicas) g.set({ server: r.name }, r.lagBytes);
  });
  gauge(
    'db_replica_lag_seconds',
    'Seconds since the primary was first seen with WAL the replica has not replayed (0 when caught up)',
    'max',
    (g) => {
      for (const r of store.watch.replicas) g.set({ server: r.name }, r.lagSeconds);
    }
  );
  gauge(
    'db_replica_in_rotation',
    '1 while a replica serves reads (up, a standby, within REPLICA_MAX_LAG)',
    'min',
    (g) => {
      for (const r of store.watch.replicas) g.set({ server: r.name }, r.usable ? 1 : 0);
    }
  );
  const { counts } = store;
  countersFrom(
    registry,
    'db_reads_total',
    'Reads served, by server',
    'server',
    Object.fromEntries(Object.keys(counts.served).map((server) => [server, () => counts.served[server]!]))
  );
  countersFrom(
    registry,
    'db_read_fallbacks_total',
    'Reads sent to the primary instead: no replica in rotation (no_replica), the replica failed under the read ' +
      '(broken), or none had replayed X-Read-After in time (behind)',
    'reason',
    {
      no_replica: () => counts.fallbacks.noReplica,
      broken: () => counts.fallbacks.broken,
      behind: () => counts.fallbacks.behind,
    }
  );
  counterFrom(
    registry,
    'db_reads_spilled_total',
    "Reads sent to the primary because every replica's pool was full",
    () => counts.spilled
  );
  counterFrom(
    registry,
    'db_read_replay_checks_total',
    'Reads with X-Read-After on a replica: each looked on its connection for its position',
    () => counts.replayChecks
  );
  counterFrom(
    registry,
    'db_read_replay_waits_total',
    'Those that found it not replayed yet, and waited',
    () => counts.replayWaits
  );
  counterFrom(
    registry,
    'db_read_replay_wait_seconds_total',
    'Time those reads waited',
    () => counts.replayWaitMs / 1000
  );
}

interface Series {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative), the last one for +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A histogram for the hot path: an observation is one Map lookup by a key the caller already has,
 * and two additions. prom-client's Histogram validates and hashes the label set on every
 * observation, twice per request here. The registry reads this one as any other metric: get()
 * gives the same shape, so /metrics, and the cluster's sum over workers, are unchanged.
 */
class HotHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor (
    readonly name: string,
    readonly help: string,
    private readonly buckets: number[]
  ) {}

  /** `labels` is called once per new key, to name its series. */
  observe (key: string, labels: () => Record<string, string>, value: number): void {
    let s = this.series.get(key);
    if (s === undefined) {
      this.series.set(
        key,
        (s = { labels: labels(), counts: new Array(this.buckets.length + 1).fill(0), sum: 0, count: 0 })
      );
    }
    let i = 0;
    while (i < this.buckets.length && value > this.buckets[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  get () {
    const values = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += s.counts[i]!;
        values.push({
          metricName: `${this.name}_bucket`,
          labels: { ...s.labels, le: i < this.buckets.length ? this.buckets[i]! : '+Inf' },
          value: cumulative,
        });
      }
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset (): void {
    this.series.clear();
  }
}

/** A counter that follows a running total kept elsewhere (the pool's own counters). */
function counterFrom (registry: client.Registry, name: string, help: string, total: () => number): void {
  countersFrom(registry, name, help, '', { '': total });
}

/** One counter per label value (`label` empty: one unlabelled), each following its running total. */
function countersFrom (
  registry: client.Registry,
  name: string,
  help: string,
  label: string,
  totals: Record<string, () => number>
): void {
  const seen = new Map<string, number>();
  registry.registerMetric(
    new client.Counter({
      name,
      help,
      labelNames: label ? [label] : [],
      registers: [],
      collect () {
        for (const [value, total] of Object.entries(totals)) {
          const now = total();
          const before = seen.get(value) ?? 0;
          if (now > before) label ? this.inc({ [label]: value }, now - before) : this.inc(now - before);
          seen.set(value, now);
        }
      },
    })
  );
}

/** The exposition text of /metrics. */
export interface MetricsText {
  contentType: string;
  body: string;
}

/**
 * With workers (given by src/server/cluster.ts): this process's registry joins the cluster's, and
 * what it returns reads every worker's metrics, summed by the primary.
 */
export type ClusterMetrics = (registry: client.Registry) => () => Promise<MetricsText>;

export default fp(
  async (fastify: FastifyInstance) => {
    const {
      config,
      database: { url },
      worker,
    } = fastify;
    const bouncer = behindBouncer(config) ? new BouncerStats(url) : undefined;
    fastify.decorate(
      'metrics',
      createMetrics(
        () => fastify.store.stats(),
        () => fastify.live.gauges.inFlight(),
        bouncer,
        fastify.replicas,
        poolName(url),
        worker?.clusterMetrics
      )
    );
    fastify.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
      const { contentType, body } = await fastify.metrics.text();
      return reply.type(contentType).send(body);
    });
    if (bouncer) fastify.addHook('onClose', () => bouncer.close());
  },
  { name: 'metrics', dependencies: ['store', 'live'] }
);
