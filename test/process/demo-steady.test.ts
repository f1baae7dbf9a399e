// The demo's scenario past the ceiling at a steady rate (demo --steady-rate): an open loop under
// and over the pool's capacity, judged by its own verdicts against queueing arithmetic and the
// service's own waiting count. (demo.test.ts runs the original's five; this one runs alone.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runArrivalsScenario } from '../../src/demo/arrivals.ts';
import { KNEE_RATES } from '../../src/demo/knee.ts';
import type { Stoppable } from '../../src/harness/server-process.ts';
import { freshDatabase, runCli } from '../helper.ts';

test(
  'at 10/s the latency stays at the sleep; at 20/s the queue grows by 5 a second until POOL_TIMEOUT sheds, and ' +
    "Little's law holds against the service's waiting count; across the rates, the knee lands at the pool's 15/s",
  { timeout: 180_000 },
  async () => {
    const lines: string[] = [];
    const running = new Set<Stoppable>();
    try {
      const { rows, runs, sweep } = await runArrivalsScenario(await freshDatabase(), {
        quick: true,
        running,
        out: (l) => lines.push(l),
      });
      const output = lines.join('\n');
      assert.equal(rows.length, 8, output);
      for (const r of rows) {
        assert.equal(r.ok, true, `${r.claim}: ${r.measured} (expected ${r.expected})\n${output}`);
      }
      const [under, over] = runs;
      assert.equal(under!.errors, 0);
      // Served first, shed later: the 503s come only once the queue's wait has grown to POOL_TIMEOUT.
      const byArrival = [...over!.results].sort((a, b) => a.intended - b.intended);
      const firstShed = byArrival.findIndex((r) => r.status === 503);
      assert.ok(firstShed > 60, `the first 503 was arrival ${firstShed}`);
      assert.ok(byArrival.slice(0, firstShed).every((r) => r.status === 200));
      assert.match(output, /^ {4}second {2}waiting \(the service\)/m);
      // The sweep: every rate run, in order, each with the prediction beside it.
      assert.deepEqual(
        sweep.points.map((p) => p.rate),
        KNEE_RATES
      );
      assert.equal(sweep.capacity?.rate, 15);
      assert.ok(sweep.points.every((p) => p.predicted && p.run.sent === p.run.scheduled));
      assert.match(output, /^ +offered +sent\/s/m);
    } finally {
      for (const r of [...running].reverse()) await r.stop();
    }
  }
);

test('demo --steady-rate is refused beside --hosts, and listed in --help', async () => {
  const refused = await runCli(['demo', '--hosts', '2', '--steady-rate']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--hosts runs on its own: without --scale, --steady-rate/);
  assert.match((await runCli(['demo', '--help'])).stdout, /--steady-rate/);
});
