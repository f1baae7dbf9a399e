// The pool's TracingChannels (pg:pool:connect, pg:pool:release, pg:pool:remove) and its wait and use totals, with an
// injected Client and clock: what a subscriber sees, and when.
import assert from 'node:assert/strict';
import dc from 'node:diagnostics_channel';
import { afterEach, describe, test } from 'node:test';
import { connectChannel, releaseChannel, removeChannel } from '../../src/tracing.ts';
import { advance, flush, makePool, outcome, settled, useMockTimers } from './helpers.ts';

useMockTimers();

type Events = [string, Record<string, unknown>][];

/** Subscribes to every event of a TracingChannel; the subscription ends with the test. */
const unsubscribers: (() => void)[] = [];
afterEach(() => {
  for (const u of unsubscribers.splice(0)) u();
});
function listen (name: string, events: Events): void {
  const handlers = Object.fromEntries(
    ['start', 'end', 'asyncStart', 'asyncEnd', 'error'].map((kind) => [
      kind,
      (ctx: unknown) => {
        events.push([`${name.split(':').at(-1)}:${kind}`, { ...(ctx as object) }]);
      },
    ])
  ) as unknown as dc.TracingChannelSubscribers<object>;
  const channel = dc.tracingChannel(name);
  channel.subscribe(handlers);
  unsubscribers.push(() => channel.unsubscribe(handlers));
}

describe('diagnostics_channel', () => {
  test(
    'pg:pool:connect traces a checkout: start, then asyncEnd with the lease (its wait, queued, opened, overflow, ' +
      'client)',
    async () => {
      const events: Events = [];
      listen('pg:pool:connect', events);
      const { pool } = makePool({ size: 1, maxOverflow: 0 }, { connectMs: 30 });
      const first = outcome(pool.acquire());
      await advance(30);
      assert.deepEqual(
        events.map(([k]) => k),
        ['connect:start', 'connect:end', 'connect:asyncStart', 'connect:asyncEnd']
      );
      const [, done] = events[3]!;
      assert.equal(done.pool, pool);
      const lease = done.result as {
        waitMs: number;
        opened: boolean;
        queued: boolean;
        overflow: boolean;
        client: unknown;
      };
      assert.deepEqual([lease.waitMs, lease.opened, lease.queued, lease.overflow], [30, true, false, false]);
      assert.equal(lease.client, first.value!.client);
      // A connect() is traced too, its result the lease all the same; a failure carries the error.
      events.length = 0;
      const second = settled(pool.connect());
      await advance(10);
      assert.equal(events[0]![0], 'connect:start');
      first.value!.release();
      await flush();
      assert.ok(second.value);
      assert.equal((events.at(-1)![1].result as { queued: boolean }).queued, true);
      events.length = 0;
      const third = settled(pool.acquire({ signal: AbortSignal.abort() }));
      await flush();
      assert.equal(third.code, 'ABORTED');
      assert.deepEqual(
        events.map(([k]) => k),
        ['connect:start', 'connect:end', 'connect:error', 'connect:asyncStart', 'connect:asyncEnd']
      );
      assert.equal((events[2]![1].error as { code: string }).code, 'ABORTED');
    }
  );

  test(
    'pg:pool:release around a return, with how long it was ' +
      'held; pg:pool:remove around a close, with its cause',
    async () => {
      const events: Events = [];
      listen('pg:pool:release', events);
      listen('pg:pool:remove', events);
      const { pool } = makePool(
        { size: 1, maxOverflow: 0 },
        { queryMs: 1000, hangQuery: (text) => text === 'hang' }
      );
      const lease = outcome(pool.acquire());
      await advance(10);
      await advance(250);
      lease.value!.release();
      assert.deepEqual(
        events.map(([k]) => k),
        ['release:start', 'release:end']
      );
      assert.equal(events[0]![1].heldMs, 250);
      assert.equal(events[0]![1].client, lease.value!.client);
      events.length = 0;
      const busy = outcome(pool.acquire());
      await flush();
      busy.value!.client.query('hang')!.catch(() => {});
      busy.value!.release();
      await flush();
      const removed = events.filter(([k]) => k.startsWith('remove'));
      assert.deepEqual(
        removed.map(([k]) => k),
        ['remove:start', 'remove:end', 'remove:asyncStart', 'remove:asyncEnd']
      );
      assert.equal(removed[0]![1].cause, 'busy');
    }
  );

  test('while nobody listens, no checkout, return or close goes through the channels', async () => {
    const calls: string[] = [];
    const restore: (() => void)[] = [];
    for (const [name, channel] of [
      ['connect', connectChannel],
      ['release', releaseChannel],
      ['remove', removeChannel],
    ] as const) {
      for (const method of ['tracePromise', 'traceSync'] as const) {
        const original = channel[method];
        (channel as unknown as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]) {
          calls.push(`${name}.${method}`);
          return (original as (...a: unknown[]) => unknown).apply(this, args);
        };
        restore.push(() => {
          (channel as unknown as Record<string, unknown>)[method] = original;
        });
      }
    }
    try {
      const { pool } = makePool({ size: 0, maxOverflow: 1, overflowIdle: 5 });
      const lease = outcome(pool.acquire());
      await advance(10);
      lease.value!.release();
      await advance(10);
      assert.equal(pool.totalCount, 0, 'closed once idle');
      assert.deepEqual(calls, []);
      listen('pg:pool:connect', []);
      const traced = outcome(pool.acquire());
      await advance(10);
      assert.ok(traced.value);
      assert.deepEqual(calls, ['connect.tracePromise']);
    } finally {
      for (const r of restore) r();
    }
  });
});

describe('the wait and use totals', () => {
  test('waitMsTotal adds up what callers waited; useMsTotal how long they held their connections', async () => {
    const { pool } = makePool({ size: 1, maxOverflow: 0 }, { connectMs: 20 });
    const a = outcome(pool.acquire());
    await advance(20);
    const b = outcome(pool.acquire());
    await advance(100);
    a.value!.release();
    await flush();
    await advance(50);
    b.value!.release();
    const s = pool.stats();
    assert.deepEqual([s.waitMsTotal, s.useMsTotal], [20 + 100, 100 + 50]);
  });
});
