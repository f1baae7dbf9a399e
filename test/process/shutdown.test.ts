// Graceful shutdown beyond the signal cases of signals.test.ts: the grace period, and no
// acknowledged write lost.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { freshDatabase, get, json, request, startService, tempDir, withService } from '../helper.ts';

describe('graceful shutdown', () => {
  test('SIGTERM: new connections are refused at once while the requests in flight finish', async () => {
    const db = await freshDatabase();
    const s = await startService({ DATABASE_URL: db });
    const inFlight = [get(s.url, '/sleep/postgres/?seconds=1.5'), get(s.url, '/sleep/node/?seconds=1.5')];
    await delay(300);
    const exit = s.stop('SIGTERM');
    await delay(300);
    await assert.rejects(get(s.url, '/todos/'), /ECONNREFUSED|ECONNRESET|socket hang up/);
    for (const res of await Promise.all(inFlight)) assert.equal(res.status, 200);
    assert.equal(await exit, 0);
  });

  test('SHUTDOWN_GRACE bounds the wait: a 20 s request is cut after 1 s, and the exit is still 0', async () => {
    const db = await freshDatabase();
    const s = await startService({ DATABASE_URL: db, SHUTDOWN_GRACE: '1' });
    const long = get(s.url, '/sleep/postgres/?seconds=20').catch((err: Error) => err);
    await delay(300);
    const t0 = performance.now();
    assert.equal(await s.stop('SIGTERM'), 0);
    const ms = performance.now() - t0;
    assert.ok(ms >= 900 && ms < 6000, `exit after ${Math.round(ms)} ms`);
    assert.ok((await long) instanceof Error, 'the long request was cut');
  });

  test(
    'no acknowledged write is lost: POSTs interrupted by SIGTERM, every 201 is there after a restart',
    { timeout: 120_000 },
    async () => {
      const dir = tempDir();
      const first = await startService({ DATA_DIR: dir });
      const acknowledged: { id: number; title: string }[] = [];
      const stopped = new AbortController();
      const writer = async (w: number) => {
        for (let i = 0; !stopped.signal.aborted || i < 3; i++) {
          try {
            const res = await request(first.url, 'POST', '/todos/', json({ title: `w${w}-${i}` }));
            if (res.status === 201) acknowledged.push(res.json as { id: number; title: string });
          } catch {
            return; // the server went away: this write was never acknowledged
          }
        }
      };
      const writers = [0, 1, 2, 3].map(writer);
      await delay(700);
      stopped.abort();
      assert.equal(await first.stop('SIGTERM'), 0);
      await Promise.all(writers);
      assert.ok(acknowledged.length > 10, `${acknowledged.length} writes acknowledged`);
      await withService({ DATA_DIR: dir }, async (second) => {
        // Every page, each from the cursor the last one's Link names.
        const stored = new Map<number, string>();
        let path: string | undefined = '/todos/?limit=500';
        while (path) {
          const page = await get(second.url, path);
          for (const t of (page.json as { todos: { id: number; title: string }[] }).todos) stored.set(t.id, t.title);
          path = /^<([^>]+)>/.exec(String(page.headers.link ?? ''))?.[1];
        }
        for (const a of acknowledged) {
          assert.equal(stored.get(a.id), a.title, `acknowledged todo ${a.id} is stored`);
        }
      });
    }
  );
});
