// WORKERS > 1: processes of node:cluster, each with its own pool.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { burst } from '../../src/client/load.ts';
import { freshDatabase, get, parseMetrics, withService } from '../helper.ts';

describe('workers', () => {
  test('WORKERS=2 with APP_MODE=blocking: 4 blocking sleeps of 2 s end after 4 or 6 s, not 8', async () => {
    const db = await freshDatabase();
    await withService({ DATABASE_URL: db, WORKERS: '2', APP_MODE: 'blocking' }, async (s) => {
      const b = await burst(`${s.url}/sleep/node/?seconds=2`, 4);
      assert.ok(b.results.every((r) => r.status === 200));
      // One process: 8 s. Two: 4 s when each takes two, 6 s when one takes three: a worker
      // stalled in a blocking sleep takes no new connection from the primary, so node:cluster
      // may split a burst 3 + 1, and never 4 + 0 (each worker gets one of the first two).
      assert.ok(
        b.totalMs >= 3900 && b.totalMs < 7500,
        `total ${Math.round(b.totalMs)} ms, expected 4,000 or 6,000 (one process: 8,000)`
      );
    });
  });

  test('/metrics is the sum over both workers', async () => {
    const db = await freshDatabase();
    await withService({ DATABASE_URL: db, WORKERS: '2', POOL_SIZE: '2', POOL_MAX_OVERFLOW: '1' }, async (s) => {
      const before = parseMetrics((await get(s.url, '/metrics')).body);
      assert.equal(before.get('db_pool_max_connections'), 6, 'two pools of 2 + 1');
      assert.equal(before.get('db_pool_connections{state="idle"}'), 4, 'two warm pools of 2');
      await burst(`${s.url}/todos/`, 40);
      const after = parseMetrics((await get(s.url, '/metrics')).body);
      assert.equal(
        after.get('http_request_duration_seconds_count{route="/todos/",method="GET",status_code="200"}'),
        40,
        'requests counted across workers'
      );
    });
  });
});
