// What the service prints once it listens: where, on what, in which mode, and what to expect.
import { connectionsPerProcess, type Config } from '../config.ts';
import type { FastifyBaseLogger } from 'fastify';
import type { Budget } from '../db/budget.ts';
import { burstSeconds, combinationOf, ORIGINAL, waveCount } from '../scenarios.ts';

/**
 * Says the service is up: on a terminal, the banner, for people; piped (a supervisor, a
 * container's log), one JSON log record with the same facts as fields, so that stdout carries
 * nothing but JSON lines.
 */
export function announce (
  log: FastifyBaseLogger,
  config: Config,
  address: string,
  label: string,
  budget: Budget,
  replicas: string[] = [],
  tty = Boolean(process.stdout.isTTY)
): void {
  const text = banner(config, address, label, budget, replicas);
  if (tty) {
    console.log(text);
    return;
  }
  const [first, ...lines] = text.split('\n');
  const fields = Object.fromEntries(
    lines.map((l) => {
      const at = l.indexOf(' : ');
      return [l.slice(0, at).trim(), l.slice(at + 3)];
    })
  );
  // Whatever LOG_LEVEL says, as the banner is printed whatever it says: it is the line that
  // tells a supervisor (and our own harness) that the service is up.
  log.child({}, { level: 'info' }).info({ address, banner: fields }, first!);
}

/** `replicas`: each standby's label, when reads go to standbys. */
export function banner (
  config: Config,
  address: string,
  label: string,
  budget: Budget,
  replicas: string[] = []
): string {
  const per = connectionsPerProcess(config);
  const combination = combinationOf(config);
  const pool =
    config.pool === 'null'
      ? 'NullPool: a new connection per request (no limit but max_connections)'
      : `QueuePool size ${config.poolSize} + overflow ${config.poolMaxOverflow} per process, ` +
        `timeout ${config.poolTimeout} s`;
  const workers = config.workers > 1 ? `${config.workers} workers (node:cluster)` : '1 process';
  const host = `${config.workers} x ${per} = ${config.workers * per}`;
  const fleet = config.hosts > 1 ? `${config.hosts} hosts x ${config.workers} x ${per} = ${budget.needed}` : host;
  const servers =
    config.hosts > 1 ? `${config.hosts} hosts x ${config.pgbouncerPoolSize}` : `${config.pgbouncerPoolSize}`;
  const budgetLine = config.pgbouncer
    ? `${host} client connections to PgBouncer (max ${config.pgbouncerMaxClients}); the limit that applies is ` +
      `PgBouncer's ${servers} server connections of ${budget.available} available`
    : config.pgbouncerUrl
      ? `${fleet} client connections to the PgBouncer at PGBOUNCER_URL; its own limits apply`
      : config.pool === 'null'
        ? `max_connections ${budget.maxConnections} (${budget.available} available to us)`
        : `${fleet} of ${budget.available} available connections (max_connections is the limit)`;
  return [
    `Listening on ${address}`,
    `  database : ${label}`,
    ...(replicas.length
      ? [
          `  replicas : ${replicas.join('; ')}. Reads go to them (to the primary past their pools, or when none is ` +
            `within REPLICA_MAX_LAG ${config.replicaMaxLag}), writes ` +
            'to the primary; a read with X-Read-After waits up ' +
            `to ${config.readAfterTimeout} s for its write`,
        ]
      : []),
    `  modes    : app sleep ${config.appMode}, database calls ${config.dbMode} (${
      combination.original === '(not in the original)'
        ? 'not in the original'
        : `the original's ${combination.original}`
    })`,
    `  pool     : ${pool}`,
    `  workers  : ${workers}; ${budgetLine}`,
    `  sleep    : ${config.sleepSeconds} s by default, ?seconds= to override (0-60)`,
    ...expectations(config, budget, replicas.length),
    '  routes   : /sleep/node/ /sleep/python/ /sleep/postgres/ /todos/[:id] /healthz /readyz ' +
      `/pool${replicas.length ? ' /servers' : ''} /metrics`,
    `  blocking : /block/{cpu,hash,json,regex,gzip,fs,wait}/ and their twins /offload/.../; ${
      config.blockDetector
        ? 'the ' + `detector names blocks past ${config.blockThreshold} ms`
        : 'the block detector is off'
    }`,
    `  watch    : ${address}/ (live dashboard), ${address}/docs (API docs)`,
  ].join('\n');
}

/** What `npm run client` should show against these settings (one process only: workers share the load unevenly). */
function expectations (config: Config, budget: Budget, replicas: number): string[] {
  if (config.workers > 1) return [];
  const { n, warningN } = ORIGINAL;
  const s = config.sleepSeconds;
  // With replicas, every server's pool serves reads.
  const capacity = config.pgbouncer
    ? config.pgbouncerPoolSize
    : config.pool === 'null'
      ? budget.available
      : (replicas + 1) * connectionsPerProcess(config);
  const fmt = (x: number) => `${Number(x.toFixed(2))} s`;
  return [
    `  expect   : npm run client: ${n} x /sleep/node/ in ${fmt(burstSeconds(n, s, config.appMode))}, ${n} x ` +
      `/sleep/postgres/ in ${fmt(burstSeconds(n, s, config.dbMode))}` +
      (config.dbMode === 'nonblocking'
        ? `; ${warningN} x /sleep/postgres/ in ${waveCount(warningN, capacity)} waves of up to ${capacity}`
        : ''),
  ];
}
