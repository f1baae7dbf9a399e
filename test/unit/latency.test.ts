// The tail and the knee, from known inputs: percentiles down to p99.99, the percentile spectrum,
// a sweep's rates, the queueing prediction, the knee measured from runs, and the progress line.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { summarizeOpenLoop, type OpenResult } from '../../src/client/open-loop.ts';
import { percentiles, percentilesText, spectrum } from '../../src/client/percentiles.ts';
import { ProgressLine } from '../../src/client/progress.ts';
import { capacityOf, measuredCapacity, parseSweep, predict, sweepRates } from '../../src/client/sweep.ts';

/** 1, 2, ..., n milliseconds. */
const ramp = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const near = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected} +- ${tolerance}`);

describe('the tail', () => {
  test('p50 to p99.9 of 1..1000 ms; p99.99 only from 10,000 values; each with its sample size', () => {
    const p = percentiles(ramp(1000));
    near(p.p50, 500, 1, 'p50');
    near(p.p90, 900, 1, 'p90');
    near(p.p99, 990, 1, 'p99');
    near(p.p999, 999, 1, 'p99.9');
    assert.equal(p.max, 1000);
    assert.equal(p.n, 1000);
    assert.equal(p.p9999, undefined, 'too few values to say p99.99');
    assert.match(percentilesText(p), /p99\.9 0\.999s max 1\.000s \(n=1000\)$/);
    assert.doesNotMatch(percentilesText(p), /p99\.99/);

    const big = percentiles(ramp(20_000));
    near(big.p999, 19_980, 20, 'p99.9 of 20,000');
    near(big.p9999!, 19_998, 20, 'p99.99 of 20,000');
    assert.match(percentilesText(big), /p99\.99 (19\.99\d|20\.000)s max 20\.000s \(n=20000\)$/);
  });

  test('one slow value in a thousand: p99 does not see it, p99.9 does', () => {
    const values = [...Array.from({ length: 998 }, () => 10), 5000, 5000];
    const p = percentiles(values);
    near(p.p99, 10, 0.1, 'p99');
    near(p.p999, 5000, 5, 'p99.9');
  });

  test("the open loop's report carries p99.9 for both latencies", () => {
    const results: OpenResult[] = ramp(1000).map((i) => ({ intended: i, sent: i, end: i + (i === 1000 ? 900 : 100) }));
    const run = summarizeOpenLoop(
      { url: 'http://x/', rate: 1000, seconds: 1, arrivals: 'constant', connections: 10, peakInFlight: 1 },
      1000,
      results,
      2000
    );
    near(run.corrected.p99, 100, 1, 'p99');
    near(run.corrected.p999, 100, 1, 'p99.9');
    assert.equal(run.corrected.max, 900);
    assert.equal(run.uncorrected.n, 1000);
  });
});

describe('the percentile spectrum', () => {
  test('1..1000 ms: the value at each step of nines, to the max at log10(n) nines', () => {
    const points = spectrum(ramp(1000));
    const at = (nines: number) => points.find((p) => Math.abs(p.nines - nines) < 0.026)!;
    assert.ok(points[0]!.nines > 0.29 && points[0]!.nines < 0.31, 'it starts at the median');
    assert.equal(at(1).value, 900, 'p90');
    assert.equal(at(2).value, 990, 'p99');
    assert.deepEqual(points.at(-1), { nines: 3, p: 99.9, value: 1000 });
    assert.ok(points.every((p, i) => i === 0 || (p.nines > points[i - 1]!.nines && p.value >= points[i - 1]!.value)));
    assert.deepEqual(spectrum([]), []);
    assert.deepEqual(spectrum([7]), [{ nines: 0, p: 0, value: 7 }]);
  });
});

describe('a rate sweep', () => {
  test('FROM:TO:STEP: its rates, or a message naming what is wrong', () => {
    assert.deepEqual(sweepRates(parseSweep('5:20:5') as never), [5, 10, 15, 20]);
    assert.deepEqual(sweepRates(parseSweep('1:2:0.5') as never), [1, 1.5, 2]);
    assert.deepEqual(sweepRates(parseSweep('3:3:1') as never), [3]);
    assert.match(parseSweep('5:20') as string, /FROM:TO:STEP/);
    assert.match(parseSweep('5:20:0') as string, /positive/);
    assert.match(parseSweep('a:b:c') as string, /FROM:TO:STEP/);
    assert.match(parseSweep('20:5:5') as string, /FROM \(20\) is above TO \(5\)/);
    assert.match(parseSweep('1:1000:1') as string, /more than 50 rates/);
  });

  test('the prediction: flat at the service time to the capacity, then climbing as the queue grows', () => {
    const pool = capacityOf(15, 1, '15 connections / 1 s');
    assert.equal(pool.rate, 15);
    for (const rate of [5, 10, 15]) assert.deepEqual(predict(pool, rate, 4), { p50: 1000, max: 1000 });
    // 20/s for 3 s: 60 arrivals in 4 rounds of 15, each round 0.25 s later than the last.
    const over = predict(pool, 20, 3);
    near(over.max, 1750, 1, 'the last arrival waits 3 rounds');
    near(over.p50, 1250, 1, 'the median waits 1 round');
    // The wait of the last arrival climbs as t x (rate / capacity - 1).
    const long = predict(pool, 17, 30);
    near(long.max, 1000 + 30_000 * (17 / 15 - 1), 150, 'the last of 30 s at 17/s');
  });

  test('the knee measured from how fast latency climbs past it; none where nothing climbs', () => {
    // Runs shaped as a pool of capacity 15/s serves them: latency climbs by (rate / 15 - 1) per second of arrivals.
    const runOf = (rate: number) => {
      const results: OpenResult[] = [];
      for (let t = 0; t < 4000; t += 1000 / rate) {
        results.push({ intended: t, sent: t, end: t + 1000 + t * Math.max(0, rate / 15 - 1), status: 200 });
      }
      return summarizeOpenLoop(
        { url: 'http://x/', rate, seconds: 4, arrivals: 'constant', connections: 1000, peakInFlight: 1 },
        results.length,
        results,
        4000
      );
    };
    near(measuredCapacity([5, 10, 17, 20, 25].map((rate) => ({ rate, run: runOf(rate) })))!, 15, 0.01, 'the knee');
    assert.equal(measuredCapacity([5, 10].map((rate) => ({ rate, run: runOf(rate) }))), undefined);
  });
});

describe('the progress line', () => {
  const stream = (isTTY: boolean) => {
    const written: string[] = [];
    return { written, stream: { isTTY, columns: 80, write: (s: string) => written.push(s) > 0 } };
  };

  test('piped: nothing at all', () => {
    const { written, stream: s } = stream(false);
    const line = new ProgressLine(10, 0, s as never);
    line.update('rate 1 of 3');
    line.clear();
    line.stop();
    assert.deepEqual(written, []);
  });

  test('on a terminal: one line rewritten in place, with the time against the time expected; wiped at the end', () => {
    const { written, stream: s } = stream(true);
    const line = new ProgressLine(60, 0, s as never);
    line.update('rate 2 of 3: 15/s');
    const inner = new ProgressLine(undefined, 0, s as never);
    inner.update('7/100 responses');
    line.update('rate 2 of 3: 15/s');
    inner.stop();
    line.stop();
    assert.equal(written[0], '\r\u001b[2K  rate 2 of 3: 15/s (0 s of about 60 s)');
    assert.ok(written.some((w) => w.includes('rate 2 of 3: 15/s: 7/100 responses')), 'a run inside shows as a detail');
    assert.equal(written.at(-1), '\r\x1b[2K');
    const long = new ProgressLine(undefined, 0, s as never);
    long.update('x'.repeat(200));
    long.stop();
    assert.ok(written.every((w) => w.length <= 80 + 6), 'never wider than the terminal');
    // A terminal that does not say its size (columns 0, as under script(1)): the line is not cut to nothing.
    const unsized = stream(true);
    const quiet = new ProgressLine(13, 0, { ...unsized.stream, columns: 0 } as never);
    quiet.update('rate 1 of 3: 2/s');
    quiet.stop();
    assert.equal(unsized.written[0], '\r\u001b[2K  rate 1 of 3: 2/s (0 s of about 13 s)');
  });
});
