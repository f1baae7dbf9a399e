// `npm run demo`: the original's scenarios for real, judged by the demo's own verdicts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freshDatabase, noPgBouncer, runCli, tempDir } from '../helper.ts';

// With PgBouncer (always in CI) the run includes scenario 6, beyond the ceiling.
const scale = !noPgBouncer;

test(`demo --quick --claims${scale ? ' --scale' : ''} passes its own verdicts`, { timeout: 300_000 }, async () => {
  const res = await runCli(['demo', '--quick', '--claims', ...(scale ? ['--scale'] : [])], { DATABASE_URL: await freshDatabase(), DATA_DIR: tempDir() });
  assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
  const titles = ['1. Blocking server, blocking database', '2. Non-blocking server, blocking database', '3. Non-blocking server, non-blocking database',
    '4. The warning: 100 requests against a pool of 5 + 10', '5. Past POOL_TIMEOUT', ...(scale ? ['6. Beyond the ceiling'] : [])];
  for (const title of titles) assert.ok(res.stdout.includes(`=== ${title}`), title);
  assert.match(res.stdout, /\/sleep\/postgres\/: 100 ok, 0 errors/);
  assert.match(res.stdout, /15 x HTTP 503: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 2\.00/);
  if (scale) {
    assert.match(res.stdout, /exit code 2: Refusing to start: .* = 4 x \(5 \+ 10\) = 60 connections; PostgreSQL allows max_connections 20 - superuser_reserved_connections 3 = 17, and 60 > 17/);
    assert.match(res.stdout, /\/sleep\/postgres\/: 200 ok, 0 errors/);
    assert.match(res.stdout, /at most 15 running pg_sleep at once/);
  }
  // The tables: one row per scenario and per claim (7 and 8), each with the verdict "ok".
  const rows = res.stdout.split('\n').filter((l) => /^\d\. .*\|/.test(l));
  assert.equal(rows.length, titles.length + 2);
  for (const row of rows) assert.match(row, /\| ok$/, row);
  // The claims: memory per connection, measured at 1, 10, 25 and 50 connections, on a straight
  // line; the pool against POOL=none, with where a connection's time goes.
  const memory = /^7\. Memory per connection +\| ([\d.]+) MB per idle connection \(R² ([\d.]+)\), ([\d.]+) MB after a sort.*\| ok$/m.exec(res.stdout);
  assert.ok(memory, res.stdout);
  assert.ok(Number(memory[1]) > 0.1 && Number(memory[1]) < 50, `${memory[1]} MB per connection`);
  assert.ok(Number(memory[2]) >= 0.95);
  for (const n of [1, 10, 25, 50]) assert.match(res.stdout, new RegExp(`^ +${n} \\| +[\\d.]+ MB \\| [\\d.]+ MB$`, 'm'), `${n} connections`);
  const nullPool = /^8\. NullPool: a new connection per request +\| the pool ([\d.]+) x the throughput .* a connection costs ([\d.]+) ms, most of it (\w[\w ]+) \(.*\| ok$/m.exec(res.stdout);
  assert.ok(nullPool, res.stdout);
  assert.ok(Number(nullPool[1]) >= 2);
  assert.match(res.stdout, /POOL=none +\| +\d+ req\/s .* \| (\d+) new connections\/s/);
  assert.match(res.stdout, /Every scenario matched its expected figures\./);
});
