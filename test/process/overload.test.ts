// A flood: 5,000 concurrent database requests against the default pool, on real sockets.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { burst } from '../../src/client/load.ts';
import type { PoolStats } from 'pg-queuepool';
import { freshDatabase, get, withService } from '../helper.ts';

const rssMb = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

test(
  '5,000 concurrent database requests: every one answered (served or shed), memory bounded, /healthz answers meanwhile',
  { timeout: 120_000 },
  async () => {
    const db = await freshDatabase();
    await withService({ DATABASE_URL: db, POOL_TIMEOUT: '3' }, async (s) => {
      const pid = s.proc.pid!;
      const baseline = rssMb(pid);
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssMb(pid));
      }, 100);
      const flood = burst(`${s.url}/sleep/postgres/?seconds=2`, 5000);
      await delay(1000);
      const probe = await get(s.url, '/healthz');
      const b = await flood;
      clearInterval(sampler);
      const count = (status: number) => b.results.filter((r) => r.status === status).length;
      console.log(
        `flood: RSS ${baseline.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB; ${count(200)} x 200, ${count(503)} ` +
          `x 503, /healthz during the flood in ${probe.ms.toFixed(0)} ms, total ${(b.totalMs / 1000).toFixed(1)} s`
      );
      assert.equal(probe.status, 200);
      assert.equal(count(200) + count(503), 5000, 'every request got an answer');
      // At least the warm core connections serve; the queue holds at most POOL_QUEUE_MAX (1000).
      assert.ok(count(200) >= 5, `${count(200)} served`);
      assert.ok(count(503) >= 5000 - 15 - 1000 - 30, `${count(503)} shed`);
      assert.ok(peak < baseline + 250, `RSS grew from ${baseline.toFixed(0)} MB to ${peak.toFixed(0)} MB`);
      const after = (await get(s.url, '/pool')).json as PoolStats;
      assert.deepEqual([after.waiting, after.inUse], [0, 0]);
    });
  }
);
