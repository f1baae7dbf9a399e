// `npm run demo -- --failover`: a Patroni cluster under the service, its leader killed under load,
// judged by the demo's own verdicts (src/demo/failover.ts); what it refuses, and its one line
// without the packages. Nothing it started is left afterwards (npm test checks every process at
// the end).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noPatroni, runCli, tempDir } from '../helper.ts';

test(
  "demo --quick --failover: the leader's PostgreSQL, then its whole member, killed under load; promoted within " +
    'the bound, 0 acknowledged writes lost in synchronous mode, failures named, reads on the replicas, the old ' +
    'leader back',
  { skip: noPatroni, timeout: 400_000 },
  async () => {
    const res = await runCli(['demo', '--quick', '--failover'], { DATA_DIR: tempDir() });
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    const out = res.stdout;
    for (const how of ['PostgreSQL killed, sync', 'member killed, sync', 'member killed, async']) {
      const rows = out.split('\n').filter((l) => l.startsWith(`${how}:`));
      assert.equal(rows.length, 6, `${how}\n${out}`);
      for (const row of rows) assert.match(row, /\| (ok|shown)$/, row);
    }
    for (const m of out.matchAll(/(\d+) writes acknowledged in all, (\d+) lost/g)) assert.ok(Number(m[1]) > 50, m[0]);
    assert.match(out, /Every scenario matched its expected figures\./);
  }
);

test('demo --failover refuses what it cannot run: beside --replicas, or with DATABASE_URL', async () => {
  const both = await runCli(['demo', '--failover', '--replicas'], { DATA_DIR: tempDir() });
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /--replicas runs on its own: without .*--report, --hosts or --failover/);
  const external = await runCli(['demo', '--failover'], { DATABASE_URL: 'postgresql://u:secret@127.0.0.1:1/x' });
  assert.equal(external.code, 2, external.stderr);
  assert.match(external.stderr, /--failover starts a Patroni cluster of its own: run it without DATABASE_URL/);
  assert.doesNotMatch(external.stderr, /secret/);
});

test('demo --failover without Patroni and etcd says in one line what to install, and exits 2', async () => {
  // Neither found on this PATH (HAProxy and PostgreSQL's tools are looked for in /usr/sbin and /usr/lib too).
  const res = await runCli(['demo', '--failover'], { DATA_DIR: tempDir(), PATH: '/nonexistent' });
  assert.equal(res.code, 2, res.stderr);
  const lines = res.stderr.trim().split('\n');
  assert.equal(lines.length, 1, res.stderr);
  assert.match(lines[0]!, /a Patroni cluster needs patroni, etcd\b.*: apt-get install patroni etcd-server etcd-client/);
  assert.equal(res.stdout, '');
});
