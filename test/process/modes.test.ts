// What blocks and what does not, in the built service with real clients on real sockets. The
// original's three setups are run, with their verdicts, by the demo (test/process/demo.test.ts,
// scenarios 1 to 3); here, the one it lacks, and what a blocked loop does to every other request.
// A duration is the property here, so the sleeps are 1 s and the bounds are relative to them
// with room for a busy machine.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { burst } from '../../src/client/load.ts';
import { burstSeconds, COMBINATIONS, modeOfRoute } from '../../src/scenarios.ts';
import { freshDatabase, get, withService } from '../helper.ts';

const N = 5;
const S = 1;

let db: string;
before(async () => {
  db = await freshDatabase();
});

describe('modes: N = 5 concurrent sleeps of 1 s per route', () => {
  for (const c of COMBINATIONS.filter((x) => x.original === '(not in the original)')) {
    test(`APP_MODE=${c.appMode} DB_MODE=${c.dbMode} (${c.original}): N x S when blocking, S when not`, async () => {
      // A pool of N, so that the pool is not what limits this test. Client timeouts of 1 s: in a
      // blocking mode the requests wait unread for up to N x S, and must not be cut for it.
      const env = {
        DATABASE_URL: db,
        APP_MODE: c.appMode,
        DB_MODE: c.dbMode,
        POOL_SIZE: String(N),
        POOL_MAX_OVERFLOW: '0',
        REQUEST_TIMEOUT: '1',
        HEADERS_TIMEOUT: '1',
      };
      await withService(env, async (s) => {
        for (const route of ['/sleep/node/', '/sleep/postgres/']) {
          const b = await burst(`${s.url}${route}?seconds=${S}`, N);
          assert.deepEqual(
            b.results.map((r) => r.status),
            Array(N).fill(200)
          );
          const expected = burstSeconds(N, S, modeOfRoute(route, c)) * 1000;
          if (modeOfRoute(route, c) === 'blocking') {
            // One after the other: never faster than N x S.
            assert.ok(
              b.totalMs >= expected * 0.98,
              `${route} took ${Math.round(b.totalMs)} ms, expected about ${expected}`
            );
          } else {
            // All together: far from N x S even on a busy machine.
            assert.ok(
              b.totalMs >= expected * 0.98 && b.totalMs < (N * S * 1000) / 2,
              `${route} took ${Math.round(b.totalMs)} ms, expected about ${expected}`
            );
          }
        }
      });
    });
  }

  for (const [variable, route] of [
    ['APP_MODE', '/sleep/node/'],
    ['DB_MODE', '/sleep/postgres/'],
  ] as const) {
    test(`${variable}=blocking: a /todos/ request sent during a 2 s ${route} waits for it`, async () => {
      await withService({ DATABASE_URL: db, [variable]: 'blocking' }, async (s) => {
        const slow = get(s.url, `${route}?seconds=2`);
        await new Promise((resolve) => setTimeout(resolve, 300));
        const quick = await get(s.url, '/todos/');
        assert.equal((await slow).status, 200);
        assert.equal(quick.status, 200);
        assert.ok(
          quick.ms >= 1500,
          `/todos/ answered in ${Math.round(quick.ms)} ms although the event loop was blocked for 2 s`
        );
      });
    });
  }

  test('non-blocking: the same /todos/ request is answered while both sleeps run', async () => {
    await withService({ DATABASE_URL: db }, async (s) => {
      const slow = [get(s.url, '/sleep/node/?seconds=3'), get(s.url, '/sleep/postgres/?seconds=3')];
      await new Promise((resolve) => setTimeout(resolve, 300));
      const quick = await get(s.url, '/todos/');
      assert.ok(quick.ms < 1500, `/todos/ took ${Math.round(quick.ms)} ms`);
      const done = await Promise.all(slow);
      assert.ok(done.every((r) => r.status === 200 && r.ms >= 2900));
    });
  });
});
