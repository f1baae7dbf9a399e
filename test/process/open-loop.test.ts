// `npm run client -- --rate R --duration T`: the open loop, run by the built CLI against the app
// listening in the test process. What the generator claims is checked against its own raw times.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LATE_MS, RATE_TOLERANCE } from '../../src/client/open-loop.ts';
import { buildListening, runCli, tempDir } from '../helper.ts';

interface Run {
  scheduled: number;
  sent: number;
  achievedRate: number;
  keptRate: boolean;
  why?: string;
  ok: number;
  corrected: { p50: number; p99: number };
  uncorrected: { p50: number; p99: number };
  requests: { intendedMs: number; sentMs: number; endMs: number; status: number | null }[];
}

async function openLoop (url: string, args: string[]): Promise<Run> {
  const res = await runCli(['client', '--url', url, '--json', ...args]);
  assert.equal(res.code, 0, res.stderr);
  return (JSON.parse(res.stdout) as { routes: Run[] }).routes[0]!;
}

const p99 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.ceil(values.length * 0.99) - 1]!;

describe('the open-loop client', () => {
  test(
    '2,000 requests a second for 3 s: the generator keeps its rate within 2 %, or says it did not, and its own ' +
      'raw times agree with what it says',
    async (t) => {
      const { url } = await buildListening(t);
      const run = await openLoop(url, ['--rate', '2000', '--duration', '3', '--route', '/healthz']);
      const sent = run.requests.map((r) => r.sentMs).sort((a, b) => a - b);
      const rate = (sent.length - 1) / ((sent[sent.length - 1]! - sent[0]!) / 1000);
      const lag = p99(run.requests.map((r) => r.sentMs - r.intendedMs));
      const onTime = run.sent === run.scheduled && Math.abs(rate - 2000) <= RATE_TOLERANCE * 2000 && lag <= LATE_MS;
      t.diagnostic(
        `scheduled ${run.scheduled}, sent ${run.sent} at ${rate.toFixed(1)}/s, p99 send lag ${lag.toFixed(1)} ` +
          `ms: ${run.keptRate ? 'kept' : `not kept: ${run.why}`}`
      );
      assert.equal(run.scheduled, 6000);
      assert.equal(run.keptRate, onTime, `it claims ${run.keptRate}, its times say ${onTime}`);
      if (!run.keptRate) assert.ok(run.why && run.why.length > 10, 'and says why');
      else assert.ok(Math.abs(run.achievedRate - 2000) <= 40);
      assert.equal(run.ok, run.sent, 'every request answered 200');
    }
  );

  test(
    'with no queue the corrected latency equals the uncorrected one; with a queue in the generator (2 connections ' +
      'for 20/s of 0.3 s answers) it counts the wait the other hides',
    async (t) => {
      const { url } = await buildListening(t);
      const free = await openLoop(url, [
        '--rate',
        '10',
        '--duration',
        '2',
        '--route',
        '/sleep/node/',
        '--seconds',
        '0.1',
      ]);
      assert.equal(free.ok, 20);
      if (!free.keptRate) t.diagnostic(`the generator did not keep the rate: ${free.why}`);
      assert.ok(
        free.corrected.p50 - free.uncorrected.p50 < 15,
        `${free.corrected.p50} vs ${free.uncorrected.p50} ms`
      );
      // 2 connections serve 2 / 0.3 s = 6.7 requests a second; 20 arrive: the rest wait for a connection.
      const queued = await openLoop(url, [
        '--rate',
        '20',
        '--duration',
        '2',
        '--connections',
        '2',
        '--route',
        '/sleep/node/',
        '--seconds',
        '0.3',
      ]);
      assert.equal(queued.ok, 40);
      assert.equal(queued.keptRate, false);
      assert.match(queued.why!, /left more than \d+ ms late \(all 2 connections were busy \(--connections\)\)/);
      assert.ok(
        queued.uncorrected.p99 < 1000,
        `from the actual send, every answer took about 0.3 s: p99 ${queued.uncorrected.p99} ms`
      );
      assert.ok(
        queued.corrected.p99 > 3000,
        `from the intended send, the last waited seconds: p99 ${queued.corrected.p99} ms`
      );
    }
  );

  test('the text it prints, and the HTML report with latency over time', async (t) => {
    const { url } = await buildListening(t);
    const report = join(tempDir(), 'open.html');
    const res = await runCli([
      'client',
      '--url',
      url,
      '--rate',
      '10',
      '--duration',
      '1',
      '--route',
      '/todos/',
      '--report',
      report,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `Open loop: 10 requests/s for 1 s (constant arrivals) to ${url}/todos/...`);
    assert.match(lines[1]!, /^\tthe generator (kept the rate: 10 of 10 sent|did NOT keep the rate: )/);
    assert.equal(lines[2], '/todos/: 10 ok, 0 errors');
    assert.match(
      lines[3]!,
      /^\tlatency from the intended send \(corrected for coordinated omission\): p50 \d\.\d{3}s p90 \d\.\d{3}s p99 \d\.\d{3}s p99\.9 \d\.\d{3}s max \d\.\d{3}s \(n=10\)$/
    );
    assert.match(lines[4]!, /^\tlatency from the actual send: +p50 /);
    const html = readFileSync(report, 'utf8');
    const data = JSON.parse(/<script id="data" type="application\/json">(.*?)<\/script>/s.exec(html)![1]!) as {
      openLoops: { points: unknown[] }[];
    }[];
    assert.equal(data[0]!.openLoops[0]!.points.length, 10);
    // The percentile spectrum of each latency: to the max, at log10(10) = 1 nine.
    const spectra = data[0]!.openLoops[0]! as unknown as { corrected: [number, number][]; uncorrected: unknown[] };
    assert.deepEqual(spectra.corrected.at(-1)![0], 1);
    assert.ok(spectra.uncorrected.length === spectra.corrected.length);
    assert.match(html, /open-loop/);
  });

  test(
    'bad --rate, --duration, --arrivals and --connections: one line naming the flag and what it takes, exit 2',
    async () => {
      const cases: [string[], RegExp][] = [
        [['--rate', 'fast'], /^Invalid --rate="fast": expected a number from 0\.1 to 100000$/],
        [['--rate', '0'], /^Invalid --rate="0": expected a number from 0\.1 to 100000$/],
        [['--rate', '10', '--duration', '-1'], /^Invalid --duration="-1": expected a number from 0\.1 to 3600$/],
        [
          ['--rate', '10', '--arrivals', 'bursty'],
          /^Invalid --arrivals="bursty": Allowed choices are constant, poisson$/,
        ],
        [
          ['--rate', '10', '--connections', '0'],
          /^Invalid --connections="0": expected an integer from 1 to 100000$/,
        ],
        [['--duration', '5'], /^--duration goes with --rate/],
        [['7', '--rate', '10'], /^N and --rate exclude each other/],
      ];
      for (const [args, message] of cases) {
        const res = await runCli(['client', ...args]);
        assert.equal(res.code, 2, args.join(' '));
        assert.match(res.stderr.trim(), message, args.join(' '));
        assert.equal(res.stderr.trim().split('\n').length, 1);
      }
    }
  );
});
