// A PostgreSQL cluster under Patroni (three members, one etcd, HAProxy in front; Debian's
// packages): it elects a leader, replicates to the others, routes the leader's port to the leader
// and the replicas' port to the replicas, promotes a replica in synchronous mode when the leader's
// whole member is killed, with every acknowledged write there after; the old leader rejoins as a
// replica; and nothing it started outlives it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import pg from 'pg';
import { alive } from '../../src/os/processes.ts';
import { PatroniCluster, type Member } from '../../src/postgres/patroni.ts';
import { json, noPatroni, onCleanup, request, tempDir, until, withService } from '../helper.ts';

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
  let cluster: PatroniCluster;
  let dir: string;
  before(async () => {
    dir = tempDir('anp-patroni-');
    cluster = new PatroniCluster({ dataDir: dir, synchronous: true });
    onCleanup(() => cluster.stop());
    await cluster.start();
    await query(cluster.leaderUrl(), 'CREATE DATABASE todos');
  });

  test(
    "the service writes through the leader's port and reads through the replicas' (DATABASE_URL, " +
      'DATABASE_REPLICA_URLS), read-your-writes by X-Read-After',
    async () => {
      await withService(
        { DATABASE_URL: cluster.leaderUrl('todos'), DATABASE_REPLICA_URLS: cluster.replicasUrl('todos') },
        async (service) => {
          const w = await request(service.url, 'POST', '/todos/', json({ title: 'highly available' }));
          assert.equal(w.status, 201);
          const id = (w.json as { id: number }).id;
          const r = await request(service.url, 'GET', `/todos/${id}`, {
            headers: { 'X-Read-After': String(w.headers['x-read-after']) },
          });
          assert.deepEqual([r.status, r.headers['x-served-by'], (r.json as { title: string }).title], [
            200,
            'replica-1',
            'highly available',
          ]);
          // /servers names the member each port reached, by the address PostgreSQL reports.
          const leader = (await cluster.leader())!;
          const { servers } = (await request(service.url, 'GET', '/servers')).json as {
            servers: { name: string; at?: string }[];
          };
          assert.equal(servers.find((x) => x.name === 'primary')?.at, `127.0.0.1:${leader.pgPort}`);
          const replicaPorts = cluster.members.filter((m) => m !== leader).map((m) => `127.0.0.1:${m.pgPort}`);
          assert.ok(replicaPorts.includes(servers.find((x) => x.name === 'replica-1')?.at ?? ''), 'a replica');
        }
      );
    }
  );

  test(
    'elects a leader that replicates to two replicas; in synchronous mode a killed leader is replaced ' +
      'within ttl + loop_wait + retry_timeout, no acknowledged write lost, and it rejoins as a replica',
    { timeout: 240_000 },
    async (t) => {
      const leader = (await cluster.leader())!;
      assert.ok(leader, 'a leader');
      const replicas = cluster.members.filter((m) => m !== leader);
      assert.deepEqual(
        await Promise.all(replicas.map((m) => cluster.role(m))),
        ['replica', 'replica']
      );

      // Written through the leader's port, read on each replica once replayed, and through the replicas' port.
      await query(cluster.leaderUrl(), 'CREATE TABLE acked (id int PRIMARY KEY)');
      const served = async (url: string) =>
        (await query<{ port: number; standby: boolean }>(
          url,
          'SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby'
        ))[0]!;
      assert.deepEqual(await served(cluster.leaderUrl()), { port: leader.pgPort, standby: false });
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
      const byReplicasPort = [await served(cluster.replicasUrl()), await served(cluster.replicasUrl())];
      assert.deepEqual(
        byReplicasPort.map((r) => r.port).sort(),
        replicas.map((r) => r.pgPort).sort(),
        'the replicas taken in turn'
      );
      assert.ok(byReplicasPort.every((r) => r.standby));

      // Writes acknowledged one after another until the leader's member dies (Patroni and PostgreSQL, SIGKILL).
      const acked: number[] = [];
      const writer = (async () => {
        const client = new pg.Client({ connectionString: cluster.leaderUrl() });
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
      const promoted = (performance.now() - killedAt) / 1000;
      // The bound Patroni's settings give: the leader key expires (ttl 10), then a loop and a retry.
      assert.ok(promoted < 10 + 1 + 4 + 5, `promoted after ${promoted.toFixed(1)} s`);
      // The write outage, as a client of the leader's port sees it: until HAProxy's check finds the new leader.
      // A fresh id: the write in flight at the kill may have committed, unacknowledged (it reached the standby).
      const firstId = 1_000_000;
      const write = () => query(cluster.leaderUrl(), 'INSERT INTO acked VALUES ($1)', [firstId]);
      const written = async () => (await write().then(() => true, () => false));
      await until("a write acknowledged through the leader's port", written, 15_000);
      acked.push(firstId);
      const outage = (performance.now() - killedAt) / 1000;
      assert.ok(outage < 10 + 1 + 4 + 5 + 1, `the first write after ${outage.toFixed(1)} s`);
      const there = (await query<{ id: number }>(cluster.leaderUrl(), 'SELECT id FROM acked')).map((r) => r.id);
      const lost = acked.filter((id) => !there.includes(id));
      t.diagnostic(
        `${next!.name} promoted ${promoted.toFixed(1)} s after the kill, the first write ${outage.toFixed(1)} s; ` +
          `${acked.length} acknowledged, ${lost.length} lost`
      );
      assert.deepEqual(lost, [], `${acked.length} acknowledged, ${lost.length} lost`);

      // The old leader comes back as a replica of the new one.
      cluster.startMember(leader);
      await cluster.untilWhole(60_000);
      assert.equal(await cluster.role(leader), 'replica');
      assert.equal((await cluster.leader())!.name, next!.name);
    }
  );
  test('stopped, it leaves nothing running: HAProxy, the members, their PostgreSQL, etcd', async () => {
    assert.ok(cluster.members.every((m) => cluster.running(m)), 'every member runs');
    const running = pidsUnder(dir);
    assert.ok(running.length >= 3, `the members run: ${running.length} processes`);
    await cluster.stop();
    assert.deepEqual(pidsUnder(dir), [], 'nothing left running');
  });
});
