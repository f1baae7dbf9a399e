// `npm run sizing -- --quick`: the pool-sizing lab against a real PostgreSQL, judged on the shape
// of what it measured (not on figures, which depend on the machine): the wait workload serves
// more with every connection added, and the recommendation is the one its own table implies.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freshDatabase, runCli, tempDir } from '../helper.ts';

/** The rows of one of the two tables: pool size and req/s. */
function table (stdout: string, workload: 'wait' | 'work'): { size: number; rps: number }[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`${workload}: `));
  assert.ok(start >= 0, `the ${workload} table:\n${stdout}`);
  const rows: { size: number; rps: number }[] = [];
  for (const line of lines.slice(start + 3)) {
    const cells = line.split('|').map((c) => c.trim());
    if (!/^\d+$/.test(cells[0] ?? '')) break;
    rows.push({ size: Number(cells[0]), rps: Number(cells[1]) });
  }
  return rows;
}

test(
  'sizing --quick: the wait workload grows with the pool, the work workload does not past the cores, and the ' +
    'recommendation follows from the table',
  { timeout: 180_000 },
  async () => {
    const report = join(tempDir(), 'sizing.html');
    const t0 = performance.now();
    const res = await runCli(['sizing', '--quick', '--report', report], {
      DATABASE_URL: await freshDatabase({ seeded: true }),
    });
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    assert.ok(![res.stdout, res.stderr].some((s) => s.includes('\r') || s.includes('\u001b')), 'no progress line');
    assert.ok(seconds < 120, `took ${seconds.toFixed(0)} s`); // the README promises under 90 s on an idle machine

    const wait = table(res.stdout, 'wait');
    const work = table(res.stdout, 'work');
    assert.deepEqual(
      wait.map((r) => r.size),
      [1, 2, 4, 8, 16]
    );
    assert.deepEqual(
      work.map((r) => r.size),
      [1, 2, 4, 8, 16]
    );
    // pg_sleep holds a connection without using a core: each doubling of the pool nearly doubles throughput.
    for (let i = 1; i < wait.length; i++) {
      assert.ok(wait[i]!.rps > wait[i - 1]!.rps * 1.5, `wait: ${JSON.stringify(wait)}`);
    }
    // Each point is compared with Little's law, and every request was answered.
    assert.match(res.stdout, /Little's law \| measured \/ law/);
    assert.doesNotMatch(res.stdout, /, \d+ errors/);

    // The recommendation: the smallest size within 15 % of the best, per workload, as printed.
    for (const [name, rows] of [
      ['queries that wait', wait],
      ['queries that compute', work],
    ] as const) {
      const best = rows.reduce((a, r) => (r.rps > a.rps ? r : a));
      const smallest = rows.find((r) => r.rps >= 0.85 * best.rps)!;
      assert.match(
        res.stdout,
        new RegExp(`${name} *: pool ${smallest.size} \\(`),
        `${name}: expected pool ${smallest.size} from ${JSON.stringify(rows)}`
      );
    }
    assert.match(res.stdout, /2 x cores \+ effective spindles .* = 2 x \d+ \+ 0 = \d+ connections/);
    assert.match(
      res.stdout,
      /the budget: PostgreSQL [\d.]+ allows \d+ connections; 1 host\(s\) x 1 worker\(s\) may have at most \d+ each/
    );

    // The report: both curves, Chart.js inlined.
    assert.ok(existsSync(report));
    const html = readFileSync(report, 'utf8');
    assert.match(html, /<canvas id="chart-0">/);
    assert.match(html, /<canvas id="chart-1">/);
    assert.match(html, /Chart\.js v4/);
  }
);
