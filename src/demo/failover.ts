// `demo --failover`: when the primary dies. A Patroni cluster (three members, etcd, HAProxy in
// front: src/postgres/patroni.ts) under the service, which knows only the leader's port
// (DATABASE_URL) and the replicas' (DATABASE_REPLICA_URLS). Under steady load, the leader's
// PostgreSQL is killed, then the leader's whole member, in synchronous mode; then the member again
// with asynchronous replication. Measured each time: the promotion and the write outage against
// the bound Patroni's settings give, the acknowledged writes lost, how the requests in between were
// answered, the pool's connections to the dead leader, the reads on the replicas, the old leader's
// return, and the member /servers names as primary.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { maskSecrets } from 'pg-queuepool';
import { withServerProcess, type ServerProcess, type Stoppable } from '../harness/server-process.ts';
import { PatroniCluster, type Member } from '../postgres/patroni.ts';
import { startFailoverLoad, type Sent } from './failover-load.ts';
import type { Verdict } from './verdicts.ts';

export interface FailoverDemoOptions {
  quick?: boolean;
  running: Set<Stoppable>;
  out: (line: string) => void;
}

/** Patroni's timing, tuned down from its defaults (30, 10, 10): the outage's bound is derived from them. */
const PATRONI = { ttl: 10, loopWait: 1, retryTimeout: 4 };
/**
 * HAProxy's checks (src/postgres/patroni.ts): a member is cut off after 2 failed checks 500 ms apart, taken in after
 * 1 passed; with the pool's next connect, 2 s covers them.
 */
const ROUTING_S = 2;
/** The service's budget for one request: POOL_TIMEOUT + QUERY_TIMEOUT (set below) and the 0.5 s sleep. */
const BUDGET = { connectTimeout: 2, poolTimeout: 3, queryTimeout: 5, sleep: 0.5 };
const BUDGET_S = BUDGET.poolTimeout + BUDGET.queryTimeout + BUDGET.sleep;
/** The codes a request may fail with while the leader is gone: each names the cause. */
const OUTAGE_CODES = ['DB_UNAVAILABLE', 'DB_READ_ONLY', 'POOL_TIMEOUT', 'QUERY_TIMEOUT'];

type How = 'postgres' | 'member';

interface Outcome {
  how: How;
  synchronous: boolean;
  old: Member;
  next?: Member;
  /** Seconds after the kill. */
  promoted?: number;
  routed?: number;
  firstWrite?: number;
  sent: Sent[];
  killedAt: number;
  acked: number;
  lost: number;
  pool: { openAtKill: number; droppedAfter?: number; deadline: number; maxWaiting: number };
  rejoined?: number;
  rejoinedAs?: string;
  rewound: boolean;
  shownAt?: string;
}

const sec = (s: number | undefined) => (s === undefined ? 'never' : `${s.toFixed(1)} s`);

export async function runFailover ({ quick = false, running, out }: FailoverDemoOptions): Promise<Verdict[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'anp-demo-failover-'));
  const cluster = new PatroniCluster({ dataDir, synchronous: true, ...PATRONI, log: out });
  const stoppable = { stop: () => cluster.stop() };
  running.add(stoppable);
  try {
    out('=== When the primary dies: a Patroni cluster of 3 members, etcd, HAProxy in front ===');
    out(
      `    Patroni: ttl ${PATRONI.ttl} s, loop_wait ${PATRONI.loopWait} s, retry_timeout ${PATRONI.retryTimeout} s; ` +
        `the service: CONNECT_TIMEOUT ${BUDGET.connectTimeout}, POOL_TIMEOUT ${BUDGET.poolTimeout}, ` +
        `QUERY_TIMEOUT ${BUDGET.queryTimeout}`
    );
    await cluster.start();
    await query(cluster.leaderUrl(), 'CREATE DATABASE todos');
    out(
      `    here: DATABASE_URL=${maskSecrets(cluster.leaderUrl('todos'))} ` +
        `DATABASE_REPLICA_URLS=${maskSecrets(cluster.replicasUrl('todos'))} npm start (HAProxy's two ports)`
    );
    const env = {
      DATABASE_URL: cluster.leaderUrl('todos'),
      DATABASE_REPLICA_URLS: cluster.replicasUrl('todos'),
      CONNECT_TIMEOUT: String(BUDGET.connectTimeout),
      POOL_TIMEOUT: String(BUDGET.poolTimeout),
      QUERY_TIMEOUT: String(BUDGET.queryTimeout),
      SLEEP_SECONDS: '0',
      // Errors only: each 500 and its cause (the 503s of the outage are expected, and logged below that).
      LOG_LEVEL: 'error',
    };
    return await withServerProcess(
      env,
      async (server) => {
        const outcomes: Outcome[] = [];
        const commit = await commitCost(cluster, quick ? 5 : 9, 100);
        out(
          `\n    a commit's cost, ${commit.rounds} alternating rounds of 100 (the median of each round's median, and ` +
            `their spread): waiting for the standby ${spread(commit.on)}, not waiting (synchronous_commit local) ` +
            `${spread(commit.local)}`
        );
        outcomes.push(await failover(cluster, server, 'postgres', true, out));
        outcomes.push(await failover(cluster, server, 'member', true, out));
        out('\n--- synchronous_mode turned off (PATCH /config): asynchronous replication ---');
        await cluster.setSynchronous(false);
        outcomes.push(await failover(cluster, server, 'member', false, out));
        // A 500 is a bug: what the service logged for it is the first thing to read.
        const bugs = server
          .output()
          .split('\n')
          .filter((l) => l.includes('"request failed"'));
        for (const line of bugs.slice(0, 5)) out(`    the service logged: ${line.slice(0, 600)}`);
        return [
          ...outcomes.flatMap(verdicts),
          {
            claim: "the synchronous commit's cost",
            measured: `${ms(commit.on.median)} waiting for the standby, ${ms(commit.local.median)} not waiting`,
            expected: 'a round trip to the standby more (shown)',
            verdict: 'shown',
            ok: undefined,
          },
        ];
      },
      { running, timeoutMs: 120_000 }
    );
  } finally {
    await cluster.stop();
    running.delete(stoppable);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function query<T extends pg.QueryResultRow> (url: string, text: string, values?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

const ms = (x: number) => `${x.toFixed(2)} ms`;

interface Spread {
  median: number;
  min: number;
  max: number;
}

const spread = (x: Spread) => `${ms(x.median)} (${ms(x.min)}-${ms(x.max)})`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * What waiting for the synchronous standby costs a commit: one-row commits through the leader's port, in rounds that
 * alternate between synchronous_commit on (the leader waits for the standby) and local (it does not), on the same
 * connection and cluster, so that the machine's noise falls on both alike.
 */
async function commitCost (
  cluster: PatroniCluster,
  rounds: number,
  perRound: number
): Promise<{ rounds: number; on: Spread; local: Spread }> {
  const client = new pg.Client({ connectionString: cluster.leaderUrl('todos') });
  await client.connect();
  try {
    await client.query('CREATE TABLE IF NOT EXISTS commit_cost (n int)');
    const medians: Record<'on' | 'local', number[]> = { on: [], local: [] };
    for (let r = 0; r < rounds; r++) {
      for (const mode of r % 2 ? (['local', 'on'] as const) : (['on', 'local'] as const)) {
        await client.query(`SET synchronous_commit = ${mode}`);
        const times: number[] = [];
        for (let i = 0; i < perRound; i++) {
          const t = performance.now();
          await client.query('INSERT INTO commit_cost VALUES ($1)', [i]);
          times.push(performance.now() - t);
        }
        medians[mode].push(median(times));
      }
    }
    const of = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
    return { rounds, on: of(medians.on), local: of(medians.local) };
  } finally {
    await client.end();
  }
}

/** Polls `fn` every 100 ms until it returns a value, or `timeoutMs` passes (then undefined). */
async function poll<T> (fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (performance.now() > deadline) return undefined;
    await delay(100);
  }
}

async function failover (
  cluster: PatroniCluster,
  server: ServerProcess,
  how: How,
  synchronous: boolean,
  out: (line: string) => void
): Promise<Outcome> {
  if (synchronous) await poll(() => cluster.synchronousStandby(), 30_000);
  const old = (await cluster.leader())!;
  const standby = synchronous ? (await cluster.synchronousStandby())?.name : undefined;
  const label =
    `${how === 'postgres' ? "the leader's PostgreSQL" : "the leader's whole member"} killed, ` +
    (synchronous ? 'synchronous' : 'asynchronous');
  out(
    `\n--- ${label}: ${old.name} leads${standby ? `, ${standby} its synchronous standby` : ''}; SIGKILL to ` +
      `${how === 'postgres' ? 'its PostgreSQL' : 'its Patroni and its PostgreSQL'} under steady load ---`
  );
  const logBefore = cluster.logOf(old).length;
  const load = startFailoverLoad(server.url);
  await delay(3000);
  const atKill = load.samples.at(-1)!;
  const killedAt = load.now();
  if (how === 'postgres') cluster.killPostgres(old);
  else cluster.killMember(old);
  const after = (t: number) => (t - killedAt) / 1000;

  const next = await poll(async () => {
    const leader = await cluster.leader();
    return leader && leader !== old ? leader : undefined;
  }, 40_000);
  const promoted = next && after(load.now());
  // Its Patroni alive, a leader whose PostgreSQL died comes back by itself, as a replica: watched from now on.
  const back = how === 'postgres' ? untilReplica(cluster, old) : undefined;
  const routed = next && (await cluster.untilRouted('leader', next, true, 20_000).then(() => after(load.now())));
  const firstAck = await poll(async () => load.firstAckAfter(killedAt), 30_000);
  // Steady load past the recovery: the service back to full service.
  await delay(3000);
  const { sent, samples, acked } = await load.stop();

  // The member killed whole comes back when it is started again, as a machine would after a reboot.
  const restartedAt = performance.now();
  if (how === 'member') cluster.startMember(old);
  const rejoinedAt = await (back ?? untilReplica(cluster, old));
  const rejoined = rejoinedAt && (rejoinedAt - (how === 'member' ? restartedAt : killedAt)) / 1000;
  await cluster.untilWhole(120_000).catch(() => {});
  const rejoinedAs = await cluster.role(old);
  const rewound = cluster.logOf(old).slice(logBefore).includes('pg_rewind');

  const ids = acked.map((a) => a.id);
  const there = await query<{ id: number }>(cluster.leaderUrl('todos'), 'SELECT id FROM todo WHERE id = ANY($1)', [
    ids,
  ]);
  const lost = ids.length - there.length;

  const closed = (s: (typeof samples)[number]) => s.closed;
  const dropped = samples.find((s) => s.t > killedAt && closed(s) - closed(atKill) >= atKill.open);
  const last = samples.at(-1)!;
  const servers = await load.servers();
  const outcome: Outcome = {
    how,
    synchronous,
    old,
    next,
    promoted,
    routed,
    firstWrite: firstAck && after(firstAck),
    sent: sent.filter((r) => r.end > killedAt),
    killedAt,
    acked: ids.length,
    lost,
    pool: {
      openAtKill: atKill.open,
      droppedAfter: dropped && after(dropped.t),
      deadline: last.deadline - atKill.deadline,
      maxWaiting: Math.max(...samples.filter((s) => s.t > killedAt).map((s) => s.waiting)),
    },
    rejoined,
    rejoinedAs,
    rewound,
    shownAt: servers.servers.find((x) => x.name === 'primary')?.at,
  };
  report(outcome, out);
  return outcome;
}

/** When `member` is first seen as a running replica (performance.now()), within 2 minutes; else undefined. */
const untilReplica = (cluster: PatroniCluster, member: Member) =>
  poll(async () => ((await cluster.role(member)) === 'replica' ? performance.now() : undefined), 120_000);

/** The span of the failures among `sent`, in seconds after the kill: "2.1-9.4 s after the kill". */
function failedWithin (sent: Sent[], killedAt: number): string {
  const failed = sent.filter((r) => r.status !== 200 && r.status !== 201);
  if (!failed.length) return 'none failed';
  // By when they were answered: a request in flight at the kill was sent before it.
  const t = (x: number) => ((x - killedAt) / 1000).toFixed(1);
  const ends = failed.map((r) => r.end);
  return `answered ${t(Math.min(...ends))}-${t(Math.max(...ends))} s after the kill`;
}

function codes (sent: Sent[]): string {
  const counts = new Map<string, number>();
  for (const r of sent) {
    const key = r.status === 0 ? 'no answer' : r.code ? `${r.status} ${r.code}` : String(r.status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n} x ${k}`).join(', ');
}

/** Requests answered between the kill and the first write acknowledged on the new leader. */
function inOutage (o: Outcome): Sent[] {
  const end = o.killedAt + (o.firstWrite ?? Infinity) * 1000;
  return o.sent.filter((r) => r.start >= o.killedAt && r.end <= end);
}

function report (o: Outcome, out: (line: string) => void): void {
  out(
    `    ${o.next?.name ?? 'no member'} promoted ${sec(o.promoted)} after the kill; HAProxy routed the leader's port ` +
      `to it ${sec(o.routed)}; the first write acknowledged ${sec(o.firstWrite)}`
  );
  const writes = o.sent.filter((r) => r.kind === 'write');
  const reads = o.sent.filter((r) => r.kind === 'read');
  out(
    `    from the kill on, writes: ${codes(writes)} (${failedWithin(writes, o.killedAt)}); reads: ${codes(reads)} ` +
      `(${failedWithin(reads, o.killedAt)})`
  );
  out(`    during the write outage, reads (each with its write's X-Read-After): ${readsInOutage(o).summary}`);
  out(
    `    the pool: ${o.pool.openAtKill} connections open to ${o.old.name} at the kill, all closed ` +
      `${sec(o.pool.droppedAfter)} after it; ${o.pool.deadline} closed by QUERY_TIMEOUT; at most ` +
      `${o.pool.maxWaiting} waiting`
  );
  out(
    `    ${o.acked} writes acknowledged in all, ${o.lost} lost; ${o.old.name} back as a ` +
      `${o.rejoinedAs ?? 'nothing'} ${sec(o.rejoined)} after ${o.how === 'member' ? 'its restart' : 'the kill'}` +
      `${o.rewound ? ' (pg_rewind ran)' : ''}; /servers: primary at ${o.shownAt ?? '?'}`
  );
}

/**
 * The reads between the kill and the first write on the new leader: by a replica, or by the new leader once it is
 * routed. At the promotion the promoted member leaves the replicas' port and its reads break; each is tried on the
 * primary, and while there is none, on the replicas' port once more (src/db/replicated.ts), where the other replica
 * may not have replayed the read's position yet: those few fail (0-18 a failover here, in the second of the
 * promotion). None may be stale (404).
 */
function readsInOutage (o: Outcome): { summary: string; ok: boolean } {
  const reads = inOutage(o).filter((r) => r.kind === 'read');
  const answered = reads.filter((r) => r.status === 200);
  const byReplica = answered.filter((r) => r.servedBy?.startsWith('replica')).length;
  const failed = reads.filter((r) => r.status !== 200 && r.status !== 404);
  const stale = o.sent.filter((r) => r.kind === 'read' && r.status === 404).length;
  const named = failed.every((r) => r.status === 503 && OUTAGE_CODES.includes(r.code ?? ''));
  return {
    summary:
      `${answered.length} of ${reads.length} answered 200, ${byReplica} by a replica, ` +
      `${answered.length - byReplica} by the new leader; ${failed.length ? codes(failed) : 'none failed'}; ` +
      `${stale} stale (404) from the kill on`,
    ok: reads.length > 0 && answered.length >= 0.95 * reads.length && stale === 0 && named,
  };
}

const slowest = (sent: Sent[]) => sent.reduce((a, r) => Math.max(a, r.end - r.start), 0) / 1000;

function verdicts (o: Outcome): Verdict[] {
  const { ttl, loopWait, retryTimeout } = PATRONI;
  const promoteBound = ttl + loopWait + retryTimeout;
  const outageBound = promoteBound + ROUTING_S;
  const tag = `${o.how === 'postgres' ? 'PostgreSQL' : 'member'} killed, ${o.synchronous ? 'sync' : 'async'}`;
  const rows: Verdict[] = [];
  const row = (claim: string, measured: string, expected: string, ok: boolean | undefined) =>
    rows.push({
      claim: `${tag}: ${claim}`,
      measured,
      expected,
      verdict: ok === undefined ? 'shown' : ok ? 'ok' : 'DEPARTS',
      ok,
    });
  row(
    'a replica promoted; the write outage',
    `${o.next?.name ?? 'none'} promoted after ${sec(o.promoted)}; the first write acknowledged after ` +
      `${sec(o.firstWrite)}`,
    `promoted <= ttl + loop_wait + retry_timeout = ${promoteBound} s; writes back <= ${outageBound} s (+ HAProxy)`,
    o.promoted !== undefined &&
      o.promoted <= promoteBound &&
      o.firstWrite !== undefined &&
      o.firstWrite <= outageBound
  );
  row(
    'acknowledged writes lost',
    `${o.lost} of ${o.acked}`,
    o.synchronous ? '0 (synchronous_mode)' : 'up to maximum_lag_on_failover (may be 0 at a light load)',
    o.synchronous ? o.lost === 0 : undefined
  );
  const failed = o.sent.filter((r) => r.status !== 200 && r.status !== 201);
  const unnamed = failed.filter((r) => r.status !== 503 || !OUTAGE_CODES.includes(r.code ?? ''));
  row(
    'requests from the kill on',
    `${o.sent.length - failed.length} answered 2xx; failed: ${failed.length ? codes(failed) : 'none'}; the slowest ` +
      `${sec(slowest(o.sent))}`,
    `each failure a 503 naming its cause; none slower than the budget, ${BUDGET_S} s`,
    unnamed.length === 0 && slowest(o.sent) <= BUDGET_S + 0.5
  );
  const back = o.firstWrite !== undefined && o.routed !== undefined ? o.firstWrite - o.routed : undefined;
  row(
    "the pool: the dead leader's connections; back to service",
    `${o.pool.openAtKill} open, all closed after ${sec(o.pool.droppedAfter)}, ${o.pool.deadline} by a timeout; ` +
      `the first write ${back === undefined ? '?' : `${back.toFixed(1)} s`} after HAProxy routed the new leader`,
    `closed at once (<= ${ROUTING_S} s), none by a timeout; writes back within ${ROUTING_S} s of the routing`,
    o.pool.droppedAfter !== undefined &&
      o.pool.droppedAfter <= ROUTING_S &&
      o.pool.deadline === 0 &&
      back !== undefined &&
      back <= ROUTING_S
  );
  const reads = readsInOutage(o);
  row(
    'reads during the write outage',
    reads.summary,
    '>= 95 % answered 200 (a failure a 503 naming its cause), none stale',
    reads.ok
  );
  row(
    'the old leader rejoins; /servers names the new one',
    `${o.old.name} a ${o.rejoinedAs ?? 'nothing'} after ${sec(o.rejoined)}${o.rewound ? ' (pg_rewind)' : ''}; ` +
      `primary at ${o.shownAt ?? '?'}`,
    `a replica; primary at 127.0.0.1:${o.next?.pgPort ?? '?'} (${o.next?.name ?? '?'})`,
    o.rejoinedAs === 'replica' && o.next !== undefined && o.shownAt === `127.0.0.1:${o.next.pgPort}`
  );
  return rows;
}
