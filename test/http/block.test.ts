// What blocks in Node.js: each /block/ route holds the event loop for its work, its /offload/
// twin does the same work and leaves the loop free; every parameter is bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KINDS } from '../../src/loop/catalog.ts';
import { build } from '../helper.ts';

/** Small amounts of each kind of work: the routes' shape, not their cost. */
const SMALL: Record<string, number> = { cpu: 30, hash: 2, json: 64, regex: 16, gzip: 512, fs: 8 };

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
      if (kind === 'cpu') assert.ok(b.ms >= n && o.ms >= n, `${kind}: ${b.ms} / ${o.ms} ms for ${n} ms`);
      else if (kind === 'gzip') {
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
