// The demo's scenario 6 (`npm run demo -- --scale`), beyond the ceiling: refused straight to a
// PostgreSQL of max_connections 20, served through PgBouncer, judged by its own verdict.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { runScaleScenario } from '../../src/demo/scale.ts';
import type { Stoppable } from '../../src/harness/server-process.ts';
import { noPgBouncer, tempDir } from '../helper.ts';

test(
  'scenario 6: 4 workers x (5 + 10) refused straight to max_connections 20, then 200 sleeps in 14 waves through ' +
    'PgBouncer',
  { skip: noPgBouncer, timeout: 180_000 },
  async () => {
    const lines: string[] = [];
    const running = new Set<Stoppable>();
    const { row } = await runScaleScenario(loadConfig({}, { DATA_DIR: tempDir() }), running, (l) => lines.push(l));
    const out = lines.join('\n');
    assert.equal(running.size, 0, 'everything it started is stopped');
    assert.equal(row.verdict, 'ok', out);
    assert.match(
      out,
      /exit code 2: Refusing to start: .* = 4 x \(5 \+ 10\) = 60 connections; PostgreSQL allows max_connections 20 - superuser_reserved_connections 3 = 17, and 60 > 17/
    );
    assert.match(out, /\/sleep\/postgres\/: 200 ok, 0 errors/);
    assert.match(out, /at most 15 running pg_sleep at once/);
  }
);
