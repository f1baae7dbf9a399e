// `demo --replicas N`: the tier past one PostgreSQL. The embedded primary and N streaming
// standbys of it, started by the service (REPLICAS=N), and three claims measured with verdicts:
// reads spread over every server's pool while writes stay on the primary; read-your-writes under
// load by WAL position; a standby killed under load loses no read.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { burst } from '../client/load.ts';
import { percentiles } from '../client/open-loop.ts';
import { withServerProcess, type ServerProcess, type Stoppable } from '../harness/server-process.ts';
import { ORIGINAL } from '../scenarios.ts';
import type { Verdict } from './verdicts.ts';
import { checkWaves } from './verdicts.ts';

export interface ReplicasDemoOptions {
  replicas: number;
  quick?: boolean;
  running: Set<Stoppable>;
  out: (line: string) => void;
}

interface ServersView {
  servers: {
    name: string;
    pool: { acquired: number; inUse: number; waiting: number };
    replica?: { up: boolean; inRotation: boolean; lagBytes: number; lagSeconds: number };
  }[];
  reads: {
    served: Record<string, number>;
    fallbacks: { noReplica: number; broken: number; behind: number };
    spilled: number;
    replayChecks: number;
    replayWaits: number;
    replayWaitMs: number;
    replayWaitMaxMs: number;
  };
}

/** The original's pool on every server: 5 + 10. */
const PER_SERVER = ORIGINAL.poolSize + ORIGINAL.poolMaxOverflow;

export async function runReplicas ({
  replicas,
  quick = false,
  running,
  out,
}: ReplicasDemoOptions): Promise<Verdict[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'anp-demo-replicas-'));
  out(`=== Past one PostgreSQL: the embedded primary and ${replicas} streaming standbys of it ===`);
  out(
    `    here: REPLICAS=${replicas} npm start   (pools of ${ORIGINAL.poolSize} + ${ORIGINAL.poolMaxOverflow} on each ` +
      'server)'
  );
  try {
    return await withServerProcess(
      { DATA_DIR: dataDir, REPLICAS: String(replicas), LOG_LEVEL: 'info', SLEEP_SECONDS: '0' },
      async (server) => [
        ...(await readCapacity(server, replicas, 2, out)),
        ...(await readYourWrites(server, quick ? 200 : 1000, quick ? 10 : 20, out)),
        await delayedReplicas(server, dataDir, replicas, quick ? 50 : 200, out),
        await killedReplica(server, dataDir, quick ? { readers: 4, writers: 2 } : { readers: 10, writers: 5 }, out),
      ],
      { running, timeoutMs: 120_000 }
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const servers = async (server: ServerProcess) =>
  (await (await fetch(`${server.url}/servers`)).json()) as ServersView;

async function readCapacity (
  server: ServerProcess,
  replicas: number,
  seconds: number,
  out: (line: string) => void
): Promise<Verdict[]> {
  const capacity = (replicas + 1) * PER_SERVER;
  const n = 2 * capacity;
  out(`\n--- ${n} concurrent /sleep/postgres/?seconds=${seconds} reads, then 30 concurrent writes ---`);
  const before = await servers(server);
  // What the pools held, read from the service while the burst runs: the verdict. The waves'
  // timing is shown too, but a busy machine staggers 90 connections' arrival by seconds, and
  // the pools' own counts do not depend on it.
  const peaks = new Map<string, number>();
  let peakWaiting = 0;
  const stop = new AbortController();
  const sampling = (async () => {
    while (!stop.signal.aborted) {
      const view = await servers(server);
      for (const x of view.servers) peaks.set(x.name, Math.max(peaks.get(x.name) ?? 0, x.pool.inUse));
      peakWaiting = Math.max(
        peakWaiting,
        view.servers.reduce((sum, x) => sum + x.pool.waiting, 0)
      );
      await delay(100);
    }
  })();
  const b = await burst(`${server.url}/sleep/postgres/?seconds=${seconds}`, n).finally(() => stop.abort());
  await sampling;
  const ok = b.results.filter((r) => r.status === 200).length;
  // Waves of `capacity` answers in the order they came, each shown by when its first and last came.
  const ends = b.results.map((r) => r.end / 1000).sort((x, y) => x - y);
  const groups = Array.from({ length: Math.ceil(n / capacity) }, (_, i) =>
    ends.slice(i * capacity, (i + 1) * capacity)
  );
  const after = await servers(server);
  const byServer = after.servers
    .map((x) => `${x.name} ${after.reads.served[x.name]! - before.reads.served[x.name]!}`)
    .join(', ');
  const held = after.servers.map((x) => `${x.name} ${peaks.get(x.name) ?? 0}`).join(', ');
  const atOnce = [...peaks.values()].reduce((a, c) => a + c, 0);
  out(
    `    ${ok} of ${n} answered 200; at most ${atOnce} at once (${held}), ${peakWaiting} waiting at the peak; served ` +
      `by ${byServer}`
  );
  const rhythm = checkWaves(b, seconds, capacity);
  out(
    `    in waves of ${capacity}: ${groups
      .map((g) => `${g.length} at ${g[0]!.toFixed(2)}-${g.at(-1)!.toFixed(2)} s`)
      .join(', ')}; their rhythm (each answer S after the one ` +
      `whose connection it took): ${rhythm ?? 'as expected'}`
  );
  const capacityOk =
    ok === n && after.servers.every((x) => peaks.get(x.name) === PER_SERVER) && atOnce === capacity;

  const writesBefore = await servers(server);
  const writes = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      fetch(`${server.url}/todos/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ title: `demo write ${i}` }),
      }).then((r) => r.status)
    )
  );
  const writesAfter = await servers(server);
  const checkouts = (name: string) =>
    writesAfter.servers.find((x) => x.name === name)!.pool.acquired -
    writesBefore.servers.find((x) => x.name === name)!.pool.acquired;
  const onReplicas = writesAfter.servers
    .filter((x) => x.name !== 'primary')
    .reduce((sum, x) => sum + checkouts(x.name), 0);
  const created = writes.filter((st) => st === 201).length;
  out(
    `    30 writes: ${created} created; checkouts on the primary +${checkouts('primary')}, on the ` +
      `replicas +${onReplicas}`
  );
  return [
    {
      claim: `a. ${n} reads, ${replicas + 1} servers of ${PER_SERVER}`,
      measured: `${atOnce} at once (${held}); ${groups
        .map((g) => `${g.length} by ${g.at(-1)!.toFixed(1)} s`)
        .join(', ')}`,
      expected:
        `${PER_SERVER} on each, ${capacity} at once: 2 waves of ${capacity} (one ` +
        `server: ${Math.ceil(n / PER_SERVER)} of ${PER_SERVER})`,
      verdict: capacityOk ? 'ok' : 'DEPARTS',
      ok: capacityOk,
    },
    {
      claim: 'b. 30 concurrent writes',
      measured: `${created} created; primary +${checkouts('primary')} checkouts, replicas +${onReplicas}`,
      expected: 'all on the one primary',
      verdict: created === 30 && onReplicas === 0 && checkouts('primary') >= 30 ? 'ok' : 'DEPARTS',
      ok: created === 30 && onReplicas === 0 && checkouts('primary') >= 30,
    },
  ];
}

/** Write a todo, then read it back by id, with or without the write's X-Read-After. */
async function pair (
  base: string,
  i: number,
  withPosition: boolean
): Promise<{ seen: boolean; by: string; ms: number }> {
  const t0 = performance.now();
  const w = await fetch(`${base}/todos/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: `pair ${i}` }),
  });
  const { id } = (await w.json()) as { id: number };
  const position = w.headers.get('x-read-after')!;
  const r = await fetch(`${base}/todos/${id}`, { headers: withPosition ? { 'X-Read-After': position } : {} });
  await r.arrayBuffer();
  return { seen: r.status === 200, by: r.headers.get('x-served-by') ?? '?', ms: performance.now() - t0 };
}

async function inPairs (
  base: string,
  count: number,
  concurrency: number,
  withPosition: boolean
): Promise<{ seen: boolean; by: string; ms: number }[]> {
  const results: { seen: boolean; by: string; ms: number }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) results.push(await pair(base, next++, withPosition));
    })
  );
  return results;
}

/** Short database reads, `concurrency` at a time, until `stop` aborts: the load the pairs run under. */
async function background (
  base: string,
  concurrency: number,
  stop: AbortSignal
): Promise<{ ok: number; failed: number }> {
  const counts = { ok: 0, failed: 0 };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!stop.aborted) {
        const status = await fetch(`${base}/sleep/postgres/?seconds=0.02`).then(
          async (r) => {
            await r.arrayBuffer();
            return r.status;
          },
          () => 0
        );
        if (status === 200) counts.ok++;
        else counts.failed++;
      }
    })
  );
  return counts;
}

/** `width`: pairs at a time, and readers beside them (--quick: fewer, to share a busy machine). */
async function readYourWrites (
  server: ServerProcess,
  count: number,
  width: number,
  out: (line: string) => void
): Promise<Verdict[]> {
  out(`\n--- ${count} write-then-read pairs, ${width} at a time, under ${width} concurrent readers ---`);
  const before = await servers(server);
  const stop = new AbortController();
  const loading = background(server.url, width, stop.signal);
  const results = await inPairs(server.url, count, width, true).finally(() => stop.abort());
  const load = await loading;
  const after = await servers(server);
  const seen = results.filter((r) => r.seen).length;
  const onReplica = results.filter((r) => r.by.startsWith('replica-')).length;
  const d = (f: (v: ServersView['reads']) => number) => f(after.reads) - f(before.reads);
  const waited = d((r) => r.replayWaits);
  const waitedMs = d((r) => r.replayWaitMs);
  const { p50, p99 } = percentiles(results.map((r) => r.ms));
  out(
    `    ${seen} of ${count} reads saw their write; served by a replica ${onReplica}, by the ` +
      `primary ${count - onReplica} ` +
      `(fell back: ${d((r) => r.fallbacks.behind)} behind, ${d((r) => r.fallbacks.noReplica)} with no replica in ` +
      `rotation; ${d((r) => r.spilled)} spilled with the replicas' pools full)`
  );
  out(
    `    ${d((r) => r.replayChecks)} looked on the replica for their write; ${waited} waited for ` +
      `it, ${waitedMs.toFixed(1)} ms in all (longest ${after.reads.replayWaitMaxMs.toFixed(1)} ms); pair ` +
      `p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms; background reads ${load.ok} ok, ${load.failed} failed`
  );

  return [
    {
      claim: `c. ${count} write-then-read pairs under load`,
      measured:
        `${seen} of ${count} saw their write; ${onReplica} on a replica, ${waited} ` +
        `waited (${waitedMs.toFixed(0)} ms in all), ${count - onReplica} on the primary`,
      expected: 'every read sees its write',
      verdict: seen === count && load.failed === 0 ? 'ok' : 'DEPARTS',
      ok: seen === count && load.failed === 0,
    },
  ];
}

/**
 * The trap the position avoids, made visible: on this machine a standby replays within a
 * millisecond, so each is held DELAY_MS behind (recovery_min_apply_delay, as a replica under
 * load or across a network would be), and the same pairs run without and with X-Read-After.
 */
async function delayedReplicas (
  server: ServerProcess,
  dataDir: string,
  replicas: number,
  count: number,
  out: (line: string) => void
): Promise<Verdict> {
  out(
    `\n--- every replica held ${DELAY_MS} ms behind (recovery_min_apply_delay): ${count} pairs without X-Read-After, ` +
      `then ${count} with it ---`
  );
  const setDelay = (value: string) =>
    Promise.all(
      Array.from({ length: replicas }, (_, i) =>
        superuser(dataDir, `replica-${i + 1}`, async (c) => {
          await c.query(
            value
              ? `ALTER SYSTEM SET recovery_min_apply_delay = '${value}'`
              : 'ALTER SYSTEM RESET recovery_min_apply_delay'
          );
          await c.query('SELECT pg_reload_conf()');
        })
      )
    );
  await setDelay(`${DELAY_MS}ms`);
  try {
    const without = await inPairs(server.url, count, 10, false);
    const before = await servers(server);
    const withIt = await inPairs(server.url, count, 10, true);
    const after = await servers(server);
    const stale = without.filter((r) => !r.seen).length;
    const seen = withIt.filter((r) => r.seen).length;
    const waited = after.reads.replayWaits - before.reads.replayWaits;
    const mean = waited ? (after.reads.replayWaitMs - before.reads.replayWaitMs) / waited : 0;
    const behind = after.reads.fallbacks.behind - before.reads.fallbacks.behind;
    out(
      `    without X-Read-After: ${stale} of ${count} reads of a todo just created answered 404 (the replica had not ` +
        'replayed it)'
    );
    out(
      `    with it: ${seen} of ${count} saw their write; ${waited} waited on a replica, ${mean.toFixed(0)} ms on ` +
        `average; ${behind} went to the primary after READ_AFTER_TIMEOUT`
    );
    const ok = seen === count && stale > 0;
    return {
      claim: `d. replicas ${DELAY_MS} ms behind`,
      measured:
        `without the position ${stale} of ${count} stale (404); with it ${seen} of ${count} saw their ` +
        `write, ${waited} waited ${mean.toFixed(0)} ms on average`,
      expected: 'stale reads without it, none with it',
      verdict: ok ? 'ok' : 'DEPARTS',
      ok,
    };
  } finally {
    await setDelay('');
  }
}

const DELAY_MS = 200;

/** A superuser connection to one of the service's servers, found in its DATA_DIR. */
async function superuser<T> (dataDir: string, name: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const password = readFileSync(join(dataDir, 'postgres.password'), 'utf8').trim();
  const { port } = JSON.parse(readFileSync(join(dataDir, name, 'postgres.json'), 'utf8')) as { port: number };
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function killedReplica (
  server: ServerProcess,
  dataDir: string,
  load: { readers: number; writers: number },
  out: (line: string) => void
): Promise<Verdict> {
  out(
    `\n--- replica-1 killed (SIGKILL) while 60 sleeps, ${load.readers} readers and ${load.writers} writers run ---`
  );
  const pid = (
    JSON.parse(readFileSync(join(dataDir, 'replica-1', 'postgres.json'), 'utf8')) as { postmasterPid: number }
  ).postmasterPid;
  const lag = async () => (await servers(server)).servers.find((x) => x.name === 'replica-1')!.replica!;
  const lagBefore = await lag();
  const t0 = performance.now();
  const stop = new AbortController();
  const timeline: { t: number; inRotation: boolean; lagBytes: number }[] = [];
  const watching = (async () => {
    while (!stop.signal.aborted) {
      const r = await lag();
      timeline.push({ t: performance.now() - t0, inRotation: r.inRotation, lagBytes: r.lagBytes });
      await delay(100);
    }
  })();
  const writers = (async () => {
    let n = 0;
    let failed = 0;
    while (!stop.signal.aborted) {
      const statuses = await Promise.all(
        Array.from({ length: load.writers }, () =>
          fetch(`${server.url}/todos/`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{"title":"during the kill"}',
          }).then(
            (r) => r.status,
            () => 0
          )
        )
      );
      n += statuses.length;
      failed += statuses.filter((st) => st !== 201).length;
    }
    return { n, failed };
  })();
  const sleeps = burst(`${server.url}/sleep/postgres/?seconds=1`, 60);
  const readers = background(server.url, load.readers, stop.signal);
  await delay(500);
  process.kill(pid, 'SIGKILL');
  const killedAt = performance.now() - t0;
  const sleepResults = (await sleeps).results;
  // Until it is back, and a second more to see it caught up.
  const deadline = performance.now() + 30_000;
  while (
    performance.now() < deadline &&
    !(timeline.some((p) => p.t > killedAt && !p.inRotation) && timeline.at(-1)!.inRotation)
  ) {
    await delay(100);
  }
  await delay(1000);
  stop.abort();
  const [reads, writes] = await Promise.all([readers, writers]);
  await watching;
  const out1 = timeline.find((p) => p.t > killedAt && !p.inRotation);
  const back = out1 && timeline.find((p) => p.t > out1.t && p.inRotation);
  const maxLagAfter = Math.max(0, ...timeline.filter((p) => back && p.t >= back.t).map((p) => p.lagBytes));
  const failed = sleepResults.filter((r) => r.status !== 200).length + reads.failed;
  const total = sleepResults.length + reads.ok + reads.failed;
  out(
    `    reads: ${total - failed} of ${total} answered 200; writes: ${writes.n - writes.failed} of ${writes.n} created`
  );
  out(
    `    replica-1: lag ${lagBefore.lagBytes} bytes before; out of the ` +
      `rotation ${out1 ? `${((out1.t - killedAt) / 1000).toFixed(2)} s after the kill` : 'never (not seen)'}, ` +
      `back ${back ? `${((back.t - killedAt) / 1000).toFixed(2)} s after it` : 'not within 30 s'}; at ` +
      `most ${maxLagAfter} bytes behind once back, ${timeline.at(-1)!.lagBytes} at the end`
  );
  const ok = failed === 0 && back !== undefined;
  return {
    claim: 'e. a replica killed under load',
    measured:
      `${failed} of ${total} reads failed; out after ${out1 ? ((out1.t - killedAt) / 1000).toFixed(2) : '?'} ` +
      `s, back after ${back ? ((back.t - killedAt) / 1000).toFixed(2) : '?'} s`,
    expected: 'no read fails; out, restarted, back',
    verdict: ok ? 'ok' : 'DEPARTS',
    ok,
  };
}
