// pg-pool's behaviours that its own test suite checks, where the package shares them: every option of pg.Pool's
// honoured, err.client, end(cb), query(fn), callbacks outside the promises. With an injected Client; no database.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Pool } from '../../src/index.ts';
import { fakeClientClass, type FakeClient } from '../fake-client.ts';
import { advance, flush, now, outcome, settled, useMockTimers } from './helpers.ts';

useMockTimers();

describe("pg.Pool's options, honoured", () => {
  test("Client: the option builds that class (before the constructor's argument, as pg-pool does)", async () => {
    const { Client: Mine, made } = fakeClientClass();
    const { Client: Other, made: others } = fakeClientClass();
    const pool = new Pool<FakeClient>({ clock: now, Client: Mine }, Other);
    const o = outcome(pool.acquire());
    await advance(10);
    assert.ok(o.value);
    assert.deepEqual([made.length, others.length], [1, 0]);
    assert.equal(pool.Client, Mine);
  });

  test("poolSize, pg-pool's older name of max: 30 checkouts open 9 connections", async () => {
    const { Client, made } = fakeClientClass();
    const pool = new Pool<FakeClient>({ clock: now, poolSize: 9 }, Client);
    const leases = Array.from({ length: 30 }, () => outcome(pool.acquire()));
    await advance(20);
    assert.equal(made.length, 9);
    assert.equal(leases.filter((l) => l.value).length, 9);
    assert.equal(pool.options.max, 9);
    assert.throws(
      () => new Pool({ poolSize: 0 }, Client),
      /option poolSize must be an integer of at least 1; got 0/
    );
  });

  test(
    "pg-pool's names alone mean pg-pool's defaults: none " +
      'kept beyond min, up to 10, idle ones closed after 10 s',
    async () => {
      const { Client } = fakeClientClass();
      const s = new Pool({ idleTimeoutMillis: 10 }, Client).stats();
      assert.deepEqual([s.size, s.maxOverflow], [0, 10]);
      const pool = new Pool<FakeClient>({ clock: now, min: 1 }, Client);
      assert.deepEqual([pool.stats().size, pool.stats().maxOverflow], [1, 9]);
      const [a, b] = [outcome(pool.acquire()), outcome(pool.acquire())];
      await advance(10);
      a.value!.release();
      b.value!.release();
      await advance(9_990, 10);
      assert.equal(pool.totalCount, 2);
      await advance(20, 10);
      assert.deepEqual([pool.totalCount, pool.idleCount], [1, 1], 'min stays; the other idled out at 10 s');
    }
  );

  test(
    'pool.options has what each pg-pool name means here ' +
      "(Vercel's attachDatabasePool looks for idleTimeoutMillis)",
    () => {
      const { Client } = fakeClientClass();
      const pool = new Pool({ size: 5, maxOverflow: 10, overflowIdle: 1000, timeout: 30_000 }, Client);
      assert.ok('idleTimeoutMillis' in pool.options);
      assert.deepEqual(
        [pool.options.max, pool.options.min, pool.options.idleTimeoutMillis, pool.options.connectionTimeoutMillis],
        [15, 5, 1000, 30_000]
      );
      const given = { max: 4 };
      const pg = new Pool(given, Client);
      assert.deepEqual(given, { max: 4 }, "the caller's object is not changed");
      assert.equal(pg.options.idleTimeoutMillis, 10_000);
    }
  );

  test("log: called with what the pool does, in pg-pool's words where it is the same event", async () => {
    const lines: string[] = [];
    const { Client } = fakeClientClass();
    const pool = new Pool<FakeClient>(
      { clock: now, size: 0, maxOverflow: 1, maxUses: 1, log: (m) => lines.push(m) },
      Client
    );
    const q = settled(pool.query('SELECT 1'));
    await advance(30);
    assert.ok(q.value);
    assert.deepEqual(lines, [
      'connecting new client',
      'new client connected',
      'dispatching query',
      'query dispatched',
      'client released',
      'remove expended client',
      'closing a client',
    ]);
  });

  test(
    'onConnect: run once on each new connection before anyone has it; its error fails that connect, and the next ' +
      'one is tried anew',
    async () => {
      let fail = true;
      const seen: number[] = [];
      const { Client, made } = fakeClientClass();
      const pool = new Pool<FakeClient>(
        {
          clock: now,
          size: 1,
          maxOverflow: 0,
          onConnect: async (client: FakeClient) => {
            seen.push(client.id);
            await client.query('SET search_path = app');
            if (fail) throw new Error('connect hook error');
          },
        },
        Client
      );
      const first = settled(pool.acquire());
      await advance(30);
      assert.equal(first.message, 'connect hook error', "the hook's own error, as pg-pool passes it");
      assert.deepEqual([pool.totalCount, pool.inUseCount, pool.stats().connectErrors], [0, 0, 1]);
      assert.ok(made[0]!.destroyed || made[0]!.ended);
      fail = false;
      const second = outcome(pool.acquire());
      await advance(30);
      assert.ok(second.value);
      second.value.release();
      await flush();
      const third = outcome(pool.acquire());
      await advance(5);
      assert.equal(third.value!.client, second.value.client);
      assert.deepEqual(seen, [1, 2], 'once per new connection, not per checkout');
      assert.deepEqual(made[1]!.queries, ['SET search_path = app']);
    }
  );

  test(
    "verify: pg-pool's callback on each new connection; " +
      'its error fails the checkout and closes the connection',
    async () => {
      const { Client } = fakeClientClass();
      const pool = new Pool<FakeClient>({ clock: now, verify: (_client, done) => done(new Error('nope')) }, Client);
      let got: Error | undefined;
      pool.connect((err) => {
        got = err;
      });
      await advance(20);
      assert.equal(got?.message, 'nope');
      assert.equal(pool.totalCount, 0);
    }
  );

  test('Promise: the promises the pool returns are of that class', async () => {
    class Marked<T> extends Promise<T> {}
    const { Client } = fakeClientClass();
    const pool = new Pool<FakeClient>({ clock: now, Promise: Marked }, Client);
    const checkout = pool.connect();
    assert.ok(checkout instanceof Marked);
    const query = pool.query('SELECT 1');
    assert.ok(query instanceof Marked);
    await advance(30);
    (await checkout).release();
    await query;
    assert.ok(pool.end() instanceof Marked);
  });

  test("bad values of pg-pool's hooks are a TypeError naming the option", () => {
    const { Client } = fakeClientClass();
    for (const name of ['log', 'onConnect', 'verify', 'Client', 'Promise']) {
      assert.throws(
        () => new Pool({ [name]: 'yes' }, Client),
        new RegExp(`option ${name} must be a (function|class); got "yes"`),
        name
      );
    }
  });
});

describe('await using', () => {
  test(
    'the lease is given back when the block ends, also when ' +
      'it throws; one released inside is not released twice',
    async () => {
      const { Client } = fakeClientClass();
      const pool = new Pool<FakeClient>({ clock: now, size: 1, maxOverflow: 0 }, Client);
      const first = outcome(pool.acquire());
      await advance(10);
      {
        await using lease = first.value!;
        assert.equal(lease.client.connected, true);
        assert.equal(pool.inUseCount, 1);
      }
      assert.equal(pool.inUseCount, 0);
      const second = outcome(pool.acquire());
      await flush();
      await assert.rejects(async () => {
        await using lease = second.value!;
        assert.ok(lease);
        throw new Error('the block failed');
      }, /the block failed/);
      assert.equal(pool.inUseCount, 0);
      const third = outcome(pool.acquire());
      await flush();
      {
        using lease = third.value!;
        lease.release();
      }
      assert.equal(pool.inUseCount, 0);
    }
  );
});

describe("pg.Pool's shape, as its suite checks it", () => {
  test('an idle client that errors: the error names its client (err.client), the client is dropped', async () => {
    const { Client } = fakeClientClass();
    const pool = new Pool<FakeClient>({ clock: now, size: 1, maxOverflow: 0, healthCheckPeriod: Infinity }, Client);
    const errors: (Error & { client?: FakeClient })[] = [];
    pool.on('error', (err: Error) => errors.push(err));
    const o = outcome(pool.acquire());
    await advance(10);
    const client = o.value!.client;
    o.value!.release();
    client.emit('error', new Error('on purpose'));
    await flush();
    assert.equal(errors[0]?.client, client);
    assert.equal(pool.totalCount, 0);
  });

  test('end(cb) calls back and returns nothing; end() resolves only once the connections are closed', async () => {
    const { Client } = fakeClientClass();
    const pool = new Pool<FakeClient>({ clock: now, size: 1, maxOverflow: 0 }, Client);
    await Promise.all([pool.warm(), advance(10)]);
    let called = false;
    assert.equal(
      pool.end(() => {
        called = true;
      }),
      undefined
    );
    await flush();
    assert.equal(called, true);
  });

  test('query(fn): the function is called back with why, and nothing is sent', async () => {
    const { Client, made } = fakeClientClass();
    const pool = new Pool<FakeClient>({ clock: now }, Client);
    let got: Error | undefined;
    const returned = pool.query(((err: Error) => {
      got = err;
    }) as unknown as string);
    assert.equal(returned, undefined);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(got?.message, 'Passing a function as the first parameter to pool.query is not supported');
    assert.equal(made.length, 0);
  });

  test('what a connect(cb) or query(cb) callback throws is an uncaught exception, not an unhandled rejection', () => {
    const script = fileURLToPath(new URL('./throwing-callback.ts', import.meta.url));
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.equal(run.stdout.trim(), 'uncaught: from connect\nuncaught: from query');
  });
});
