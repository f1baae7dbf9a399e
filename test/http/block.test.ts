// What blocks in Node.js: each /block/ route holds the event loop for its work, its /offload/
// twin does the same work and leaves the loop free; every parameter is bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KINDS } from '../../src/loop/catalog.ts';
import { build } from '../helper.ts';

/** Small amounts of each kind of work: the routes' shape, not their cost. */
const SMALL: Record<string, number> = { cpu: 30, hash: 2, json: 64, regex: 16, gzip: 512, fs: 8, wait: 30 };

test(
  'every /block/ route and its /offload/ twin do the same work: the same result, one on the loop, one off it',
  async (t) => {
    const { app } = await build(t);
    assert.deepEqual(Object.keys(KINDS), Object.keys(SMALL));
    for (const [kind, n] of Object.entries(SMALL)) {
      const param = KINDS[kind as keyof typeof KINDS].param;
      const [blocked, offloaded] = await Promise.all(
        ['block', 'offload'].map((way) => app.inject({ url: `/${way}/${kind}/?${param}=${n}` }))
      );
      assert.equal(blocked!.statusCode, 200, blocked!.body);
      assert.equal(offloaded!.statusCode, 200, offloaded!.body);
      const b = blocked!.json<{ work: string; onLoop: boolean; ms: number; result: number | boolean }>();
      const o = offloaded!.json<typeof b>();
      assert.deepEqual([b.work, b.onLoop, o.work, o.onLoop], [kind, true, kind, false]);
      if (kind === 'cpu' || kind === 'wait') {
        assert.ok(b.ms >= n - 1 && o.ms >= n - 1, `${kind}: ${b.ms} / ${o.ms} ms for ${n} ms`);
      } else if (kind === 'gzip') {
        assert.ok(
          Math.abs((b.result as number) - (o.result as number)) < 64,
          `${kind}: ${b.result} vs ${o.result} bytes`
        );
      } else assert.equal(b.result, o.result, kind);
    }
  }
);

test('while a /block/ route runs, nothing else is served; while its twin runs, the loop answers', async (t) => {
  const { app } = await build(t);
  // A timer due in 10 ms fires only when the loop is free again.
  const lateness = async (url: string) => {
    const asked = performance.now();
    let firedAt = 0;
    const timer = new Promise<void>((resolve) =>
      setTimeout(() => {
        firedAt = performance.now();
        resolve();
      }, 10)
    );
    const res = app.inject({ url });
    await Promise.all([timer, res]);
    return { late: firedAt - asked - 10, res: await res };
  };
  const blocked = await lateness('/block/cpu/?ms=400');
  assert.equal(blocked.res.statusCode, 200);
  assert.ok(blocked.late > 300, `the timer fired ${blocked.late} ms late, during the 400 ms loop`);
  const free = await lateness('/offload/cpu/?ms=400');
  assert.equal(free.res.statusCode, 200);
  assert.ok(free.late < 200, `the timer fired ${free.late} ms late, beside the loop in a worker thread`);
});

test('a parameter out of range, or not a number, is a 400 naming it and its bounds', async (t) => {
  const { app } = await build(t);
  const cases: [string, RegExp][] = [
    ['/block/cpu/?ms=0', /ms.*>= 1/],
    ['/block/cpu/?ms=5001', /ms.*<= 5000/],
    ['/offload/hash/?count=21', /count.*<= 20/],
    ['/block/json/?kb=lots', /kb.*integer/],
    ['/block/regex/?n=28', /n.*<= 27/],
    ['/offload/gzip/?kb=65537', /kb.*<= 65536/],
    ['/block/fs/?times=-1', /times/],
  ];
  for (const [url, message] of cases) {
    const res = await app.inject({ url });
    assert.equal(res.statusCode, 400, url);
    const body = res.json<{ code: string; message: string; field?: string }>();
    assert.match(body.message, message, `${url}: ${res.body}`);
  }
});

test('the routes are in the OpenAPI document, with their bounded parameter', async (t) => {
  const { app } = await build(t);
  const doc = (await app.inject({ url: '/openapi.json' })).json<{
    paths: Record<
      string,
      { get: { parameters: { name: string; schema: { minimum: number; maximum: number } }[] } }
    >;
  }>();
  for (const [kind, k] of Object.entries(KINDS)) {
    for (const way of ['block', 'offload']) {
      const op = doc.paths[`/${way}/${kind}/`]?.get;
      assert.ok(op, `/${way}/${kind}/`);
      const p = op.parameters.find((x) => x.name === k.param);
      assert.ok(
        p && Number.isFinite(p.schema.minimum) && Number.isFinite(p.schema.maximum),
        `/${way}/${kind}/ ?${k.param}= is bounded`
      );
    }
  }
});

test('the partitioned twin: the same CPU loop in slices, with the loop answering between them', async (t) => {
  const { app } = await build(t);
  let late = 0;
  let timers = 0;
  const ticking = setInterval(() => timers++, 10);
  const asked = performance.now();
  const res = await app.inject({ url: '/partition/cpu/?ms=300&slice=5' });
  clearInterval(ticking);
  late = performance.now() - asked;
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json<{ work: string; onLoop: boolean; ms: number; result: number; slices: number }>();
  assert.deepEqual([body.work, body.onLoop, body.slices], ['cpu', true, 60]);
  assert.ok(body.ms >= 300, `${body.ms} ms`);
  // A 10 ms timer fires between slices: some 30 times in 300 ms (a loaded machine, fewer), never
  // once as it would behind the loop in one piece.
  assert.ok(timers >= 10, `${timers} timer callbacks in ${Math.round(late)} ms`);
  const bad = await app.inject({ url: '/partition/cpu/?slice=0' });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json<{ message: string }>().message, /slice/);
});

test("libuv's thread pool: /threadpool/ times what waits on it; the probe's delay is in /metrics", async (t) => {
  const { app } = await build(t);
  const res = await app.inject({ url: '/threadpool/' });
  assert.equal(res.statusCode, 200, res.body);
  const times = res.json<{ size: number; delayMs: number; fsMs: number; lookupMs: number; connectMs: number }>();
  assert.equal(times.size, Number(process.env.UV_THREADPOOL_SIZE) || 4);
  for (const key of ['delayMs', 'fsMs', 'lookupMs', 'connectMs'] as const) {
    assert.ok(times[key] >= 0 && times[key] < 10_000, `${key}: ${times[key]}`);
  }
  const metrics = (await app.inject({ url: '/metrics' })).body;
  const count = Number(/^uv_threadpool_delay_seconds_count (\d+)/m.exec(metrics)?.[1]);
  assert.ok(count >= 1, 'probed at least once');
});
