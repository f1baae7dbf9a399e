// `npm run client -- --sweep-rate FROM:TO:STEP`: latency against offered load, run by the built CLI
// against the app listening in the test process, with a pool of 2 connections and 0.5 s database
// sleeps: a knee at 4 a second, predicted from GET /pool and measured from the climb past it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { buildListening, runCli, tempDir } from '../helper.ts';

interface SweepJson {
  capacity: { connections: number; serviceSeconds: number; rate: number } | null;
  measuredCapacity: number | null;
  points: {
    rate: number;
    achievedRate: number;
    ok: number;
    errors: number;
    errorKinds: Record<string, number>;
    corrected: { p50: number; p99: number; p999: number; max: number; n: number };
    keptRate: boolean;
    predicted: { p50: number; max: number } | null;
  }[];
}

const pool = { POOL_SIZE: '2', POOL_MAX_OVERFLOW: '0' };

describe('the rate sweep', () => {
  test(
    '2, 4 and 6 a second of 0.5 s sleeps on 2 connections: flat below the knee, climbing past it as predicted, the ' +
      "knee measured at the pool's 4/s; piped, no progress line",
    { timeout: 120_000 },
    async (t) => {
      const { url } = await buildListening(t, { settings: pool });
      const report = join(tempDir('anp-sweep-'), 'sweep.html');
      const args = ['--sweep-rate', '2:6:2', '--duration', '3', '--pause', '0.5', '--seconds', '0.5'];
      const res = await runCli(['client', '--url', url, ...args, '--report', report]);
      assert.equal(res.code, 0, res.stderr);
      t.diagnostic(res.stdout);
      // Nothing for a terminal: the output is piped here.
      const out = res.stdout + res.stderr;
      assert.ok(!out.includes('\r') && !out.includes('\u001b'), 'no carriage return, no escape sequence');
      const rows = res.stdout.split('\n').filter((l) => /^ +\d+\/s /.test(l));
      assert.deepEqual(
        rows.map((l) => l.trim().split(/ +/)[0]),
        ['2/s', '4/s', '6/s']
      );
      const predicted = /The knee predicted: ([\d.]+)\/s = 2 connections \(GET \/pool\)/.exec(res.stdout);
      assert.ok(predicted, res.stdout);
      assert.ok(Math.abs(Number(predicted[1]) - 4) <= 0.4, `predicted ${predicted[1]}/s`);
      const measured = /The knee measured: ([\d.]+)\/s/.exec(res.stdout);
      assert.ok(measured, res.stdout);
      assert.ok(Math.abs(Number(measured[1]) - 4) <= 0.8, `measured ${measured[1]}/s, against 4/s`);

      // The report draws the same sweep: its data, with the prediction beside each rate.
      const html = readFileSync(report, 'utf8');
      const data = JSON.parse(/<script id="data" type="application\/json">(.*?)<\/script>/s.exec(html)![1]!) as {
        sweep: { rows: (number | null)[][]; capacity: number; measured: number };
      }[];
      const sweep = data[0]!.sweep;
      assert.deepEqual(
        sweep.rows.map((r) => r[0]),
        [2, 4, 6]
      );
      assert.ok(sweep.rows.every((r) => typeof r[6] === 'number'), 'a predicted p50 at each rate');
      const [below, , above] = sweep.rows as number[][];
      assert.ok(below![2]! < 0.6, `2/s: p50 ${below![2]} s, the sleep`);
      // Past the knee the median arrival waited; the prediction says how long, within a busy machine's margin.
      assert.ok(above![2]! > 0.65, `6/s: p50 ${above![2]} s climbed`);
      assert.ok(Math.abs(above![2]! - above![6]!) <= 0.35 * (above![6]! - 0.5) + 0.1, `6/s: ${above}`);
    }
  );

  test('--json: every rate with its errors by kind, p99.9 and the prediction', { timeout: 60_000 }, async (t) => {
    const { url } = await buildListening(t, { settings: pool });
    const res = await runCli([
      'client',
      '--url',
      url,
      '--sweep-rate',
      '2:3:1',
      '--duration',
      '1',
      '--pause',
      '0',
      '--seconds',
      '0.2',
      '--json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as SweepJson;
    assert.deepEqual(
      doc.points.map((p) => [p.rate, p.ok, p.errors]),
      [
        [2, 2, 0],
        [3, 3, 0],
      ]
    );
    assert.equal(doc.capacity?.connections, 2);
    assert.ok(doc.points.every((p) => p.corrected.p999 >= p.corrected.p99 && p.corrected.n === p.ok));
    assert.ok(doc.points.every((p) => p.predicted && p.predicted.p50 >= 200));
    assert.deepEqual(doc.points[0]!.errorKinds, {});
  });

  test('bad flags: one line naming the flag and what it takes, exit 2', async () => {
    for (const [args, message] of [
      [['--sweep-rate', '20:5:5'], 'Invalid --sweep-rate="20:5:5": FROM (20) is above TO (5)'],
      [
        ['--sweep-rate', '5:20'],
        'Invalid --sweep-rate="5:20": expected FROM:TO:STEP, three positive numbers of requests a second (for ' +
          'example 5:20:5)',
      ],
      [['--sweep-rate', '1:1000:1'], 'Invalid --sweep-rate="1:1000:1": it makes more than 50 rates: raise STEP'],
      [
        ['--sweep-rate', '5:20:5', '--rate', '3'],
        '--sweep-rate excludes --rate: it runs the open loop at each of its rates in turn',
      ],
      [['5', '--sweep-rate', '5:20:5'], '--sweep-rate excludes N: it runs the open loop at each of its rates in turn'],
      [['--pause', '1'], '--pause goes with --sweep-rate: the pause between its rates'],
      [
        ['--sweep-rate', '5:20:5', '--route', '/a/', '--route', '/b/'],
        '--sweep-rate takes one --route: the route whose latency it draws against the rate',
      ],
      [['--sweep-rate', '5:20:5', '--pause', '-1'], 'Invalid --pause="-1": expected a number from 0 to 600'],
    ] as const) {
      const res = await runCli(['client', ...args]);
      assert.equal(res.code, 2, args.join(' '));
      assert.equal(res.stderr.trim(), message);
    }
  });
});
