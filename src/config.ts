// Every setting, parsed and validated once at the edge.
// Precedence: CLI flag > environment variable > .env file > default.
import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { maskSecrets, type PoolKind } from 'pg-queuepool';

export type Mode = 'blocking' | 'nonblocking';
/**
 * How the dashboard page reaches the live stream: MONITOR_PORT itself, or /live/ on its own origin through a reverse
 * proxy.
 */
export type LiveStream = 'port' | 'proxy';

export interface Config {
  host: string;
  port: number;
  allowedHosts: string[] | undefined;
  databaseUrl: string | undefined;
  dataDir: string;
  pgMaxConnections: number;
  connectTimeout: number;
  sleepSeconds: number;
  appMode: Mode;
  dbMode: Mode;
  pool: PoolKind;
  poolSize: number;
  poolMaxOverflow: number;
  poolTimeout: number;
  poolQueueMax: number;
  queryTimeout: number;
  poolHealthCheck: number;
  dbKeepalive: number;
  leakDetection: number;
  statementTimeout: number;
  workers: number;
  hosts: number;
  pgbouncer: boolean;
  pgbouncerPoolSize: number;
  pgbouncerMaxClients: number;
  pgbouncerUrl: string | undefined;
  pgbouncerBin: string | undefined;
  replicas: number;
  databaseReplicaUrls: string[] | undefined;
  replicaMaxLag: MaxLag;
  readAfterTimeout: number;
  requestTimeout: number;
  headersTimeout: number;
  keepAliveTimeout: number;
  shutdownGrace: number;
  shutdownDelay: number;
  monitorPort: number;
  liveStream: LiveStream;
  blockDetector: boolean;
  blockThreshold: number;
  logLevel: string;
  logSql: boolean;
}

/**
 * REPLICA_MAX_LAG: how far behind the primary a replica may be and still serve reads, in seconds or in bytes of WAL.
 */
export class MaxLag {
  constructor (
    readonly text: string,
    readonly seconds?: number,
    readonly bytes?: number
  ) {}

  /** True when a replica this far behind is out of rotation. */
  exceeded (lagSeconds: number, lagBytes: number): boolean {
    return this.seconds !== undefined ? lagSeconds > this.seconds : lagBytes > this.bytes!;
  }

  toString (): string {
    return this.text;
  }
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A parser's "no", with the reason when it knows better than the setting's `accepts`. */
export class Invalid {
  constructor (readonly reason?: string) {}
}

export type Parse<T> = (raw: string) => T | Invalid;

interface Setting<T> {
  env: string;
  flag: string;
  default: T;
  accepts: string;
  help: string;
  parse: Parse<T>;
  /** A value that may hold a password: shown with it masked, in errors too. */
  secret?: boolean;
}

const MODES = ['blocking', 'nonblocking'] as const;

/** The longest sleep a request may ask of the sleep routes (?seconds=), in seconds: a part of the deadlines. */
export const MAX_SLEEP_SECONDS = 60;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

// Plain decimal only: Number() would also read "0x10", " 5", "+5" and "5e0"; a sign only where negatives are allowed.
// The CLI's own arguments are read by the same two (src/cli/args.ts).
export function int (min: number, max: number): Parse<number> {
  const form = min < 0 ? /^-?\d+$/ : /^\d+$/;
  return (raw) => (form.test(raw) && Number(raw) >= min && Number(raw) <= max ? Number(raw) : new Invalid());
}

export function num (min: number, max: number): Parse<number> {
  const form = min < 0 ? /^-?\d+(\.\d+)?$/ : /^\d+(\.\d+)?$/;
  return (raw) => (form.test(raw) && Number(raw) >= min && Number(raw) <= max ? Number(raw) : new Invalid());
}

function oneOf<T extends string> (values: readonly T[]): Parse<T> {
  return (raw) => ((values as readonly string[]).includes(raw) ? (raw as T) : new Invalid());
}

const bool: Parse<boolean> = (raw) => {
  const v = raw.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return new Invalid();
};

const EXAMPLE_URL = 'postgresql://user:password@host:5432/database';

/** A PostgreSQL connection URL, with the reason when it is not one. */
const postgresUrl: Parse<string> = (raw) => {
  if (/^\s*\w+\s*=/.test(raw)) {
    return new Invalid(`the key=value form is not accepted; write it as a URL: ${EXAMPLE_URL}`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1];
  if (!scheme) return new Invalid(`expected a URL such as ${EXAMPLE_URL}`);
  if (!/^postgres(ql)?$/i.test(scheme)) {
    return new Invalid(`expected a postgres:// or postgresql:// URL, not ${scheme}:`);
  }
  // The authority without its user:password@ (a password may hold a colon; the port follows the host).
  const authority = /^[^:]+:\/\/(?:[^@/?#]*@)?([^/?#]*)/.exec(raw)?.[1] ?? '';
  const port = /^(?:\[[^\]]*\]|[^:[]*):(.*)$/.exec(authority)?.[1];
  if (port !== undefined && port !== '' && !/^\d+$/.test(port)) {
    return new Invalid(`the port ${JSON.stringify(port)} is not a number`);
  }
  if (port && Number(port) > 65535) return new Invalid(`the port ${port} is above 65535`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return new Invalid(`it is not a valid URL; expected one such as ${EXAMPLE_URL}`);
  }
  if (!url.hostname) return new Invalid(`it names no host; expected a URL such as ${EXAMPLE_URL}`);
  return raw;
};

/** URLs separated by commas, each checked like DATABASE_URL. */
const postgresUrls: Parse<string[]> = (raw) => {
  const urls = raw
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  if (urls.length === 0) return new Invalid();
  for (const [i, url] of urls.entries()) {
    const checked = postgresUrl(url);
    if (checked instanceof Invalid) return new Invalid(`URL ${i + 1}: ${checked.reason}`);
  }
  return urls;
};

const BYTE_UNITS: Record<string, number> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

const maxLag: Parse<MaxLag> = (raw) => {
  const time = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(raw);
  if (time) {
    const seconds = Number(time[1]) / (time[2] === 'ms' ? 1000 : 1);
    return seconds >= 0.01 && seconds <= 3600
      ? new MaxLag(raw, seconds)
      : new Invalid('a lag in time must be from 10ms to 3600s');
  }
  const size = /^(\d+)(B|kB|MB|GB)$/.exec(raw);
  if (size) {
    const bytes = Number(size[1]) * BYTE_UNITS[size[2]!]!;
    return bytes <= 1024 ** 4
      ? new MaxLag(raw, undefined, bytes)
      : new Invalid('a lag in bytes must be at most 1024GB');
  }
  return new Invalid();
};

const nonEmpty: Parse<string> = (raw) => (raw.trim() === '' ? new Invalid() : raw);

/** Host names (and IP addresses, [IPv6] in brackets) separated by commas; * for any. */
const hostList: Parse<string[]> = (raw) => {
  const hosts = raw
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const bad = hosts.find(
    (h) =>
      h !== '*' && !/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$/.test(h)
  );
  if (bad !== undefined || hosts.length === 0) {
    return new Invalid(bad === undefined ? undefined : `${JSON.stringify(bad)} is not a host name`);
  }
  return hosts;
};

function setting<T> (s: Setting<T>): Setting<T> {
  return s;
}

export const SETTINGS = {
  host: setting({
    env: 'HOST',
    flag: 'host',
    default: '127.0.0.1',
    accepts: 'an interface address',
    help: 'Address to listen on',
    parse: nonEmpty,
  }),
  port: setting({
    env: 'PORT',
    flag: 'port',
    default: 8000,
    accepts: 'an integer from 0 to 65535',
    help: 'TCP port to listen on (0 = any free port)',
    parse: int(0, 65535),
  }),
  allowedHosts: setting<string[] | undefined>({
    env: 'ALLOWED_HOSTS',
    flag: 'allowed-hosts',
    default: undefined,
    accepts: 'host names separated by commas, or *',
    help:
      'Host names the service answers to (the Host header); others get 421 (default: 127.0.0.1, localhost, [::1] ' +
      'and HOST; * for any)',
    parse: hostList,
  }),
  databaseUrl: setting<string | undefined>({
    env: 'DATABASE_URL',
    flag: 'database-url',
    default: undefined,
    accepts: 'a postgres:// or postgresql:// URL',
    help: 'Use this PostgreSQL server instead of the embedded one',
    parse: postgresUrl,
    secret: true,
  }),
  dataDir: setting({
    env: 'DATA_DIR',
    flag: 'data-dir',
    default: '.data',
    accepts: 'a directory path',
    help: 'Where the embedded PostgreSQL keeps its files (in DATA_DIR/postgres)',
    parse: nonEmpty,
  }),
  pgMaxConnections: setting({
    env: 'PG_MAX_CONNECTIONS',
    flag: 'pg-max-connections',
    default: 100,
    accepts: 'an integer from 5 to 10000',
    help: "Embedded PostgreSQL's max_connections",
    parse: int(5, 10000),
  }),
  connectTimeout: setting({
    env: 'CONNECT_TIMEOUT',
    flag: 'connect-timeout',
    default: 10,
    accepts: 'a number of seconds from 0.1 to 600',
    help:
      'How long one connection to PostgreSQL may take: at start-up, and each new connection of the pool (within ' +
      'POOL_TIMEOUT)',
    parse: num(0.1, 600),
  }),
  sleepSeconds: setting({
    env: 'SLEEP_SECONDS',
    flag: 'sleep-seconds',
    default: 5,
    accepts: `a number from 0 to ${MAX_SLEEP_SECONDS}`,
    help: 'Default wait of the /sleep/ routes, in seconds',
    parse: num(0, MAX_SLEEP_SECONDS),
  }),
  appMode: setting<Mode>({
    env: 'APP_MODE',
    flag: 'app-mode',
    default: 'nonblocking',
    accepts: MODES.join(' or '),
    help: 'How /sleep/node/ waits: blocking stalls the event loop, nonblocking uses a timer',
    parse: oneOf(MODES),
  }),
  dbMode: setting<Mode>({
    env: 'DB_MODE',
    flag: 'db-mode',
    default: 'nonblocking',
    accepts: MODES.join(' or '),
    help: 'How database calls wait: blocking stalls the event loop for the round trip, nonblocking uses the async pool',
    parse: oneOf(MODES),
  }),
  pool: setting<PoolKind>({
    env: 'POOL',
    flag: 'pool',
    default: 'queue',
    accepts: 'queue or null',
    help: 'queue: QueuePool (size + overflow, FIFO wait); null: a new connection per request (NullPool)',
    // none: this setting's earlier name for null, still read.
    parse: (raw) => oneOf(['queue', 'null'] as const)(raw === 'none' ? 'null' : raw),
  }),
  poolSize: setting({
    env: 'POOL_SIZE',
    flag: 'pool-size',
    default: 5,
    accepts: 'an integer from 1 to 1000',
    help: 'Connections kept open per process',
    parse: int(1, 1000),
  }),
  poolMaxOverflow: setting({
    env: 'POOL_MAX_OVERFLOW',
    flag: 'pool-max-overflow',
    default: 10,
    accepts: 'an integer from 0 to 1000',
    help: 'Extra connections opened under load, closed again when idle',
    parse: int(0, 1000),
  }),
  poolTimeout: setting({
    env: 'POOL_TIMEOUT',
    flag: 'pool-timeout',
    default: 30,
    accepts: 'a number of seconds from 0.001 to 3600',
    help: 'How long a request waits for a connection before HTTP 503',
    parse: num(0.001, 3600),
  }),
  poolQueueMax: setting({
    env: 'POOL_QUEUE_MAX',
    flag: 'pool-queue-max',
    default: 1000,
    accepts: 'an integer from 0 to 1000000',
    help: 'Requests that may wait for a connection; beyond it, an immediate 503',
    parse: int(0, 1_000_000),
  }),
  queryTimeout: setting({
    env: 'QUERY_TIMEOUT',
    flag: 'query-timeout',
    default: 15,
    accepts: 'a number of seconds from 0.1 to 3600',
    help:
      "How long each query may wait for its answer, on the service's side, whatever the network does: then 504 " +
      'QUERY_TIMEOUT, the query cancelled and its connection closed (the sleep routes add their sleep). With ' +
      'POOL_TIMEOUT it bounds every answer',
    parse: num(0.1, 3600),
  }),
  poolHealthCheck: setting({
    env: 'POOL_HEALTH_CHECK',
    flag: 'pool-health-check',
    default: 30,
    accepts: 'a number of seconds from 0 to 3600 (0 = off)',
    help:
      'How often idle pool connections are checked in the background (an empty query, answered within 2 s), so ' +
      'that a dead one is replaced before a request meets it (0 = off)',
    parse: num(0, 3600),
  }),
  dbKeepalive: setting({
    env: 'DB_KEEPALIVE',
    flag: 'db-keepalive',
    default: 10,
    accepts: 'a number of seconds from 0 to 7200 (0 = off)',
    help:
      'TCP keepalive on database connections: seconds of silence before the first probe, then 10 probes 1 s ' +
      'apart, on both ends (0 = off)',
    parse: num(0, 7200),
  }),
  leakDetection: setting({
    env: 'LEAK_DETECTION',
    flag: 'leak-detection',
    default: 20,
    accepts: 'a number of seconds from 0 to 3600 (0 = off)',
    help:
      'A database connection held longer than this (the sleep routes add their sleep) is reported as leaked: a ' +
      'warn log line naming the code that checked it out (file:line) and its route, /metrics and the dashboard (0 = ' +
      'off)',
    parse: num(0, 3600),
  }),
  statementTimeout: setting({
    env: 'STATEMENT_TIMEOUT',
    flag: 'statement-timeout',
    default: 0,
    accepts: 'a number of seconds from 0 to 3600 (0 = off)',
    help: "PostgreSQL's statement_timeout for our connections (0 = off); below QUERY_TIMEOUT",
    parse: num(0, 3600),
  }),
  workers: setting({
    env: 'WORKERS',
    flag: 'workers',
    default: 1,
    accepts: 'an integer from 1 to 64',
    help: 'Processes serving requests (node:cluster), each with its own pool',
    parse: int(1, 64),
  }),
  hosts: setting({
    env: 'HOSTS',
    flag: 'hosts',
    default: 1,
    accepts: 'an integer from 1 to 1000',
    help:
      'Hosts running this service against the same PostgreSQL: the budget check counts HOSTS x WORKERS x ' +
      '(POOL_SIZE + POOL_MAX_OVERFLOW), or HOSTS x PGBOUNCER_POOL_SIZE with a PgBouncer per host',
    parse: int(1, 1000),
  }),
  pgbouncer: setting({
    env: 'PGBOUNCER',
    flag: 'pgbouncer',
    default: false,
    accepts: 'on or off',
    help: 'Start a PgBouncer (transaction mode) in front of PostgreSQL and pool through it',
    parse: bool,
  }),
  pgbouncerPoolSize: setting({
    env: 'PGBOUNCER_POOL_SIZE',
    flag: 'pgbouncer-pool-size',
    default: 20,
    accepts: 'an integer from 1 to 10000',
    help: "PgBouncer's server connections (default_pool_size)",
    parse: int(1, 10000),
  }),
  pgbouncerMaxClients: setting({
    env: 'PGBOUNCER_MAX_CLIENTS',
    flag: 'pgbouncer-max-clients',
    default: 2000,
    accepts: 'an integer from 1 to 100000',
    help: "PgBouncer's max_client_conn",
    parse: int(1, 100000),
  }),
  pgbouncerUrl: setting<string | undefined>({
    env: 'PGBOUNCER_URL',
    flag: 'pgbouncer-url',
    default: undefined,
    accepts: 'a postgres:// or postgresql:// URL',
    help: 'Pool through this existing PgBouncer (transaction mode) instead',
    parse: postgresUrl,
    secret: true,
  }),
  pgbouncerBin: setting<string | undefined>({
    env: 'PGBOUNCER_BIN',
    flag: 'pgbouncer-bin',
    default: undefined,
    accepts: 'a path to the pgbouncer program',
    help: 'The pgbouncer program for PGBOUNCER=on (default: pgbouncer on PATH, then /usr/sbin/pgbouncer)',
    parse: nonEmpty,
  }),
  replicas: setting({
    env: 'REPLICAS',
    flag: 'replicas',
    default: 0,
    accepts: 'an integer from 0 to 8',
    help:
      'Streaming standbys of the embedded PostgreSQL to start (in DATA_DIR/replica-N): reads go to them, writes ' +
      'to the primary',
    parse: int(0, 8),
  }),
  databaseReplicaUrls: setting<string[] | undefined>({
    env: 'DATABASE_REPLICA_URLS',
    flag: 'database-replica-urls',
    default: undefined,
    accepts: 'postgres:// or postgresql:// URLs separated by commas',
    help: 'Your own standbys of DATABASE_URL: reads go to them, writes to DATABASE_URL',
    parse: postgresUrls,
    secret: true,
  }),
  replicaMaxLag: setting({
    env: 'REPLICA_MAX_LAG',
    flag: 'replica-max-lag',
    default: new MaxLag('5s', 5),
    accepts: 'a time (500ms, 5s) or an amount of WAL (64kB, 16MB)',
    help: "A replica further behind the primary than this is taken out of the reads' rotation until it catches up",
    parse: maxLag,
  }),
  readAfterTimeout: setting({
    env: 'READ_AFTER_TIMEOUT',
    flag: 'read-after-timeout',
    default: 1,
    accepts: 'a number of seconds from 0 to 60',
    help:
      "How long a read that carries X-Read-After (a write's WAL position) may wait for a replica to replay it " +
      'before it goes to the primary',
    parse: num(0, 60),
  }),
  requestTimeout: setting({
    env: 'REQUEST_TIMEOUT',
    flag: 'request-timeout',
    default: 30,
    accepts: 'a number of seconds from 1 to 3600',
    help:
      'How long a client may take to send a whole request (headers and body); a slower one is cut (off in the ' +
      'blocking modes, where the server is what is slow)',
    parse: num(1, 3600),
  }),
  headersTimeout: setting({
    env: 'HEADERS_TIMEOUT',
    flag: 'headers-timeout',
    default: 10,
    accepts: 'a number of seconds from 1 to 3600',
    help: 'How long a client may take to send the request headers (at most REQUEST_TIMEOUT; off in the blocking modes)',
    parse: num(1, 3600),
  }),
  keepAliveTimeout: setting({
    env: 'KEEP_ALIVE_TIMEOUT',
    flag: 'keep-alive-timeout',
    default: 5,
    accepts: 'a number of seconds from 0 to 600',
    help: 'How long an idle keep-alive connection stays open',
    parse: num(0, 600),
  }),
  shutdownGrace: setting({
    env: 'SHUTDOWN_GRACE',
    flag: 'shutdown-grace',
    default: 30,
    accepts: 'a number of seconds from 0 to 3600',
    help: 'How long in-flight requests may run after SIGTERM/SIGINT',
    parse: num(0, 3600),
  }),
  shutdownDelay: setting({
    env: 'SHUTDOWN_DELAY',
    flag: 'shutdown-delay',
    default: 0,
    accepts: 'a number of seconds from 0 to 600',
    help:
      'After SIGTERM, how long /readyz answers 503 while requests are still served and accepted, before the ' +
      "service stops listening: time for a load balancer's health check to take this host out",
    parse: num(0, 600),
  }),
  monitorPort: setting({
    env: 'MONITOR_PORT',
    flag: 'monitor-port',
    default: 0,
    accepts: 'an integer from 0 to 65535',
    help: "Port of the dashboard's live stream, every worker's under /live/ (0 = any free port)",
    parse: int(0, 65535),
  }),
  liveStream: setting<LiveStream>({
    env: 'LIVE_STREAM',
    flag: 'live-stream',
    default: 'port',
    accepts: 'port or proxy',
    help:
      "Where the dashboard page reads the live stream: port = MONITOR_PORT, under the page's host name; proxy = " +
      "/live/ on the page's own origin, which a reverse proxy sends to a fixed MONITOR_PORT (docs/operations.md)",
    parse: oneOf(['port', 'proxy'] as const),
  }),
  blockDetector: setting({
    env: 'BLOCK_DETECTOR',
    flag: 'block-detector',
    default: true,
    accepts: 'on or off',
    help:
      'Name what blocks the event loop (the event-loop-block-detector package): a watcher thread reads the stack ' +
      'of the main thread through an in-process inspector session (no port) when its heartbeat stalls',
    parse: bool,
  }),
  blockThreshold: setting({
    env: 'BLOCK_THRESHOLD_MS',
    flag: 'block-threshold-ms',
    default: 100,
    accepts: 'an integer of milliseconds from 20 to 60000',
    help: 'How long the event loop must stall before the block detector takes its stack',
    parse: int(20, 60_000),
  }),
  logLevel: setting({
    env: 'LOG_LEVEL',
    flag: 'log-level',
    default: 'info',
    accepts: LOG_LEVELS.join(', '),
    help: 'Log level (debug logs every request)',
    parse: oneOf(LOG_LEVELS),
  }),
  logSql: setting({
    env: 'LOG_SQL',
    flag: 'log-sql',
    default: false,
    accepts: 'on or off',
    help: 'Log every SQL statement (SQLALCHEMY_ECHO)',
    parse: bool,
  }),
} satisfies { [K in keyof Config]: Setting<Config[K]> };

type Key = keyof Config;
export const SETTING_KEYS = Object.keys(SETTINGS) as Key[];

/** On/off settings: a bare flag (--pgbouncer) means on. */
export const isSwitch = (key: Key) => typeof SETTINGS[key].default === 'boolean';

/** Reads `.env` (if present) without letting it override the real environment. */
export function environment (
  cwd = process.cwd(),
  env: NodeJS.ProcessEnv = process.env
): Record<string, string | undefined> {
  const file = `${cwd}/.env`;
  const fromFile = existsSync(file) ? parseEnv(readFileSync(file, 'utf8')) : {};
  return { ...fromFile, ...env };
}

/**
 * Builds the typed config from flags (already parsed, keyed like Config) and the environment.
 * Throws ConfigError with one line naming the setting, the value (its password masked) and what
 * is wrong with it.
 */
export function loadConfig (flags: Partial<Record<Key, string | boolean>> = {}, env = environment()): Config {
  const config = {} as Record<Key, unknown>;
  for (const key of SETTING_KEYS) {
    const s = SETTINGS[key] as Setting<unknown>;
    const flag = flags[key];
    const fromFlag = typeof flag === 'boolean' ? String(flag) : flag; // --log-sql, --pgbouncer
    const raw = typeof fromFlag === 'string' ? fromFlag : env[s.env];
    if (raw === undefined || (raw === '' && fromFlag === undefined)) {
      config[key] = s.default;
      continue;
    }
    const value = s.parse(raw);
    if (value instanceof Invalid) {
      const name = typeof fromFlag === 'string' ? `--${s.flag}` : s.env;
      const shown = s.secret ? maskSecrets(raw) : raw;
      throw new ConfigError(`Invalid ${name}=${JSON.stringify(shown)}: ${value.reason ?? `expected ${s.accepts}`}`);
    }
    config[key] = value;
  }
  const parsed = config as unknown as Config;
  if (parsed.headersTimeout > parsed.requestTimeout) {
    throw new ConfigError(
      `Invalid HEADERS_TIMEOUT=${parsed.headersTimeout}: it must not exceed ` +
        `REQUEST_TIMEOUT (${parsed.requestTimeout} s), which covers the headers too`
    );
  }
  if (parsed.liveStream === 'proxy' && parsed.monitorPort === 0) {
    throw new ConfigError(
      'Invalid LIVE_STREAM=proxy: it needs a fixed MONITOR_PORT, the port your reverse proxy sends /live/ to ' +
        '(MONITOR_PORT=0 picks any free port)'
    );
  }
  if (parsed.replicas > 0 && parsed.databaseUrl) {
    throw new ConfigError(
      `Invalid REPLICAS=${parsed.replicas}: it starts standbys of the embedded PostgreSQL, and DATABASE_URL is set; ` +
        'name your own standbys in DATABASE_REPLICA_URLS'
    );
  }
  if (parsed.replicas > 0 && parsed.databaseReplicaUrls) {
    throw new ConfigError(
      'REPLICAS and DATABASE_REPLICA_URLS are both set: use one (REPLICAS for standbys of the embedded PostgreSQL)'
    );
  }
  if (parsed.databaseReplicaUrls && !parsed.databaseUrl) {
    throw new ConfigError(
      'DATABASE_REPLICA_URLS needs DATABASE_URL, the primary they replicate (REPLICAS=N starts standbys of the ' +
        'embedded PostgreSQL)'
    );
  }
  if (replicated(parsed) && behindBouncer(parsed)) {
    throw new ConfigError(
      `${parsed.replicas ? 'REPLICAS' : 'DATABASE_REPLICA_URLS'} cannot be combined ` +
        `with ${parsed.pgbouncer ? 'PGBOUNCER=on' : 'PGBOUNCER_URL'}: ` +
        'a PgBouncer fronts one server; put one in front ' +
        'of each server and name them in DATABASE_URL and DATABASE_REPLICA_URLS'
    );
  }
  if (replicated(parsed) && parsed.dbMode === 'blocking') {
    throw new ConfigError(
      'DB_MODE=blocking serves every query from one pool in its bridge thread; replicas need DB_MODE=nonblocking'
    );
  }
  if (parsed.statementTimeout > 0 && parsed.statementTimeout >= parsed.queryTimeout) {
    throw new ConfigError(
      `Invalid STATEMENT_TIMEOUT=${parsed.statementTimeout}: it must be below QUERY_TIMEOUT (${parsed.queryTimeout} ` +
        's), so that PostgreSQL ends a slow query itself; ' +
        "QUERY_TIMEOUT is the service's last resort when PostgreSQL " +
        'cannot be reached'
    );
  }
  if (parsed.monitorPort !== 0 && parsed.monitorPort === parsed.port) {
    throw new ConfigError(
      `Invalid MONITOR_PORT=${parsed.monitorPort}: it is PORT too; the live stream needs a port of its own`
    );
  }
  return parsed;
}

/** One line of --help for a setting: its variable, what it does, its default. */
export function settingHelp (key: Key): string {
  const s = SETTINGS[key] as Setting<unknown>;
  const def =
    s.default === undefined
      ? ''
      : ` (default ${s.default === true ? 'on' : s.default === false ? 'off' : String(s.default)})`;
  return `${s.env}: ${s.help}${def}`;
}

/** True when the event loop is stalled on purpose (APP_MODE or DB_MODE blocking). */
export const blocking = (config: Pick<Config, 'appMode' | 'dbMode'>) =>
  config.appMode === 'blocking' || config.dbMode === 'blocking';

/** True when reads go to standbys (REPLICAS or DATABASE_REPLICA_URLS). */
export const replicated = (config: Pick<Config, 'replicas' | 'databaseReplicaUrls'>) =>
  config.replicas > 0 || Boolean(config.databaseReplicaUrls);

/** True when the pools reach PostgreSQL through a PgBouncer (ours or PGBOUNCER_URL). */
export const behindBouncer = (config: Pick<Config, 'pgbouncer' | 'pgbouncerUrl'>) =>
  config.pgbouncer || Boolean(config.pgbouncerUrl);

/**
 * The host names the service answers to (the Host header) and whose pages may read the live
 * stream: ALLOWED_HOSTS, or the bound address and the loopback names. The wildcard addresses
 * are not names anyone reaches a service by. ['*']: any.
 */
export function allowedHosts (config: Pick<Config, 'host' | 'allowedHosts'>): string[] {
  if (config.allowedHosts) return config.allowedHosts;
  const host = config.host.toLowerCase();
  const bound = ['0.0.0.0', '::', '[::]'].includes(host)
    ? []
    : [host.includes(':') && !host.startsWith('[') ? `[${host}]` : host];
  return [...new Set([...bound, '127.0.0.1', 'localhost', '[::1]'])];
}

/** Connections one process may open: the figure the max_connections budget is made of. */
export function connectionsPerProcess (config: Config): number {
  return config.poolSize + config.poolMaxOverflow;
}
