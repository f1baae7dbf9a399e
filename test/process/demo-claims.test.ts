// The demo's claims 7 and 8 (`npm run demo -- --claims`, short as with --quick): the memory of a
// PostgreSQL connection, and what the NullPool costs, measured and judged by their own verdicts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runClaims } from '../../src/demo/claims.ts';
import { printVerdicts } from '../../src/demo/verdicts.ts';
import type { Stoppable } from '../../src/harness/server-process.ts';
import { freshDatabase } from '../helper.ts';

test(
  'claims 7 and 8: memory grows linearly with the connections; the pool beats a connection per request by a large ' +
    'factor',
  { timeout: 180_000 },
  async () => {
    const lines: string[] = [];
    const running = new Set<Stoppable>();
    const rows = await runClaims(await freshDatabase({ seeded: true }), {
      quick: true,
      running,
      out: (l) => lines.push(l),
    });
    printVerdicts(rows, (l) => lines.push(l));
    const out = lines.join('\n');
    assert.equal(running.size, 0, 'everything it started is stopped');
    for (const r of rows) assert.equal(r.ok, true, `${r.claim}: ${r.verdict}\n${out}`);
    // Memory per connection, measured at 1, 10, 25 and 50 connections, on a straight line.
    const memory =
      /^7\. Memory per connection +\| ([\d.]+) MB per idle connection \(R² ([\d.]+)\), ([\d.]+) MB after a sort.*\| ok$/m.exec(
        out
      );
    assert.ok(memory, out);
    assert.ok(Number(memory[1]) > 0.1 && Number(memory[1]) < 50, `${memory[1]} MB per connection`);
    assert.ok(Number(memory[2]) >= 0.95);
    for (const n of [1, 10, 25, 50]) {
      assert.match(out, new RegExp(`^ +${n} \\| +[\\d.]+ MB \\| [\\d.]+ MB$`, 'm'), `${n} connections`);
    }
    // The pool against POOL=null, with where a connection's time goes.
    const nullPool =
      /^8\. NullPool: a new connection per request +\| the pool ([\d.]+) x the throughput .* a connection costs ([\d.]+) ms, most of it (\w[\w ]+) \(.*\| ok$/m.exec(
        out
      );
    assert.ok(nullPool, out);
    assert.ok(Number(nullPool[1]) >= 2);
    assert.match(out, /POOL=null +\| +\d+ req\/s .* \| (\d+) new connections\/s/);
  }
);
