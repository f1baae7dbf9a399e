// The settings: parsed and validated once, with one message naming the setting, the value and
// what is accepted. Precedence: flag > environment > .env > default.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseEnv } from 'node:util';
import { maskSecrets } from 'pg-queuepool';
import { firstGiven, intArg, intListArg, numArg } from '../../src/cli/args.ts';
import { allowedHosts, ConfigError, environment, loadConfig, SETTINGS } from '../../src/config.ts';

const fails = (env: Record<string, string>, message: string, flags = {}) =>
  assert.throws(
    () => loadConfig(flags, env),
    (e: Error) => e instanceof ConfigError && e.message === message
  );

describe('settings', () => {
  test("defaults: the original's pool (5 + 10, 30 s), 5 s sleeps, non-blocking, 127.0.0.1:8000", () => {
    const c = loadConfig({}, {});
    assert.deepEqual(
      [
        c.host,
        c.port,
        c.poolSize,
        c.poolMaxOverflow,
        c.poolTimeout,
        c.sleepSeconds,
        c.appMode,
        c.dbMode,
        c.pool,
        c.workers,
        c.pgbouncer,
        c.logSql,
      ],
      ['127.0.0.1', 8000, 5, 10, 30, 5, 'nonblocking', 'nonblocking', 'queue', 1, false, false]
    );
    assert.equal(c.databaseUrl, undefined);
  });

  test("POOL names the NullPool as the package does (null); none, the setting's earlier word, is still read", () => {
    assert.equal(loadConfig({}, { POOL: 'null' }).pool, 'null');
    assert.equal(loadConfig({}, { POOL: 'none' }).pool, 'null');
    assert.equal(loadConfig({ pool: 'none' }, {}).pool, 'null');
  });

  test('each kind of bad value gets one line: the setting, the value, what is accepted', () => {
    fails({ POOL_SIZE: 'abc' }, 'Invalid POOL_SIZE="abc": expected an integer from 1 to 1000');
    fails({ POOL_SIZE: '0' }, 'Invalid POOL_SIZE="0": expected an integer from 1 to 1000');
    fails({ WORKERS: '2.5' }, 'Invalid WORKERS="2.5": expected an integer from 1 to 64');
    fails({ PORT: '70000' }, 'Invalid PORT="70000": expected an integer from 0 to 65535');
    fails({ APP_MODE: 'sometimes' }, 'Invalid APP_MODE="sometimes": expected blocking or nonblocking');
    fails({ POOL: 'static' }, 'Invalid POOL="static": expected queue or null');
    fails({ SLEEP_SECONDS: '-1' }, 'Invalid SLEEP_SECONDS="-1": expected a number from 0 to 60');
    fails({ POOL_TIMEOUT: '0' }, 'Invalid POOL_TIMEOUT="0": expected a number of seconds from 0.001 to 3600');
    fails({ LOG_SQL: 'maybe' }, 'Invalid LOG_SQL="maybe": expected on or off');
    fails(
      { LOG_LEVEL: 'loud' },
      'Invalid LOG_LEVEL="loud": expected fatal, error, warn, info, debug, trace, silent'
    );
    fails(
      { DATABASE_URL: 'mysql://localhost/x' },
      'Invalid DATABASE_URL="mysql://localhost/x": expected a postgres:// or postgresql:// URL, not mysql:'
    );
  });

  test('numbers are plain decimals: hex, blanks, signs and exponents are refused', () => {
    fails({ POOL_TIMEOUT: '0x10' }, 'Invalid POOL_TIMEOUT="0x10": expected a number of seconds from 0.001 to 3600');
    fails({ POOL_SIZE: ' 5' }, 'Invalid POOL_SIZE=" 5": expected an integer from 1 to 1000');
    fails({ WORKERS: '+2' }, 'Invalid WORKERS="+2": expected an integer from 1 to 64');
    fails({ SLEEP_SECONDS: '1e1' }, 'Invalid SLEEP_SECONDS="1e1": expected a number from 0 to 60');
    assert.equal(loadConfig({}, { SLEEP_SECONDS: '0.25' }).sleepSeconds, 0.25);
    // No sign where no negative is allowed, not even "-0".
    fails({ SLEEP_SECONDS: '-0' }, 'Invalid SLEEP_SECONDS="-0": expected a number from 0 to 60');
    fails({ PORT: '-0' }, 'Invalid PORT="-0": expected an integer from 0 to 65535');
  });

  test("the commands' own numbers are read by the settings' parsers: the same plain decimals", () => {
    assert.equal(intArg(1, 10)('7'), 7);
    assert.equal(numArg(0, 60)('0.5'), 0.5);
    for (const raw of ['0x10', ' 5', '+2', '1e1', '-0', '11']) {
      assert.throws(() => intArg(0, 10)(raw), { message: 'expected an integer from 0 to 10' }, raw);
    }
    assert.throws(() => numArg(0, 60)('-0'), { message: 'expected a number from 0 to 60' });
    assert.deepEqual(intListArg(1, 8)('1,2,4,8'), [1, 2, 4, 8]);
    assert.throws(() => intListArg(1, 8)('1,+2'), /expected integers from 1 to 8/);
    const given = { rate: undefined, allowWrites: true, p99: 5 };
    assert.equal(firstGiven(given, ['rate', 'allowWrites', 'p99']), '--allow-writes');
    assert.equal(firstGiven({ ...given, allowWrites: false }, ['rate', 'allowWrites']), undefined);
  });

  test('a URL setting says exactly what is wrong, and never shows the password', () => {
    fails(
      { DATABASE_URL: 'mysql://root:S3cret@127.0.0.1/x' },
      'Invalid DATABASE_URL="mysql://root:***@127.0.0.1/x": expected a postgres:// or postgresql:// URL, not mysql:'
    );
    fails(
      { DATABASE_URL: 'postgresql://u:S3cret@h:99999/x' },
      'Invalid DATABASE_URL="postgresql://u:***@h:99999/x": the port 99999 is above 65535'
    );
    fails(
      { DATABASE_URL: 'postgres://u:S3cret@h:5o32/x' },
      'Invalid DATABASE_URL="postgres://u:***@h:5o32/x": the port "5o32" is not a number'
    );
    fails(
      { DATABASE_URL: "host=h user=u password='S3 cret'" },
      'Invalid DATABASE_URL="host=h user=u password=***": the key=value form is not accepted; write it as a URL: ' +
        'postgresql://user:password@host:5432/database'
    );
    fails(
      { DATABASE_URL: 'localhost:5432' },
      'Invalid DATABASE_URL="localhost:5432": expected a postgres:// or postgresql:// URL, not localhost:'
    );
    fails(
      { DATABASE_URL: 'postgres:///x' },
      'Invalid DATABASE_URL="postgres:///x": it names no host; expected a URL such as ' +
        'postgresql://user:password@host:5432/database'
    );
    assert.equal(
      loadConfig({}, { DATABASE_URL: 'postgresql://u:p@[::1]:5432/x' }).databaseUrl,
      'postgresql://u:p@[::1]:5432/x'
    );
    // A password and no port (the port is 5432), an IPv6 host without one, a colon in a password.
    for (const url of [
      'postgresql://app:S3cret@db1/todos',
      'postgresql://u:p@[::1]/x',
      'postgresql://u:a:b@h:6432/x',
    ]) {
      assert.equal(loadConfig({}, { DATABASE_URL: url }).databaseUrl, url);
    }
    assert.equal(maskSecrets('postgresql://u:S3cret@h/x?password=also'), 'postgresql://u:***@h/x?password=***');
  });

  test(
    'replicas: REPLICAS, DATABASE_REPLICA_URLS, REPLICA_MAX_LAG in time or WAL, and the combinations they cannot ' +
      'serve',
    () => {
      assert.equal(loadConfig({}, { REPLICAS: '2' }).replicas, 2);
      fails({ REPLICAS: '9' }, 'Invalid REPLICAS="9": expected an integer from 0 to 8');
      const lag = (raw: string) => {
        const l = loadConfig({}, { REPLICA_MAX_LAG: raw }).replicaMaxLag;
        return [l.seconds, l.bytes];
      };
      assert.deepEqual(
        [lag('5s'), lag('250ms'), lag('64kB'), lag('16MB'), lag('100B')],
        [
          [5, undefined],
          [0.25, undefined],
          [undefined, 65536],
          [undefined, 16777216],
          [undefined, 100],
        ]
      );
      const l = loadConfig({}, { REPLICA_MAX_LAG: '1s' }).replicaMaxLag;
      assert.deepEqual([l.exceeded(0.9, 1e9), l.exceeded(1.1, 0)], [false, true]);
      fails(
        { REPLICA_MAX_LAG: '5' },
        'Invalid REPLICA_MAX_LAG="5": expected a time (500ms, 5s) or an amount of WAL (64kB, 16MB)'
      );
      fails({ REPLICA_MAX_LAG: '5ms' }, 'Invalid REPLICA_MAX_LAG="5ms": a lag in time must be from 10ms to 3600s');
      const urls = 'postgresql://u:S3cret@r1/x, postgresql://u:S3cret@r2:5433/x';
      assert.deepEqual(
        loadConfig({}, { DATABASE_URL: 'postgresql://u:S3cret@p/x', DATABASE_REPLICA_URLS: urls })
          .databaseReplicaUrls,
        ['postgresql://u:S3cret@r1/x', 'postgresql://u:S3cret@r2:5433/x']
      );
      fails(
        {
          DATABASE_URL: 'postgresql://u:S3cret@p/x',
          DATABASE_REPLICA_URLS: 'postgresql://u:S3cret@r1/x,mysql://u:S3cret@r2/x',
        },
        'Invalid DATABASE_REPLICA_URLS="postgresql://u:***@r1/x,mysql://u:***@r2/x": ' +
          'URL 2: expected a postgres:// or ' +
          'postgresql:// URL, not mysql:'
      );
      fails(
        { DATABASE_REPLICA_URLS: urls },
        'DATABASE_REPLICA_URLS needs DATABASE_URL, the primary they replicate (REPLICAS=N starts standbys of the ' +
          'embedded PostgreSQL)'
      );
      fails(
        { REPLICAS: '1', DATABASE_URL: 'postgresql://u:S3cret@p/x' },
        'Invalid REPLICAS=1: it starts standbys of the embedded PostgreSQL, and DATABASE_URL is set; name your own ' +
          'standbys in DATABASE_REPLICA_URLS'
      );
      fails(
        { REPLICAS: '1', PGBOUNCER: 'on' },
        'REPLICAS cannot be combined with PGBOUNCER=on: a PgBouncer ' +
          'fronts one server; put one in front of each server ' +
          'and name them in DATABASE_URL and DATABASE_REPLICA_URLS'
      );
      fails(
        { REPLICAS: '1', DB_MODE: 'blocking' },
        'DB_MODE=blocking serves every query from one pool in its bridge thread; replicas need DB_MODE=nonblocking'
      );
    }
  );

  test('ALLOWED_HOSTS: host names and addresses, or *', () => {
    assert.deepEqual(loadConfig({}, { ALLOWED_HOSTS: 'Todo.Example, 10.0.0.7,[::1]' }).allowedHosts, [
      'todo.example',
      '10.0.0.7',
      '[::1]',
    ]);
    assert.deepEqual(loadConfig({}, { ALLOWED_HOSTS: '*' }).allowedHosts, ['*']);
    fails(
      { ALLOWED_HOSTS: 'a.example, http://b.example' },
      'Invalid ALLOWED_HOSTS="a.example, http://b.example": "http://b.example" is not a host name'
    );
  });

  test('client timeouts: HEADERS_TIMEOUT may not exceed REQUEST_TIMEOUT', () => {
    const c = loadConfig({}, {});
    assert.deepEqual([c.requestTimeout, c.headersTimeout, c.keepAliveTimeout], [30, 10, 5]);
    assert.throws(
      () => loadConfig({}, { REQUEST_TIMEOUT: '5', HEADERS_TIMEOUT: '6' }),
      /^ConfigError: Invalid HEADERS_TIMEOUT=6: it must not exceed REQUEST_TIMEOUT \(5 s\), which covers the headers too$/
    );
  });

  test(
    'the deadlines: QUERY_TIMEOUT, POOL_HEALTH_CHECK, ' +
      'DB_KEEPALIVE; STATEMENT_TIMEOUT must be below QUERY_TIMEOUT',
    () => {
      const c = loadConfig({}, {});
      assert.deepEqual([c.queryTimeout, c.poolHealthCheck, c.dbKeepalive, c.connectTimeout], [15, 30, 10, 10]);
      assert.deepEqual(
        [
          loadConfig({}, { POOL_HEALTH_CHECK: '0', DB_KEEPALIVE: '0' }).poolHealthCheck,
          loadConfig({}, { DB_KEEPALIVE: '0' }).dbKeepalive,
        ],
        [0, 0]
      );
      fails({ QUERY_TIMEOUT: '0' }, 'Invalid QUERY_TIMEOUT="0": expected a number of seconds from 0.1 to 3600');
      fails(
        { POOL_HEALTH_CHECK: '-1' },
        'Invalid POOL_HEALTH_CHECK="-1": expected a number of seconds from 0 to 3600 (0 = off)'
      );
      fails({}, 'Invalid --db-keepalive="soon": expected a number of seconds from 0 to 7200 (0 = off)', {
        dbKeepalive: 'soon',
      });
      assert.equal(loadConfig({}, { STATEMENT_TIMEOUT: '10' }).statementTimeout, 10);
      assert.throws(
        () => loadConfig({}, { STATEMENT_TIMEOUT: '20' }),
        /^ConfigError: Invalid STATEMENT_TIMEOUT=20: it must be below QUERY_TIMEOUT \(15 s\), so that PostgreSQL ends a slow query itself/
      );
      assert.equal(loadConfig({}, { STATEMENT_TIMEOUT: '20', QUERY_TIMEOUT: '25' }).queryTimeout, 25);
    }
  );

  test('LIVE_STREAM=proxy needs a fixed MONITOR_PORT, and the stream a port of its own', () => {
    assert.equal(loadConfig({}, {}).liveStream, 'port');
    assert.equal(loadConfig({}, { LIVE_STREAM: 'proxy', MONITOR_PORT: '9100' }).liveStream, 'proxy');
    assert.throws(
      () => loadConfig({}, { LIVE_STREAM: 'proxy' }),
      /^ConfigError: Invalid LIVE_STREAM=proxy: it needs a fixed MONITOR_PORT, the port your reverse proxy sends \/live\/ to/
    );
    assert.throws(
      () => loadConfig({}, { LIVE_STREAM: 'nginx' }),
      /^ConfigError: Invalid LIVE_STREAM="nginx": expected port or proxy$/
    );
    assert.throws(
      () => loadConfig({}, { PORT: '9100', MONITOR_PORT: '9100' }),
      /^ConfigError: Invalid MONITOR_PORT=9100: it is PORT too/
    );
  });

  test('.env.example lists every setting with its default', () => {
    const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    for (const s of Object.values(SETTINGS)) {
      const value =
        s.default === undefined ? '' : s.default === true ? 'on' : s.default === false ? 'off' : String(s.default);
      assert.match(
        example,
        new RegExp(
          `^${s.default === undefined ? '# ' : ''}${s.env}=${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
          'm'
        ),
        s.env
      );
    }
    // And it parses as it is: uncommented, every line is a valid setting.
    loadConfig({}, parseEnv(example));
  });

  test('a flag wins over the environment, and its error names the flag', () => {
    assert.equal(loadConfig({ poolSize: '7' }, { POOL_SIZE: '3' }).poolSize, 7);
    fails({}, 'Invalid --db-mode="async": expected blocking or nonblocking', { dbMode: 'async' });
  });

  test('switches: a bare flag is on; on/off, true/false, yes/no, 1/0 are accepted', () => {
    assert.equal(loadConfig({ pgbouncer: true }, {}).pgbouncer, true);
    assert.equal(loadConfig({ pgbouncer: 'off' }, { PGBOUNCER: 'on' }).pgbouncer, false);
    for (const [raw, value] of [
      ['on', true],
      ['true', true],
      ['yes', true],
      ['1', true],
      ['off', false],
      ['false', false],
      ['no', false],
      ['0', false],
    ] as const) {
      assert.equal(loadConfig({}, { LOG_SQL: raw }).logSql, value, raw);
    }
  });

  test('an empty variable is the default; an empty flag is an error', () => {
    assert.equal(loadConfig({}, { POOL_SIZE: '' }).poolSize, 5);
    fails({}, 'Invalid --pool-size="": expected an integer from 1 to 1000', { poolSize: '' });
  });

  test('.env is read, and the real environment wins over it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anp-env-'));
    try {
      writeFileSync(join(dir, '.env'), 'POOL_MAX_OVERFLOW=3\nWORKERS=2\n');
      const env = environment(dir, { WORKERS: '4' });
      assert.deepEqual([env.POOL_MAX_OVERFLOW, env.WORKERS], ['3', '4']);
      const c = loadConfig({}, env);
      assert.deepEqual([c.poolMaxOverflow, c.workers], [3, 4]);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('every setting has a distinct variable and flag, and its default passes its own parser', () => {
    const all = Object.values(SETTINGS);
    assert.equal(new Set(all.map((s) => s.env)).size, all.length);
    assert.equal(new Set(all.map((s) => s.flag)).size, all.length);
    for (const s of all) {
      if (s.default !== undefined) {
        assert.deepEqual((s.parse as (raw: string) => unknown)(String(s.default)), s.default, s.env);
      }
    }
  });

  test('the host names the dashboard may be opened by: the bound address, and the loopback names', () => {
    assert.deepEqual(allowedHosts({ host: '127.0.0.1', allowedHosts: undefined }), [
      '127.0.0.1',
      'localhost',
      '[::1]',
    ]);
    assert.deepEqual(allowedHosts({ host: '0.0.0.0', allowedHosts: undefined }), [
      '127.0.0.1',
      'localhost',
      '[::1]',
    ]);
    assert.deepEqual(allowedHosts({ host: '10.0.0.5', allowedHosts: undefined }), [
      '10.0.0.5',
      '127.0.0.1',
      'localhost',
      '[::1]',
    ]);
  });
});
