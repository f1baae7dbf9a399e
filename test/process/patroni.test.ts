// A PostgreSQL cluster under Patroni (three members, one etcd; Debian's packages): it elects a
// leader, replicates to the others, promotes a replica in synchronous mode when the leader's
// whole member is killed, with every acknowledged write there after; the old leader rejoins as a
// replica; and nothing it started outlives it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import pg from 'pg';
import { alive } from '../../src/os/processes.ts';
import { PatroniCluster, type Member } from '../../src/postgres/patroni.ts';
import { noPatroni, onCleanup, tempDir, until } from '../helper.ts';

async function query<T extends pg.QueryResultRow> (url: string, text: string, values?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** The processes whose command line names `dir`: Patroni's, PostgreSQL's and etcd's, from /proc. */
function pidsUnder (dir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir) && alive(pid);
      } catch {
        return false; // gone meanwhile
      }
    });
}

describe('a Patroni cluster', { skip: noPatroni }, () => {
  test(
    'elects a leader that replicates to two replicas; in synchronous mode a killed leader is replaced ' +
      'within ttl + loop_wait + retry_timeout, no acknowledged write lost, and it rejoins as a replica',
    { timeout: 240_000 },
    async (t) => {
      const dir = tempDir('anp-patroni-');
      const cluster = new PatroniCluster({ dataDir: dir, synchronous: true });
      onCleanup(() => cluster.stop());
      await cluster.start();
      const leader = (await cluster.leader())!;
      assert.ok(leader, 'a leader');
      const replicas = cluster.members.filter((m) => m !== leader);
      assert.deepEqual(
        await Promise.all(replicas.map((m) => cluster.role(m))),
        ['replica', 'replica']
      );

      // Written through the leader, read on each replica once replayed.
      await query(cluster.url(leader), 'CREATE TABLE acked (id int PRIMARY KEY)');
      for (const r of replicas) {
        await until(
          `the table replayed on ${r.name}`,
          async () => (await query(cluster.url(r), "SELECT to_regclass('acked') IS NOT NULL AS t"))[0]!.t === true,
          10_000
        );
      }
      // Patroni names the synchronous standby in a loop after the cluster is whole.
      const synchronous = async () =>
        (
          await query<{ n: number }>(
            cluster.url(leader),
            "SELECT count(*)::int AS n FROM pg_stat_replication WHERE sync_state = 'sync'"
          )
        )[0]!.n;
      await until('one synchronous standby', async () => (await synchronous()) === 1, 10_000);

      // Writes acknowledged one after another until the leader's member dies (Patroni and PostgreSQL, SIGKILL).
      const acked: number[] = [];
      const writer = (async () => {
        const client = new pg.Client({ connectionString: cluster.url(leader) });
        await client.connect();
        client.on('error', () => {});
        // Until the leader dies under it: then the write in flight fails, and it was never acknowledged.
        for (let id = 1; ; id++) {
          try {
            await client.query('INSERT INTO acked VALUES ($1)', [id]);
            acked.push(id);
          } catch {
            break;
          }
        }
        await client.end().catch(() => {});
      })();
      await until('some writes acknowledged', () => acked.length >= 50, 10_000);
      const killedAt = performance.now();
      cluster.killMember(leader);
      await writer;

      let next: Member | undefined;
      await until(
        'a replica promoted',
        async () => {
          next = await cluster.leader();
          return next !== undefined && next !== leader;
        },
        30_000
      );
      const outage = (performance.now() - killedAt) / 1000;
      // The bound Patroni's settings give: the leader key expires (ttl 10), then a loop and a retry.
      assert.ok(outage < 10 + 1 + 4 + 5, `promoted after ${outage.toFixed(1)} s`);
      const there = (await query<{ id: number }>(cluster.url(next!), 'SELECT id FROM acked')).map((r) => r.id);
      const lost = acked.filter((id) => !there.includes(id));
      t.diagnostic(
        `${next!.name} promoted ${outage.toFixed(1)} s after the kill; ` +
          `${acked.length} acknowledged, ${lost.length} lost`
      );
      assert.deepEqual(lost, [], `${acked.length} acknowledged, ${lost.length} lost`);

      // The old leader comes back as a replica of the new one.
      cluster.startMember(leader);
      await cluster.untilWhole(60_000);
      assert.equal(await cluster.role(leader), 'replica');
      assert.equal((await cluster.leader())!.name, next!.name);

      const running = pidsUnder(dir);
      assert.ok(running.length >= 3, `the members run: ${running.length} processes`);
      await cluster.stop();
      assert.deepEqual(pidsUnder(dir), [], 'nothing left running');
    }
  );
});
