// The client's figures for a burst, and the demo's verdicts on them, without a server.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Burst, RequestResult } from '../../src/client/load.ts';
import { errorLines, summarize, summaryLine, waveLine, waves } from '../../src/client/summary.ts';
import { checkTimeouts, checkWaves, within } from '../../src/demo/verdicts.ts';

const ok = (start: number, end: number): RequestResult => ({ start, end, status: 200 });
const burst = (results: RequestResult[]): Burst => ({
  url: 'http://x/sleep/postgres/',
  results,
  totalMs: Math.max(...results.map((r) => r.end)),
});

describe("the client's summary", () => {
  test('latency percentiles, ok and errors by kind with the first message of each', () => {
    const results = [
      ...Array.from({ length: 98 }, (_, i) => ok(0, 1000 + i)),
      {
        start: 0,
        end: 2000,
        status: 503,
        error: 'http',
        body: 'QueuePool limit of size 5 overflow 10 reached',
      } as RequestResult,
      { start: 0, end: 50, error: 'refused', message: 'connect ECONNREFUSED' } as RequestResult,
    ];
    const s = summarize(burst(results));
    assert.equal(s.ok, 98);
    assert.equal(s.errors, 2);
    assert.deepEqual(s.errorKinds, { 'HTTP 503': 1, refused: 1 });
    assert.deepEqual(errorLines(s), [
      '\t1 x HTTP 503: QueuePool limit of size 5 overflow 10 reached',
      '\t1 x refused: connect ECONNREFUSED',
    ]);
    assert.equal(s.latency.min, 50);
    assert.equal(s.latency.max, 2000);
    assert.ok(Math.abs(s.latency.p50 - 1049) <= 1, `p50 ${s.latency.p50}`);
    assert.equal(summaryLine('/x/', s).split(';')[0], '/x/: 98 ok, 2 errors');
  });

  test('responses per second: the waves as the client saw them', () => {
    const s = summarize(burst([ok(0, 1010), ok(0, 1020), ok(0, 2010), ok(0, 3500)]));
    assert.deepEqual(s.perSecond, [0, 2, 1, 1]);
    assert.equal(waveLine(s), '\tresponses per second: 1-2s:2  2-3s:1  3-4s:1');
  });

  test('waves: responses closer than the gap belong together', () => {
    assert.deepEqual(
      waves([1000, 1010, 1490, 2000, 2100, 3000], 500).map((w) => w.length),
      [3, 2, 1]
    );
    assert.deepEqual(
      waves([3000, 1000, 2000]).map((w) => w[0]),
      [1000, 2000, 3000]
    );
  });
});

describe("the demo's verdicts", () => {
  test('within 10 % + 0.3 s of the expected total', () => {
    assert.ok(within(35.6, 35));
    assert.ok(within(38.8, 35));
    assert.ok(!within(38.9, 35));
    assert.ok(within(1.4, 1));
    assert.ok(!within(1.41, 1));
  });

  test("waves of the pool's size, each one S after the one before", () => {
    const exact = burst(Array.from({ length: 45 }, (_, i) => ok(0, 1000 * (Math.floor(i / 15) + 1) + i)));
    assert.equal(checkWaves(exact, 1, 15), undefined);
    // A late start delays every wave alike: still waves of 15, 1 s apart.
    const late = burst(exact.results.map((r) => ({ ...r, end: r.end + 700 })));
    assert.equal(checkWaves(late, 1, 15), undefined);
    // A first wave whose connections opened one after another (PgBouncer, 4 workers): staggered by
    // 0.6 s, and every later answer 1 s after the one whose connection it took.
    const staggered = burst(exact.results.map((r, i) => ({ ...r, end: r.end + (i % 15) * 40 })));
    assert.equal(checkWaves(staggered, 1, 15), undefined);
    const sixteen = burst([
      ...exact.results.slice(0, 16).map((r) => ({ ...r, end: 1000 })),
      ...exact.results.slice(16),
    ]);
    assert.match(checkWaves(sixteen, 1, 15) ?? '', /response 16 came at 1\.00s, expected in wave 2 at 2\.00s/);
    // Fourteen connections, not fifteen: the fifteenth answer comes a whole sleep after the first.
    const fourteen = burst(Array.from({ length: 42 }, (_, i) => ok(0, 1000 * (Math.floor(i / 14) + 1) + i)));
    assert.match(checkWaves(fourteen, 1, 15) ?? '', /response 15 came at 2\.01s, expected in wave 1/);
    const failed = burst([...exact.results.slice(1), { start: 0, end: 1000, status: 503, error: 'http' }]);
    assert.match(checkWaves(failed, 1, 15) ?? '', /a request failed: HTTP 503/);
  });

  test('scenario 5: 15 served at 3 s and 15 refused with 503 at 2 s', () => {
    const good = burst([
      ...Array.from({ length: 15 }, () => ok(0, 3050)),
      ...Array.from({ length: 15 }, () => ({ start: 0, end: 2040, status: 503, error: 'http' }) as RequestResult),
    ]);
    assert.equal(checkTimeouts(good), undefined);
    assert.match(checkTimeouts(burst(good.results.slice(1))) ?? '', /14 x 200 and 15 x 503, expected 15 and 15/);
  });
});
