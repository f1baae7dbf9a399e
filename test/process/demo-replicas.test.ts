// `npm run demo -- --replicas`: the embedded primary and 2 streaming standbys, judged by the
// demo's own verdicts (src/demo/replicas.ts); nothing it started is left afterwards (npm test
// checks every process at the end).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli, tempDir } from '../helper.ts';

test(
  'demo --quick --replicas: reads in 2 waves of 45 over three servers, writes on the primary, read-your-writes with ' +
    'and without the position, a killed standby losing no read',
  { timeout: 180_000 },
  async () => {
    const res = await runCli(['demo', '--quick', '--replicas'], { DATA_DIR: tempDir() });
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    const out = res.stdout;
    // What the pools held, as the service counted it: 15 on each of the three servers at once.
    assert.match(
      out,
      /90 of 90 answered 200; at most 45 at once \(primary 15, replica-1 15, replica-2 15\), \d+ waiting at the peak; served by primary 30, replica-1 30, replica-2 30/
    );
    assert.match(out, /30 writes: 30 created; checkouts on the primary \+(\d+), on the replicas \+0/);
    assert.match(out, /200 of 200 reads saw their write/);
    assert.match(out, /without X-Read-After: ([1-9]\d*) of 50 reads of a todo just created answered 404/);
    assert.match(out, /with it: 50 of 50 saw their write/);
    assert.match(out, /reads: (\d+) of \1 answered 200/);
    const rows = out.split('\n').filter((l) => /^[a-e]\. .*\|/.test(l));
    assert.equal(rows.length, 5, out);
    for (const row of rows) assert.match(row, /\| ok$/, row);
    assert.match(out, /Every scenario matched its expected figures\./);
  }
);

test('demo --replicas refuses what it cannot run: with --hosts, or with DATABASE_URL', async () => {
  const both = await runCli(['demo', '--replicas', '--hosts', '2'], { DATA_DIR: tempDir() });
  assert.equal(both.code, 2, both.stderr);
  assert.match(
    both.stderr,
    /--hosts runs on its own: without --scale, --steady-rate, --blocking, --faults, --claims, --all, --report, --replicas or --failover/
  );
  const external = await runCli(['demo', '--replicas'], { DATABASE_URL: 'postgresql://u:secret@127.0.0.1:1/x' });
  assert.equal(external.code, 2, external.stderr);
  assert.match(
    external.stderr,
    /--replicas starts standbys of the embedded PostgreSQL: run it without DATABASE_URL/
  );
  assert.doesNotMatch(external.stderr, /secret/);
});
