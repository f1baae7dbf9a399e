// The open-loop generator's arithmetic: its schedule, and what it claims about a run.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LATE_MS, schedule, summarizeOpenLoop, type OpenResult } from '../../src/client/open-loop.ts';

const asked = {
  url: 'http://127.0.0.1:1/',
  rate: 100,
  seconds: 1,
  arrivals: 'constant' as const,
  connections: 1000,
  peakInFlight: 1,
};
/** A request meant at `intended`, sent `lag` ms later, answered `ms` after that. */
const request = (intended: number, lag: number, ms: number): OpenResult => ({
  intended,
  sent: intended + lag,
  end: intended + lag + ms,
  status: 200,
});

describe('the open-loop schedule', () => {
  test('constant arrivals: R a second, evenly spaced, for the duration', () => {
    const times = schedule(2000, 1.5);
    assert.equal(times.length, 3000);
    assert.equal(times[1], 0.5);
    assert.ok(times.every((t, i) => Math.abs(t - i * 0.5) < 1e-9));
  });

  test(
    'Poisson arrivals: the rate on average, with exponential gaps (their spread equals their mean), the same for ' +
      'the same seed',
    () => {
      const times = schedule(1000, 20, 'poisson', 7);
      // 4 standard deviations of a Poisson count.
      assert.ok(Math.abs(times.length - 20_000) < 600, `${times.length} arrivals`);
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
      const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length);
      assert.ok(Math.abs(mean - 1) < 0.03 && Math.abs(sd / mean - 1) < 0.05, `mean gap ${mean} ms, sd ${sd} ms`);
      assert.deepEqual(schedule(1000, 1, 'poisson', 7), schedule(1000, 1, 'poisson', 7));
      assert.notDeepEqual(schedule(1000, 1, 'poisson', 7), schedule(1000, 1, 'poisson', 8));
    }
  );
});

describe('what a run claims', () => {
  test('on time and at the rate: kept; the corrected latency equals the uncorrected one', () => {
    const run = summarizeOpenLoop(
      asked,
      100,
      Array.from({ length: 100 }, (_, i) => request(i * 10, 0.2, 5)),
      1005
    );
    assert.equal(run.keptRate, true, run.why);
    assert.ok(Math.abs(run.achievedRate - 100) < 0.1, String(run.achievedRate));
    assert.ok(Math.abs(run.corrected.p99 - run.uncorrected.p99) < 0.5);
  });

  test('sent late (the generator queued): not kept, the lag named, and the corrected latency counts the wait', () => {
    // Half the requests left 200 ms late, as behind a stalled event loop.
    const run = summarizeOpenLoop(
      asked,
      100,
      Array.from({ length: 100 }, (_, i) => request(i * 10, i % 2 ? 200 : 0, 5)),
      1205
    );
    assert.equal(run.keptRate, false);
    assert.match(run.why!, /left more than \d+ ms late/);
    assert.equal(run.late, 50);
    assert.ok(run.late > 0 && LATE_MS < 200);
    assert.ok(
      run.corrected.p99 >= 200 && run.uncorrected.p99 < 10,
      `${run.corrected.p99} vs ${run.uncorrected.p99}`
    );
  });

  test('too few sent, or at another rate: not kept, and why', () => {
    const few = summarizeOpenLoop(
      asked,
      100,
      Array.from({ length: 60 }, (_, i) => request(i * 10, 0, 5)),
      600
    );
    assert.match(few.why!, /40 of 100 requests were never sent/);
    const slow = summarizeOpenLoop(
      asked,
      100,
      Array.from({ length: 100 }, (_, i) => ({ ...request(i * 10, 0, 5), sent: i * 10.5 })),
      1100
    );
    assert.match(slow.why!, /it sent 95\.2\/s, not 100\/s/);
  });
});
