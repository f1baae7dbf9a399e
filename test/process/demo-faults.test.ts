// The demo's faults (demo --faults --quick): a partition through the fault proxy, a restart,
// terminated backends, connections given back in a bad state, leaked ones and added latency, under steady load,
// each judged by its own verdicts. (demo.test.ts runs the original's five; this one runs alone.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFaults } from '../../src/demo/faults.ts';
import type { Stoppable } from '../../src/harness/server-process.ts';
import { runCli, tempDir } from '../helper.ts';

test(
  'demo --faults --quick: every verdict holds, with the timeline of the requests and of the pool',
  { timeout: 240_000 },
  async () => {
    const lines: string[] = [];
    const running = new Set<Stoppable>();
    try {
      const rows = await runFaults({ dataDir: tempDir(), quick: true, running, out: (l) => lines.push(l) });
      const output = lines.join('\n');
      assert.equal(rows.length, 13, output);
      for (const r of rows) {
        assert.equal(r.ok, true, `${r.claim}: ${r.measured} (expected ${r.expected})\n${output}`);
      }
      assert.match(output, /^ {8}t {2}sent {3}200 {3}503 {3}504 {2}other {2}latest answer \| pool: in use/m);
      assert.match(output, /<- partition/);
      assert.match(output, /<- heal/);
      assert.match(
        output,
        /pg\.Pool: the next caller in transaction status T/,
        'pg.Pool, beside it, hands the transaction on'
      );
      assert.match(output, /<- 3 leaked/);
      assert.match(
        output,
        /reported: Object\.leakConnection \(src\/app\/routes\/leak\.ts:\d+\), serving GET \/leak\/ \(3 reports\)/
      );
    } finally {
      for (const r of [...running].reverse()) await r.stop();
    }
  }
);

test('demo --faults is listed in --help, part of --all, and refused beside --hosts', async () => {
  const help = (await runCli(['demo', '--help'])).stdout;
  assert.match(help, /--faults/);
  assert.match(
    help.replace(/\s+/g, ' '),
    /--all every scenario: the five, --scale, --steady-rate, --blocking, --faults and --claims/
  );
  const refused = await runCli(['demo', '--hosts', '2', '--faults']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--hosts runs on its own: without --scale, --steady-rate, --blocking, --faults/);
});
