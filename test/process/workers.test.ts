// WORKERS > 1: processes of node:cluster, each with its own pool.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { burst } from '../../src/client/load.ts';
import { freshDatabase, get, parseMetrics, withService } from '../helper.ts';

describe('workers', () => {
  test('WORKERS=2 with APP_MODE=blocking: 10 blocking sleeps of 1 s take about 5 s, not 10', async () => {
    const db = await freshDatabase();
    await withService({ DATABASE_URL: db, WORKERS: '2', APP_MODE: 'blocking' }, async (s) => {
      const b = await burst(`${s.url}/sleep/node/?seconds=1`, 10);
      assert.ok(b.results.every((r) => r.status === 200));
      // One process: 10 s. Two: 5 s when the primary shares them evenly; never below 5 s.
      assert.ok(b.totalMs >= 4900 && b.totalMs < 8500, `total ${Math.round(b.totalMs)} ms, expected about 5000`);
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
      assert.equal(after.get('http_request_duration_seconds_count{route="/todos/",method="GET",status_code="200"}'), 40, 'requests counted across workers');
    });
  });
});
