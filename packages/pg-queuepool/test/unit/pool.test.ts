// The pool's semantics with an injected Client and clock (node:test's mock timers): no database.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Pool, type PoolOptions } from '../../src/index.ts';
import { fakeClientClass, type FakeClient } from '../fake-client.ts';
import { advance, flush, makePool, outcome, useMockTimers } from './helpers.ts';

useMockTimers();

describe('QueuePool', () => {
  test('FIFO: callers beyond size + overflow get connections in the order they asked', async () => {
    const { pool } = makePool({ size: 1, maxOverflow: 1 });
    const first = [outcome(pool.acquire()), outcome(pool.acquire())];
    await advance(20);
    assert.ok(first.every((o) => o.value));
    const order: number[] = [];
    const waiting = [1, 2, 3, 4].map((i) =>
      pool.acquire().then((lease) => {
        order.push(i);
        return lease;
      })
    );
    await flush();
    assert.equal(pool.waitingCount, 4);
    first[1]!.value!.release();
    first[0]!.value!.release();
    await flush();
    assert.deepEqual(order, [1, 2]);
    (await waiting[0]!).release();
    (await waiting[1]!).release();
    await flush();
    assert.deepEqual(order, [1, 2, 3, 4]);
    assert.equal(pool.totalCount, 2, 'no third connection: the idle ones were handed on');
  });

  test("timeout: a waiter gives up at its deadline, not before, with SQLAlchemy's message", async () => {
    const { pool } = makePool({ size: 1, maxOverflow: 0, timeout: 1000 });
    const held = outcome(pool.acquire());
    await advance(10);
    assert.ok(held.value);
    let error: Error | undefined;
    pool.acquire().catch((err: Error) => {
      error = err;
    });
    await advance(998);
    assert.equal(error, undefined, 'not before 1000 ms');
    await advance(2);
    assert.equal((error as unknown as { code?: string }).code, 'POOL_TIMEOUT');
    assert.equal(
      error!.message,
      'QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 1.00'
    );
    assert.equal(pool.stats().timeouts, 1);
    assert.equal(pool.waitingCount, 0);
  });

  test(
    'one deadline for the queue and the connect: 600 ms waiting + a 700 ms connect is a timeout at 1000 ms',
    async () => {
      const { pool, made } = makePool(
        { size: 0, maxOverflow: 1, timeout: 1000, overflowIdle: 0 },
        { connectMs: 700 }
      );
      const held = outcome(pool.acquire());
      await advance(700);
      assert.ok(held.value);
      const late = outcome(pool.acquire());
      await advance(600);
      held.value!.release(true); // closed: the waiter must open a new connection, which takes 700 ms
      await advance(500);
      assert.equal(late.code, 'POOL_TIMEOUT');
      assert.ok(late.at! >= 1700 && late.at! <= 1702, `gave up at ${late.at} ms, 1000 ms after it asked at 700`);
      assert.ok(made[1]!.destroyed, 'the connect in progress was dropped');
      assert.deepEqual([pool.totalCount, pool.inUseCount], [0, 0]);
    }
  );

  test('the queue is bounded: past queueMax waiting, POOL_QUEUE_FULL at once', async () => {
    const { pool } = makePool({ size: 1, maxOverflow: 0, queueMax: 2 });
    const held = outcome(pool.acquire());
    await advance(10);
    const waiters = [outcome(pool.acquire()), outcome(pool.acquire())];
    const refused = outcome(pool.acquire());
    await flush();
    assert.equal(refused.code, 'POOL_QUEUE_FULL');
    assert.equal(pool.stats().rejected, 1);
    held.value!.release();
    await flush();
    assert.ok(waiters[0]!.value);
    assert.equal(waiters[1]!.value, undefined);
  });

  test('overflow: opened under load, closed after overflowIdle; size stays open', async () => {
    const { pool } = makePool({ size: 1, maxOverflow: 2, overflowIdle: 500 });
    const leases = [outcome(pool.acquire()), outcome(pool.acquire()), outcome(pool.acquire())];
    await advance(20);
    assert.equal(pool.totalCount, 3);
    assert.deepEqual(
      leases.map((l) => l.value!.overflow),
      [false, true, true]
    );
    assert.equal(pool.stats().overflowInUse, 2);
    for (const l of leases) l.value!.release();
    await advance(499);
    assert.equal(pool.totalCount, 3);
    await advance(2);
    assert.deepEqual([pool.totalCount, pool.idleCount], [1, 1]);
  });

  test(
    'sizeIdle: the size connections idle out too, are not reopened by the refill, and open again on demand',
    async () => {
      const { pool, made } = makePool({ size: 2, maxOverflow: 1, overflowIdle: 500, sizeIdle: 3000 });
      await Promise.all([pool.warm(), advance(20)]);
      const leases = [outcome(pool.acquire()), outcome(pool.acquire()), outcome(pool.acquire())];
      await advance(20);
      assert.equal(pool.totalCount, 3);
      for (const l of leases) l.value!.release();
      await advance(600);
      assert.deepEqual([pool.totalCount, pool.idleCount], [2, 2], 'the overflow one idled out first');
      await advance(2500);
      assert.deepEqual([pool.totalCount, pool.idleCount], [0, 0], 'then the size ones');
      await advance(2000, 10); // the refill (for connections lost) would have tried after 50-100 ms
      assert.equal(pool.totalCount, 0, 'the refill opened none: they idled out, they were not lost');
      assert.equal(made.length, 3);
      const again = outcome(pool.acquire());
      await advance(20);
      assert.ok(again.value, 'opened on demand');
      assert.equal(made.length, 4);
      again.value!.release();
      assert.equal(pool.options.idleTimeoutMillis, 3000, "pg's idleTimeoutMillis: how long until none is open");
    }
  );

  test(
    'sizeIdle: a size connection in use is not closed, and its idle time starts again when it comes back',
    async () => {
      const { pool } = makePool({ size: 1, maxOverflow: 0, sizeIdle: 1000 });
      const first = outcome(pool.acquire());
      await advance(20);
      first.value!.release();
      await advance(900);
      const second = outcome(pool.acquire());
      await flush();
      await advance(5000, 10);
      assert.equal(pool.totalCount, 1, 'held: kept');
      second.value!.release();
      await advance(999);
      assert.equal(pool.totalCount, 1);
      await advance(2);
      assert.equal(pool.totalCount, 0);
    }
  );

  test('abort: before asking, in the queue (its place goes to the next), while connecting', async () => {
    const { pool, made } = makePool({ size: 1, maxOverflow: 0 }, { connectMs: 100 });
    const gone = new AbortController();
    gone.abort();
    assert.equal(
      ((await pool.acquire({ signal: gone.signal }).catch((e: { code: string }) => e)) as { code?: string }).code,
      'ABORTED'
    );

    const connecting = new AbortController();
    const c = outcome(pool.acquire({ signal: connecting.signal }));
    await advance(50);
    connecting.abort();
    await flush();
    assert.equal(c.code, 'ABORTED');
    assert.ok(made[0]!.destroyed);
    assert.deepEqual([pool.totalCount, pool.inUseCount], [0, 0]);

    const held = outcome(pool.acquire());
    await advance(100);
    const queued = new AbortController();
    const q = outcome(pool.acquire({ signal: queued.signal }));
    const next = outcome(pool.acquire());
    await flush();
    queued.abort();
    await flush();
    assert.equal(q.code, 'ABORTED');
    assert.equal(pool.waitingCount, 1);
    held.value!.release();
    await flush();
    assert.ok(next.value, 'the place went to the next in line');
    assert.equal(pool.stats().aborted, 3);
  });

  test(
    'abort while held: the running query is cancelled; the connection is reused only once the query has ended',
    async () => {
      const { pool, cancels } = makePool({ size: 1, maxOverflow: 0 }, { queryMs: 1000 });
      const ac = new AbortController();
      const lease = await (async () => {
        const o = outcome(pool.acquire({ signal: ac.signal }));
        await advance(10);
        return o.value!;
      })();
      const running = lease.client.query('SELECT pg_sleep(10)');
      await advance(100);
      ac.abort();
      await flush();
      assert.equal(cancels.length, 1, 'one CancelRequest, on its own socket');
      await advance(250);
      assert.equal(cancels.length, 2, 'sent again while the query still runs');
      // (A real backend stops at the first; this stand-in runs its query to the end, so it is asked every 200 ms.)
      await advance(700);
      await running;
      assert.equal(pool.idleCount, 0);
      lease.release();
      await flush();
      assert.equal(pool.idleCount, 1, 'back in the pool once the query ended and every cancel was delivered');
      assert.equal(pool.stats().cancels, cancels.length);
      const after = cancels.length;
      await advance(1000);
      assert.equal(cancels.length, after, 'no cancel once the query is over');
    }
  );

  test(
    'recycle: an idle connection past its lifetime is closed; a checked-out one closes when it comes back',
    async () => {
      const { pool } = makePool({ size: 2, maxOverflow: 0, recycle: 5000 });
      const a = outcome(pool.acquire());
      const b = outcome(pool.acquire());
      await advance(20);
      a.value!.release();
      await advance(5000);
      assert.equal(pool.idleCount, 0, 'the idle one closed at 5 s');
      assert.equal(pool.expiredCount, 1, 'the checked-out one is expired');
      b.value!.release();
      await flush();
      assert.equal(pool.totalCount, 0);
      assert.equal(pool.stats().recycled, 2);
      const fresh = outcome(pool.acquire());
      await advance(20);
      assert.equal(fresh.value!.opened, true);
    }
  );

  test('prePing: a reused connection that fails the empty query is replaced, within the same checkout', async () => {
    const dead = new Set<FakeClient>();
    const { pool, made } = makePool(
      { size: 1, maxOverflow: 0, prePing: true },
      {
        failQuery: (text, client) =>
          text === '' && dead.has(client) ? new Error('Connection terminated unexpectedly') : undefined,
      }
    );
    const first = outcome(pool.acquire());
    await advance(20);
    const broken = first.value!.client;
    dead.add(broken);
    first.value!.release();
    const second = outcome(pool.acquire());
    await advance(40);
    assert.ok(second.value);
    assert.notEqual(second.value.client, broken);
    assert.equal(made.length, 2);
    assert.deepEqual(broken.queries, ['']);
  });

  test('end() while leases are out: waiters get POOL_ENDED, end() resolves once the last lease is back', async () => {
    const { pool, made } = makePool({ size: 1, maxOverflow: 0 });
    const held = outcome(pool.acquire());
    await advance(10);
    const waiter = outcome(pool.acquire());
    let ended = false;
    pool.end().then(() => {
      ended = true;
    });
    await flush();
    assert.equal(waiter.code, 'POOL_ENDED');
    assert.equal(ended, false);
    assert.equal(
      ((await pool.acquire().catch((e: { code: string }) => e)) as { code?: string }).code,
      'POOL_ENDED'
    );
    held.value!.release();
    await flush();
    assert.equal(ended, true);
    assert.ok(made[0]!.ended);
  });

  test(
    'a waiter is handed the connection inside the release that frees it: no newcomer can take it in between',
    async () => {
      const acquired: string[] = [];
      const { pool } = makePool({ size: 1, maxOverflow: 0 });
      const held = outcome(pool.acquire());
      await advance(10);
      const waiter = outcome(pool.acquire());
      pool.on('acquire', () => acquired.push('acquire'));
      await flush();
      held.value!.release();
      acquired.push('released');
      assert.deepEqual(acquired, ['acquire', 'released'], "the waiter's checkout happened within release()");
      assert.deepEqual([pool.waitingCount, pool.idleCount, pool.inUseCount], [0, 0, 1]);
      const newcomer = outcome(pool.acquire());
      await flush();
      assert.ok(waiter.value && !newcomer.value, 'the waiter has it, the newcomer waits');
      waiter.value.release();
      await flush();
      assert.ok(newcomer.value);
    }
  );

  test(
    'an onCheckout hook that throws fails that checkout ' +
      'with its error, and the connection goes back to the pool',
    async () => {
      let fail = true;
      const { pool } = makePool({
        size: 1,
        maxOverflow: 0,
        onCheckout: () => {
          if (fail) throw new Error('hook broke');
        },
      });
      const first = outcome(pool.acquire());
      await advance(10);
      assert.equal(first.code, 'hook broke');
      assert.deepEqual([pool.inUseCount, pool.idleCount], [0, 1]);
      fail = false;
      const held = outcome(pool.acquire());
      await flush();
      fail = true;
      const waiter = outcome(pool.acquire());
      await flush();
      held.value!.release();
      await flush();
      assert.equal(waiter.code, 'hook broke', "a waiter's checkout fails the same way");
      assert.deepEqual([pool.inUseCount, pool.idleCount, pool.totalCount], [0, 1, 1]);
    }
  );

  test("a double release throws, as pg-pool's does", async () => {
    const { pool } = makePool();
    const l = outcome(pool.acquire());
    await advance(10);
    l.value!.release();
    assert.throws(() => l.value!.release(), /already been released/);
  });

  test('warm() that meets a failing connect gives back every connection it opened', async () => {
    const { pool } = makePool(
      { size: 3, maxOverflow: 0 },
      {
        failConnect: (n) =>
          n === 2 ? Object.assign(new Error('too many connections for role "x"'), { code: '53300' }) : undefined,
      }
    );
    let error: { code?: string; message?: string } | undefined;
    pool.warm().catch((e) => {
      error = e;
    });
    await advance(20);
    assert.equal(error?.code, 'CONNECT_FAILED');
    assert.match(error!.message!, /too many connections for role/);
    assert.deepEqual([pool.inUseCount, pool.totalCount, pool.idleCount], [0, 2, 2]);
    assert.equal(pool.stats().connectErrors, 1);
  });
  test('after warm(), connections that break are reopened up to size, beside the idle ones that did not', async () => {
    const { pool, made } = makePool({ size: 4, maxOverflow: 2 });
    const errors: Error[] = [];
    pool.on('error', (err: Error) => errors.push(err));
    await Promise.all([pool.warm(), advance(10)]);
    assert.deepEqual([pool.totalCount, pool.idleCount], [4, 4]);
    for (const broken of made.slice(0, 2)) {
      broken.emit('error', new Error('terminating connection due to administrator command'));
    }
    await flush();
    assert.deepEqual([pool.totalCount, pool.idleCount, errors.length], [2, 2, 2]);
    await advance(200);
    assert.deepEqual([pool.totalCount, pool.idleCount, pool.inUseCount], [4, 4, 0]);
    assert.equal(made.length, 6);
  });
});

describe('NullPool (kind: null)', () => {
  test('a new connection per checkout, closed on release; end() waits for the open ones', async () => {
    const { pool, made } = makePool({ kind: 'null' });
    const a = outcome(pool.acquire());
    const b = outcome(pool.acquire());
    await advance(10);
    assert.equal(made.length, 2);
    a.value!.release();
    await flush();
    assert.ok(made[0]!.ended);
    let ended = false;
    pool.end().then(() => {
      ended = true;
    });
    await flush();
    assert.equal(ended, false, 'one connection is still out');
    b.value!.release();
    await flush();
    assert.equal(ended, true);
  });
});

describe("pg.Pool's shape", () => {
  test('connect() with a callback (err, client, done), query(), the events and the counts', async () => {
    const { pool } = makePool({ size: 1, maxOverflow: 1 });
    const events: string[] = [];
    for (const e of ['connect', 'acquire', 'release', 'remove']) pool.on(e, () => events.push(e));
    let got: FakeClient | undefined;
    pool.connect((err, client, done) => {
      assert.equal(err, undefined);
      got = client;
      done!();
    });
    await advance(10);
    assert.ok(got);
    const q = pool.query('SELECT 1');
    await advance(20);
    await q;
    assert.deepEqual(events, ['connect', 'acquire', 'release', 'acquire', 'release']);
    assert.deepEqual([pool.totalCount, pool.idleCount, pool.waitingCount, pool.expiredCount], [1, 1, 0, 0]);
    assert.equal(Pool.name, 'Pool');
    assert.equal(pool.Client.name, 'FakeClientImpl');
  });

  test('bad options are a TypeError naming the option and what it accepts', () => {
    const { Client } = fakeClientClass();
    const bad: [PoolOptions, RegExp][] = [
      [{ size: -1 }, /option size must be an integer of at least 0; got -1/],
      [
        { timeout: 'soon' as unknown as number },
        /option timeout must be a number of milliseconds, 0 or more \(Infinity for none\); got "soon"/,
      ],
      [{ kind: 'static' as 'queue' }, /option kind must be "queue" or "null"; got "static"/],
      [{ max: 10, maxOverflow: 2 }, /maxOverflow \(with size\) or pg's max, not both/],
      [{ size: 0, maxOverflow: 0 }, /size \+ maxOverflow must be at least 1/],
      [{ prePing: 'yes' as unknown as boolean }, /option prePing must be true or false/],
    ];
    for (const [options, message] of bad) {
      assert.throws(
        () => new Pool(options, Client),
        (err: Error) => err instanceof TypeError && message.test(err.message),
        JSON.stringify(options)
      );
    }
  });

  test(
    "pg's names map onto the QueuePool's: max alone is " + 'size 0 + overflow max; the password is not enumerable',
    () => {
      const { Client } = fakeClientClass();
      const pool = new Pool(
        { max: 7, idleTimeoutMillis: 2500, connectionTimeoutMillis: 0, password: 'secret' },
        Client
      );
      const s = pool.stats();
      assert.deepEqual([s.size, s.maxOverflow], [0, 7]);
      assert.doesNotMatch(JSON.stringify(pool.options), /secret/);
      assert.equal(pool.options.password, 'secret');
    }
  );
});
