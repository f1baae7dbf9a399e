// The unhappy path with an injected Client and clock: what a connection given back in a bad state
// gets, deadlines on queries and connects, the background health check, pool-wide invalidation,
// and the jitter of the refill and of recycle. No database.
import assert from 'node:assert/strict';
import { describe, mock, test } from 'node:test';
import { Pool, type PoolOptions } from '../../src/index.ts';
import { fakeClientClass, type FakeClient } from '../fake-client.ts';
import { advance, flush, makePool, now, outcome, settled, useMockTimers } from './helpers.ts';

useMockTimers();

/** A lease of a size-1 pool, held. */
async function held (pool: Pool<FakeClient>) {
  const o = outcome(pool.acquire());
  await advance(10);
  assert.ok(o.value, o.code);
  return o.value;
}

describe('reset on return', () => {
  test('a connection given back inside a transaction is rolled back before the next caller has it', async () => {
    const { pool, made } = makePool({ size: 1, maxOverflow: 0 });
    const lease = await held(pool);
    await Promise.all([lease.client.query('BEGIN'), advance(10)]);
    await Promise.all([lease.client.query('INSERT INTO todo VALUES (1)'), advance(10)]);
    assert.equal(lease.client.status, 'T');
    const next = outcome(pool.acquire());
    await flush();
    lease.release();
    await flush();
    assert.ok(next.value === undefined, 'not handed over while the rollback runs');
    await advance(10);
    const got = next.value as { client: FakeClient } | undefined;
    assert.ok(got);
    assert.equal(got.client, made[0], 'the same connection, reused');
    assert.equal(got.client.status, 'I');
    assert.deepEqual(made[0]!.queries.slice(-1), ['ROLLBACK']);
    assert.equal(pool.stats().resets, 1);
  });

  test('a client without getTransactionStatus() (pg before 8.21): the pool follows ReadyForQuery itself', async () => {
    const { pool, made } = makePool({ size: 1, maxOverflow: 0 }, { statusByMessage: true });
    const lease = await held(pool);
    assert.equal((lease.client as unknown as { getTransactionStatus?: unknown }).getTransactionStatus, undefined);
    await Promise.all([lease.client.query('BEGIN'), advance(10)]);
    lease.release();
    await advance(10);
    assert.deepEqual(made[0]!.queries.slice(-1), ['ROLLBACK']);
    assert.equal(pool.stats().resets, 1);
    const next = await held(pool);
    assert.equal(next.client, made[0]);
  });

  test('one given back in a failed transaction (25P02 for ever, otherwise) is rolled back too', async () => {
    const fail = (text: string) =>
      text === 'SELECT 1/0' ? Object.assign(new Error('division by zero'), { code: '22012' }) : undefined;
    const { pool, made } = makePool({ size: 1, maxOverflow: 0 }, { failQuery: fail });
    const lease = await held(pool);
    await Promise.all([lease.client.query('BEGIN'), advance(10)]);
    await Promise.all([lease.client.query('SELECT 1/0')!.catch(() => {}), advance(10)]);
    assert.equal(lease.client.status, 'E');
    lease.release();
    await advance(10);
    const next = await held(pool);
    assert.equal(next.client, made[0]);
    assert.equal(next.client.status, 'I');
  });

  test(
    'the ReadyForQuery after an error may come later than the error: the pool waits for it, then rolls back',
    async () => {
      const fail = (text: string) => (text === 'SELECT 1/0' ? new Error('division by zero') : undefined);
      const { pool, made } = makePool({ size: 1, maxOverflow: 0 }, { failQuery: fail, readyLagMs: 50 });
      const lease = await held(pool);
      await Promise.all([lease.client.query('BEGIN'), advance(10)]);
      const failed = settled(lease.client.query('SELECT 1/0')!);
      await advance(10);
      assert.equal(failed.message, 'division by zero');
      assert.equal(lease.client.status, 'T', 'still the status of the last ReadyForQuery');
      lease.release();
      await advance(100);
      assert.deepEqual(made[0]!.queries.slice(-1), ['ROLLBACK']);
      assert.equal((await held(pool)).client.status, 'I');
    }
  );

  test('a rollback that fails, or takes longer than checkTimeout, closes the connection instead', async () => {
    let rollback: 'fails' | 'hangs' = 'fails';
    const { pool, made } = makePool(
      { size: 1, maxOverflow: 0, checkTimeout: 500 },
      {
        failQuery: (text) =>
          text === 'ROLLBACK' && rollback === 'fails' ? new Error('server closed the connection') : undefined,
        hangQuery: (text) => text === 'ROLLBACK' && rollback === 'hangs',
      }
    );
    for (const how of ['fails', 'hangs'] as const) {
      rollback = how;
      const lease = await held(pool);
      await Promise.all([lease.client.query('BEGIN'), advance(10)]);
      lease.release();
      await advance(how === 'fails' ? 20 : 499);
      if (how === 'hangs') {
        assert.equal(pool.totalCount, 1, 'open until checkTimeout');
        await advance(2);
      }
      assert.deepEqual([pool.totalCount, pool.inUseCount], [0, 0], how);
      assert.ok(lease.client.destroyed, `${how}: its socket destroyed`);
    }
    assert.equal(pool.stats().closed.reset, 2);
    const next = await held(pool);
    assert.equal(next.client, made[2], 'the next caller gets a new connection');
  });

  test("resetOnReturn 'close' closes it; 'off' hands it on inside the transaction (the hazard it names)", async () => {
    for (const resetOnReturn of ['close', 'off'] as const) {
      const { pool, made } = makePool({ size: 1, maxOverflow: 0, resetOnReturn });
      const lease = await held(pool);
      await Promise.all([lease.client.query('BEGIN'), advance(10)]);
      lease.release();
      await flush();
      const next = await held(pool);
      if (resetOnReturn === 'close') {
        assert.notEqual(next.client, made[0]);
        assert.equal(pool.stats().closed.reset, 1);
      } else {
        assert.equal(next.client, made[0]);
        assert.equal(next.client.status, 'T');
      }
    }
  });

  test(
    'pool.query() that fails: the connection is closed if ' +
      'the failure left it in a transaction, reused if idle',
    async () => {
      const { pool, made } = makePool(
        { size: 1, maxOverflow: 0 },
        {
          failQuery: (text) =>
            text.includes('1/0') ? Object.assign(new Error('division by zero'), { code: '22012' }) : undefined,
        }
      );
      const batch = settled(pool.query('BEGIN; SELECT 1/0; COMMIT'));
      await advance(20);
      assert.equal(batch.code, '22012');
      assert.deepEqual(
        [pool.totalCount, pool.stats().closed.reset],
        [0, 1],
        'left in a failed transaction: closed, not rolled back'
      );
      const plain = settled(pool.query('SELECT 1/0'));
      await advance(20);
      assert.equal(plain.code, '22012');
      assert.deepEqual([pool.totalCount, pool.idleCount], [1, 1], 'failed in autocommit, idle: reused');
      const ok = settled(pool.query('SELECT 1'));
      await advance(20);
      assert.ok(ok.value);
      assert.equal(made.length, 2);
    }
  );

  test('a connection given back with its query still running is closed, never handed on busy', async () => {
    const { pool } = makePool({ size: 1, maxOverflow: 0 }, { queryMs: 1000 });
    const lease = await held(pool);
    lease.client.query('SELECT pg_sleep(1)')!.catch(() => {});
    lease.release();
    await flush();
    assert.deepEqual([pool.totalCount, pool.inUseCount], [0, 0]);
    assert.equal(pool.stats().closed.busy, 1);
  });
});

describe('deadlines', () => {
  test(
    'queryTimeout: the caller gets QUERY_TIMEOUT at the deadline; the query is cancelled and its connection ' +
      'destroyed',
    async () => {
      const { pool, cancels } = makePool(
        { size: 1, maxOverflow: 0, queryTimeout: 1000 },
        { hangQuery: (text) => text.startsWith('SELECT') }
      );
      const lease = await held(pool);
      const q = settled(lease.client.query('SELECT * FROM todo')!);
      await advance(999);
      assert.equal(q.done, false);
      await advance(1);
      assert.equal(q.code, 'QUERY_TIMEOUT');
      assert.match(q.message!, /no answer within 1 s \(queryTimeout\)/);
      assert.equal(cancels.length, 1);
      await flush();
      assert.ok(lease.client.destroyed, 'destroyed once the cancel was answered');
      assert.equal(pool.totalCount, 0, 'no longer counted open');
      assert.equal(pool.inUseCount, 1, 'its place stays taken until it is given back');
      lease.release();
      await flush();
      assert.equal(pool.inUseCount, 0);
      assert.deepEqual([pool.stats().queryTimeouts, pool.stats().closed.deadline], [1, 1]);
    }
  );

  test(
    'a cancel the server never answers: the connection is destroyed after checkTimeout, and the others become ' +
      'suspects',
    async () => {
      const { pool, made, cancels } = makePool(
        { size: 2, maxOverflow: 0, queryTimeout: 500, checkTimeout: 300 },
        { hangQuery: (text, client) => text === 'SELECT 2' || (text === '' && client.id === 2) },
        'unanswered'
      );
      const [a, b] = [outcome(pool.acquire()), outcome(pool.acquire())];
      await advance(10);
      b.value!.release();
      await flush();
      const q = settled(a.value!.client.query('SELECT 2')!);
      await advance(500);
      assert.equal(q.code, 'QUERY_TIMEOUT');
      await advance(299);
      assert.equal(made[0]!.destroyed, false);
      await advance(1);
      assert.equal(made[0]!.destroyed, true, 'destroyed at checkTimeout');
      assert.equal(cancels.length, 1);
      // The idle one is now a suspect: checked in the background, and it does not answer either.
      await advance(301);
      assert.equal(made[1]!.destroyed, true);
      assert.equal(pool.stats().closed.invalidated, 1);
      a.value!.release();
    }
  );

  test(
    'per checkout: acquire({ queryTimeout }) and query({ text, queryTimeout }); a query within its deadline is ' +
      'untouched, callbacks too',
    async () => {
      const { pool } = makePool({ size: 1, maxOverflow: 0 }, { queryMs: 300 });
      const lease = outcome(pool.acquire({ queryTimeout: 200 }));
      await advance(10);
      const late = settled(lease.value!.client.query('SELECT 1')!);
      await advance(200);
      assert.equal(late.code, 'QUERY_TIMEOUT');
      lease.value!.release();
      await flush();
      const viaPool = settled(pool.query({ text: 'SELECT 2', queryTimeout: 400 }));
      await advance(320);
      assert.ok(viaPool.value, 'answered in 300 ms, within 400');
      let called: unknown;
      pool.query({ text: 'SELECT 3', queryTimeout: 100 }, (err) => {
        called = err;
      });
      await advance(120);
      assert.equal((called as { code?: string }).code, 'QUERY_TIMEOUT');
    }
  );

  test(
    'an abort while a query hangs: cancelled, then its connection destroyed after checkTimeout, and the place ' +
      'freed at once',
    async () => {
      const { pool, made } = makePool(
        { size: 1, maxOverflow: 0, checkTimeout: 1000 },
        { hangQuery: (text) => text === 'SELECT 1' },
        'unanswered'
      );
      const ac = new AbortController();
      const lease = outcome(pool.acquire({ signal: ac.signal }));
      await advance(10);
      const q = settled(lease.value!.client.query('SELECT 1')!);
      ac.abort();
      await advance(999);
      assert.equal(q.done, false);
      await advance(1);
      assert.match(q.message!, /Connection terminated/);
      lease.value!.release();
      await flush();
      assert.deepEqual([pool.inUseCount, pool.totalCount], [0, 0]);
      assert.equal(pool.stats().closed.cancel, 1);
      const next = await held(pool);
      assert.notEqual(next.client, made[0]);
    }
  );

  test(
    "connectTimeout bounds one connect within the checkout's " + 'timeout: CONNECT_FAILED, and the place is freed',
    async () => {
      const { pool } = makePool(
        { size: 1, maxOverflow: 0, timeout: 30_000, connectTimeout: 2000 },
        { hangConnect: (n) => n === 1 }
      );
      const first = outcome(pool.acquire());
      await advance(2000, 10);
      assert.equal(first.code, 'CONNECT_FAILED');
      assert.deepEqual([pool.inUseCount, pool.totalCount], [0, 0]);
      const second = outcome(pool.acquire());
      await advance(20);
      assert.ok(second.value);
    }
  );
});

describe('health', () => {
  test(
    'idle connections unused for a whole period are checked ' +
      'in the background; a dead one is closed and replaced',
    async () => {
      const dead = new Set<number>();
      const { pool, made } = makePool(
        { size: 2, maxOverflow: 0, healthCheckPeriod: 1000, checkTimeout: 200 },
        { hangQuery: (text, client) => text === '' && dead.has(client.id) }
      );
      await Promise.all([pool.warm(), advance(10)]);
      dead.add(2);
      await advance(1999, 10);
      assert.deepEqual(
        made.map((c) => c.queries),
        [[], []],
        'nothing within the first two periods'
      );
      await advance(1, 1);
      await advance(230, 10); // the live one answers in 10 ms, the dead one is given up at checkTimeout
      assert.deepEqual(
        made.slice(0, 2).map((c) => c.queries.length),
        [1, 1]
      );
      assert.equal(made[1]!.destroyed, true);
      assert.equal(pool.stats().closed.healthCheck, 1);
      assert.equal(pool.stats().healthChecks, 2);
      await advance(300, 10);
      assert.deepEqual([pool.totalCount, pool.idleCount], [2, 2], 'refilled');
    }
  );

  test('after one connection breaks, the idle ones opened before it are checked before they are lent', async () => {
    const dead = new Set<number>();
    const { pool, made } = makePool(
      { size: 3, maxOverflow: 0, healthCheckPeriod: Infinity },
      {
        failQuery: (_text, client) =>
          dead.has(client.id) ? new Error('Connection terminated unexpectedly') : undefined,
      }
    );
    await Promise.all([pool.warm(), advance(10)]);
    // PostgreSQL restarted: every connection is dead, but only one has said so.
    for (const c of made) dead.add(c.id);
    const first = await held(pool);
    const failed = settled(first.client.query('SELECT 1')!);
    await advance(10);
    assert.match(failed.message!, /terminated/);
    first.release(new Error(failed.message));
    // The next caller does not get a dead one: each is checked, fails, and is replaced within the checkout.
    const next = outcome(pool.acquire());
    await advance(60);
    assert.ok(next.value, next.code);
    assert.ok(!dead.has(next.value.client.id));
    assert.equal(pool.stats().closed.broken, 1);
    assert.equal(pool.stats().closed.invalidated, 2);
    assert.equal(made.length >= 4, true);
  });

  test('a connection that breaks just after passing its check is closed as broken, and counted', async () => {
    // An administrator terminates both backends: the second answers its check, and its error comes right after the
    // answer, before the pool has put it back (seen in CI: one close fewer counted than connections terminated).
    const target: { client?: FakeClient } = {};
    const { pool, made } = makePool(
      { size: 2, maxOverflow: 0, healthCheckPeriod: Infinity },
      {
        failQuery: (sql, client) => {
          if (sql === '' && client === target.client) {
            queueMicrotask(() => {
              client._queryable = false;
              client.emit('error', new Error('terminating connection due to administrator command'));
            });
          }
          return undefined;
        },
      }
    );
    pool.on('error', () => {}); // an idle connection's error, passed on as pg.Pool does
    await Promise.all([pool.warm(), advance(10)]);
    const [a, b] = made as [FakeClient, FakeClient];
    target.client = b;
    await advance(100); // later than their last proof of life
    a._queryable = false;
    a.emit('error', new Error('terminating connection due to administrator command'));
    await advance(50);
    assert.equal(pool.stats().healthChecks, 1);
    assert.deepEqual([pool.stats().closed.broken, pool.stats().closed.invalidated], [2, 0]);
  });

  test('the refill backs off with jitter while PostgreSQL cannot be reached, and says so in stats()', async () => {
    const random = mock.method(Math, 'random', () => 0);
    try {
      let down = false;
      const { pool, made } = makePool(
        { size: 1, maxOverflow: 0, healthCheckPeriod: Infinity },
        { failConnect: () => (down ? new Error('ECONNREFUSED') : undefined) }
      );
      pool.on('error', () => {});
      await Promise.all([pool.warm(), advance(10)]);
      down = true;
      made[0]!.emit('error', new Error('terminating connection due to administrator command'));
      const attempts = () => made.length - 1;
      await advance(50 + 10); // 100 ms x (0.5 + 0 x 0.5)
      assert.equal(attempts(), 1);
      await advance(100 + 10); // then 200 ms x 0.5
      assert.equal(attempts(), 2);
      assert.equal(pool.stats().refillBackoffMs, 400);
      down = false;
      await advance(200 + 10);
      assert.deepEqual([pool.totalCount, pool.stats().refillBackoffMs], [1, 0]);
    } finally {
      random.mock.restore();
    }
  });

  test(
    "a caller's core connection that fails to open makes " + 'the refill try again, so the pool gets back to size',
    async () => {
      const random = mock.method(Math, 'random', () => 0);
      try {
        const { pool, made } = makePool(
          { size: 1, maxOverflow: 0, connectTimeout: 500, healthCheckPeriod: Infinity },
          { hangConnect: (n) => n === 2 }
        );
        pool.on('error', () => {});
        await Promise.all([pool.warm(), advance(10)]);
        made[0]!.emit('error', new Error('terminating connection due to administrator command'));
        // Before the refill's first try (50 ms), a caller opens the missing core connection itself, into a partition.
        const caller = outcome(pool.acquire());
        await advance(100);
        assert.equal(pool.totalCount, 1, "the caller's connect counts as the core connection");
        await advance(450);
        assert.equal(caller.code, 'CONNECT_FAILED');
        await advance(100);
        assert.deepEqual(
          [pool.totalCount, pool.idleCount, made.length],
          [1, 1, 3],
          "the refill opened it once the caller's connect failed"
        );
      } finally {
        random.mock.restore();
      }
    }
  );

  test('an overflow connection given back while the pool is short of size stays open as one of the size', async () => {
    // The refill's jitter fixed: its fourth attempt (failing after 10 ms) fell anywhere from 780 to
    // 1530 ms, so that about one run in 75 saw it in flight at 1000 and counted it (CI, Node 24).
    // At 0.5 the attempts are at 75, 235, 545 and 1155 ms.
    const random = mock.method(Math, 'random', () => 0.5);
    try {
      const { pool } = makePool(
        { size: 2, maxOverflow: 1, overflowIdle: 500, healthCheckPeriod: Infinity },
        { failConnect: (n) => (n > 3 ? new Error('ECONNREFUSED') : undefined) }
      );
      await Promise.all([pool.warm(), advance(10)]);
      const [a, b, c] = [outcome(pool.acquire()), outcome(pool.acquire()), outcome(pool.acquire())];
      await advance(20);
      assert.deepEqual([a.value!.overflow, b.value!.overflow, c.value!.overflow], [false, false, true]);
      a.value!.release(new Error('Connection terminated unexpectedly'));
      b.value!.release(new Error('Connection terminated unexpectedly'));
      c.value!.release();
      await advance(1000, 10);
      assert.deepEqual(
        [pool.totalCount, pool.idleCount],
        [1, 1],
        'kept past overflowIdle: it is one of the size now'
      );
    } finally {
      random.mock.restore();
    }
  });

  test('recycle with jitter: each connection closes up to recycleJitter before recycle, not all at once', async () => {
    const random = mock.method(Math, 'random', () => 0.5);
    try {
      const { pool } = makePool({
        size: 1,
        maxOverflow: 0,
        recycle: 10_000,
        recycleJitter: 2000,
        healthCheckPeriod: Infinity,
      });
      await Promise.all([pool.warm(), advance(10)]);
      await advance(8990, 10);
      assert.equal(pool.stats().recycled, 0);
      await advance(20, 10);
      assert.equal(pool.stats().recycled, 1, 'closed at 9 s: 10 s less half of 2 s');
    } finally {
      random.mock.restore();
    }
  });
});

describe('options', () => {
  test('TCP keepalive is on for every connection unless the options say otherwise', async () => {
    const { pool, made } = makePool({ size: 1, maxOverflow: 0 });
    await held(pool);
    assert.deepEqual([made[0]!.config.keepAlive, made[0]!.config.keepAliveInitialDelayMillis], [true, 10_000]);
    const own = makePool({ size: 1, maxOverflow: 0, keepAlive: false });
    await held(own.pool);
    assert.equal(own.made[0]!.config.keepAlive, false);
    assert.equal('queryTimeout' in own.made[0]!.config, false, "the pool's own options are not the client's");
  });

  test('bad values of the new options are a TypeError naming the option and what it accepts', () => {
    const { Client } = fakeClientClass();
    const bad: [PoolOptions, RegExp][] = [
      [
        { resetOnReturn: 'commit' as 'off' },
        /option resetOnReturn must be "rollback", "close" or "off"; got "commit"/,
      ],
      [
        { queryTimeout: 0 },
        /option queryTimeout must be a number of milliseconds above 0 \(Infinity for none\); got 0/,
      ],
      [{ checkTimeout: -5 }, /option checkTimeout must be a number of milliseconds above 0/],
      [
        { connectTimeout: '5s' as unknown as number },
        /option connectTimeout must be a number of milliseconds above 0.*got "5s"/,
      ],
      [{ healthCheckPeriod: Number.NaN }, /option healthCheckPeriod must be/],
      [{ recycle: 1000, recycleJitter: 2000 }, /option recycleJitter must be at most recycle \(1000\); got 2000/],
    ];
    for (const [options, message] of bad) {
      assert.throws(
        () => new Pool(options, Client),
        (err: Error) => err instanceof TypeError && message.test(err.message),
        JSON.stringify(options)
      );
    }
    assert.equal(now(), 0);
  });
});
