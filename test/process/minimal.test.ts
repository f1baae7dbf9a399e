// examples/minimal, built and started as its README says (node on its compiled file), on real
// PostgreSQL over real sockets: each thing it claims to show, so that the lesson cannot rot.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { freshDatabase, json, onCleanup, request, ROOT, sql, until, type Response } from '../helper.ts';

const EXAMPLE = join(ROOT, 'examples', 'minimal');

interface Running {
  proc: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts the example's compiled server with `env`; resolves once it listens, or with its exit. */
async function start (env: Record<string, string>): Promise<Running> {
  const proc = spawn(process.execPath, [join(EXAMPLE, 'dist', 'server.js')], {
    cwd: EXAMPLE,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORT: '0', DATABASE_URL: '', ...env },
  });
  onCleanup(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const deadline = Date.now() + 30_000;
  let listening: RegExpExecArray | null = null;
  while (!(listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out))) {
    if (proc.exitCode !== null) break;
    if (Date.now() > deadline) throw new Error(`the example did not start:\n${out}`);
    await delay(50);
  }
  return { proc, url: listening?.[1] ?? '', output: () => out, exited };
}

/** Backends of the example (its application_name) running a statement right now. */
async function running (db: string): Promise<string[]> {
  const rows = await sql<{ query: string }>(
    db,
    "SELECT query FROM pg_stat_activity WHERE application_name = 'minimal' AND state = 'active'"
  );
  return rows.map((r) => r.query);
}

describe('examples/minimal', () => {
  test('it is the lesson in at most 200 lines of code, on published packages only', () => {
    const source = readFileSync(join(EXAMPLE, 'server.ts'), 'utf8');
    const code = source.split('\n').filter((line) => line.trim() && !line.trim().startsWith('//'));
    assert.ok(code.length <= 200, `${code.length} lines of code`);
    const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
    const pkg = JSON.parse(readFileSync(join(EXAMPLE, 'package.json'), 'utf8')) as { dependencies: object };
    for (const name of imports) {
      if (name.startsWith('node:')) continue;
      assert.ok(name in pkg.dependencies, `${name} is imported but not a dependency of the example`);
    }
  });

  test(
    'without DATABASE_URL, or with a bad setting, it says which and exits 2; a database it cannot reach, 1',
    async () => {
      const none = await start({});
      assert.equal(await none.exited, 2);
      assert.match(none.output(), /DATABASE_URL is required/);
      const bad = await start({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/x', POOL_SIZE: 'five' });
      assert.equal(await bad.exited, 2);
      assert.match(bad.output(), /POOL_SIZE must be a whole number of 0 or more, not "five"/);
      assert.doesNotMatch(bad.output(), /\n\s+at /, 'no stack trace');
      const unreachable = await start({
        DATABASE_URL: 'postgres://nobody:s3cret@127.0.0.1:1/x',
        POOL_TIMEOUT: '2',
      });
      assert.equal(await unreachable.exited, 1);
      assert.match(unreachable.output(), /cannot prepare the database: could not connect to PostgreSQL/);
      assert.doesNotMatch(unreachable.output(), /s3cret|\n\s+at /);
    }
  );

  test('todos, both sleeps, health and readiness; bad input is a 400 with JSON', async () => {
    const db = await freshDatabase();
    const s = await start({ DATABASE_URL: db });
    assert.deepEqual((await request(s.url, 'GET', '/todos/')).json, []);
    const made = await request(s.url, 'POST', '/todos/', json({ title: 'write less' }));
    assert.equal(made.status, 201);
    assert.deepEqual(made.json, { id: 1, title: 'write less', done: false });
    assert.deepEqual((await request(s.url, 'GET', '/todos/')).json, [made.json]);
    const empty = await request(s.url, 'POST', '/todos/', json({ title: '' }));
    assert.equal(empty.status, 400);
    assert.equal((empty.json as { error: string }).error, 'FST_ERR_VALIDATION');
    const [runtime, postgres] = await Promise.all([
      request(s.url, 'GET', '/sleep/runtime/?seconds=0.3'),
      request(s.url, 'GET', '/sleep/postgres/?seconds=0.3'),
    ]);
    assert.deepEqual(
      [runtime.json, postgres.json],
      [
        { slept: 0.3, in: 'runtime' },
        { slept: 0.3, in: 'postgres' },
      ]
    );
    assert.equal((await request(s.url, 'GET', '/sleep/postgres/?seconds=61')).status, 400);
    assert.equal((await request(s.url, 'GET', '/healthz')).status, 200);
    const ready = await request(s.url, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal((ready.json as { pool: { size: number } }).pool.size, 5);
    s.proc.kill('SIGTERM');
    assert.equal(await s.exited, 0);
  });

  test(
    "past the pool's timeout a 503 with SQLAlchemy's " + 'message; a client that leaves has its query cancelled',
    async () => {
      const db = await freshDatabase();
      const s = await start({ DATABASE_URL: db, POOL_SIZE: '1', POOL_OVERFLOW: '0', POOL_TIMEOUT: '1' });
      const holder = new AbortController();
      const held = request(s.url, 'GET', '/sleep/postgres/?seconds=30', { signal: holder.signal }).catch(
        (e: Error) => e
      );
      await until('the first sleep runs in PostgreSQL', async () =>
        (await running(db)).some((q) => /pg_sleep/.test(q))
      );
      const refused = await request(s.url, 'GET', '/todos/');
      assert.equal(refused.status, 503);
      assert.deepEqual(refused.json, {
        error: 'POOL_TIMEOUT',
        message: 'QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 1.00',
      });
      // The client goes away: the sleep stops in PostgreSQL (not after 30 s), and its connection serves again.
      holder.abort();
      assert.ok((await held) instanceof Error);
      await until('the sleep is cancelled in PostgreSQL', async () => (await running(db)).length === 0, 5000);
      assert.equal((await request(s.url, 'GET', '/todos/')).status, 200);
      s.proc.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    }
  );

  test(
    'SIGTERM drains: the request in flight is answered, then the process exits 0 and closes its connections',
    async () => {
      const db = await freshDatabase();
      const s = await start({ DATABASE_URL: db });
      const inFlight = request(s.url, 'GET', '/sleep/postgres/?seconds=1.5');
      await until('the sleep runs in PostgreSQL', async () => (await running(db)).length === 1);
      s.proc.kill('SIGTERM');
      const answer: Response = await inFlight;
      assert.equal(answer.status, 200);
      assert.equal(await s.exited, 0);
      assert.match(s.output(), /draining the running requests/);
      await until('PostgreSQL has none of its connections left', async () => {
        const [left] = await sql<{ n: number }>(
          db,
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'minimal'"
        );
        return left!.n === 0;
      });
    }
  );
});
