// The benchmark code must not rot: one tiny suite, end to end.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runScript, tempDir } from '../helper.ts';

test('npm run bench -- --smoke runs a tiny suite and writes its raw figures', { timeout: 120_000 }, async () => {
  const dir = tempDir();
  const res = await runScript(['bench/run.ts', '--smoke'], { BENCH_RESULTS_DIR: dir });
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /machine: .* x \d+ cores, Node v\d+.*, PostgreSQL \d+/);
  assert.match(res.stdout, /Suite 4: the three scenarios, N = 4, S = 0\.1 s/);
  const files = readdirSync(dir);
  assert.equal(files.length, 1);
  const run = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as {
    results: { blocking: { appMs: number; appExpectedMs: number; errors: number }[] };
  };
  assert.equal(run.results.blocking.length, 3);
  assert.ok(run.results.blocking.every((r) => r.errors === 0));
  assert.ok(run.results.blocking[0]!.appMs >= 350, 'blocking: about N x S');
});
