// Leaked connections named (leakDetectionMs): a lease held past the threshold is reported once, with the stack of the
// code that checked it out, and again when it is given back. With an injected Client and clock; no database.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LeakReport } from '../../src/index.ts';
import type { FakeClient } from '../fake-client.ts';
import { advance, flush, makePool, outcome, useMockTimers } from './helpers.ts';

useMockTimers();

/** Checks out a connection from a function with a name a stack can show. */
function checkOutForTheReport (pool: ReturnType<typeof makePool>['pool'], options = {}) {
  return outcome(pool.acquire(options));
}

describe('leak detection', () => {
  test(
    'a lease held past leakDetectionMs is reported once, ' +
      "with the checkout's stack; again when it is given back",
    async () => {
      const { pool } = makePool({ size: 1, maxOverflow: 0, leakDetectionMs: 1000 });
      const reports: LeakReport<FakeClient>[] = [];
      pool.on('leak', (r: LeakReport<FakeClient>) => reports.push(r));
      const held = checkOutForTheReport(pool);
      await advance(10);
      await advance(999);
      assert.equal(reports.length, 0, 'not before the threshold');
      await advance(2);
      assert.equal(reports.length, 1);
      const [first] = reports;
      assert.equal(first!.released, false);
      assert.equal(first!.client, held.value!.client);
      assert.ok(first!.heldMs >= 1000 && first!.heldMs < 1010, String(first!.heldMs));
      assert.match(first!.stack, /checkOutForTheReport .*leak\.test\.ts:\d+:\d+/);
      assert.doesNotMatch(first!.stack.split('\n')[0]!, /Pool\.|pool\.ts/, "the pool's own frames are left out");
      await advance(3000, 100);
      assert.equal(reports.length, 1, 'reported once while held');
      held.value!.release();
      assert.equal(reports.length, 2);
      assert.equal(reports[1]!.released, true);
      assert.ok(reports[1]!.heldMs >= 4000, String(reports[1]!.heldMs));
      assert.equal(pool.stats().leaks, 1);
    }
  );

  test(
    'one given back in time is never reported, and the next ' +
      'lease of the connection is watched from its own start',
    async () => {
      const { pool } = makePool({ size: 1, maxOverflow: 0, leakDetectionMs: 500 });
      const reports: LeakReport[] = [];
      pool.on('leak', (r: LeakReport) => reports.push(r));
      const a = outcome(pool.acquire());
      await advance(10);
      await advance(400);
      a.value!.release();
      await flush();
      const b = outcome(pool.acquire());
      await flush();
      await advance(400);
      assert.equal(reports.length, 0, 'b is held 400 ms, a was: no report at 500 ms after a began');
      await advance(101);
      assert.equal(reports.length, 1);
      b.value!.release();
    }
  );

  test(
    'per checkout: acquire({ leakDetectionMs }); onLeak is called as the event is emitted; off by default',
    async () => {
      const seen: LeakReport[] = [];
      const { pool } = makePool({ size: 2, maxOverflow: 0, onLeak: (r: LeakReport) => seen.push(r) });
      const plain = outcome(pool.acquire());
      const watched = outcome(pool.acquire({ leakDetectionMs: 200, label: 'GET /report' }));
      await advance(10);
      await advance(5000, 100);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.client, watched.value!.client);
      assert.equal(seen[0]!.thresholdMs, 200);
      assert.equal(seen[0]!.label, 'GET /report');
      plain.value!.release();
      watched.value!.release();
    }
  );

  test('connect() and query() are watched as acquire() is: the stack starts at their caller', async () => {
    const { pool } = makePool({ size: 1, maxOverflow: 0, leakDetectionMs: 100 }, { queryMs: 500 });
    const reports: LeakReport[] = [];
    pool.on('leak', (r: LeakReport) => reports.push(r));
    const fromQuery = pool.query('SELECT pg_sleep(0.5)');
    await advance(400);
    assert.equal(reports.length, 1);
    assert.match(reports[0]!.stack.split('\n')[0]!, /leak\.test\.ts/);
    await advance(200);
    await fromQuery;
    assert.equal(reports.length, 2, 'and when the query gave it back');
  });
});
