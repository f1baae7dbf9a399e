// The hosts demo's first two scenarios, on the ceiling: (a) every host fits alone, together they
// exceed max_connections, and PostgreSQL refuses; (b) through one central PgBouncer nothing is
// refused and the waves are PgBouncer's.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { burst, type Burst } from '../../client/load.ts';
import { summarize } from '../../client/summary.ts';
import { runCliToEnd } from '../../harness/server-process.ts';
import { watchBackends } from '../../postgres/observe.ts';
import { waveCount, wavesSeconds } from '../../scenarios.ts';
import { checkWaves, s, within, type Verdict } from '../verdicts.ts';
import { BOUNCER_POOL, POOL_MAX_OVERFLOW, POOL_SIZE, WORKERS, type Fleet } from './fleet.ts';

/** Each request's database sleep, in seconds. */
const SLEEP = 1;

/** (a) Each host's own check passes; together they exceed max_connections, and PostgreSQL refuses. */
export async function straightToPostgres (fleet: Fleet, out: (line: string) => void): Promise<Verdict> {
  const n = fleet.net.hosts.length;
  const perHost = WORKERS * (POOL_SIZE + POOL_MAX_OVERFLOW);
  const total = n * perHost;
  out(
    `  a. Straight to PostgreSQL: each host checks WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) = ${WORKERS} ` +
      `x (${POOL_SIZE} + ${POOL_MAX_OVERFLOW}) = ${perHost} <= ${fleet.available}: it fits, so each starts.`
  );
  await fleet.startAll();
  const refusalsBefore = refusalsLogged(fleet.dataDir);
  out(
    `     ${total} concurrent ${SLEEP} s database sleeps through HAProxy: together the pools want ${n} x ${perHost} ` +
      `= ${total} connections of ${fleet.available}.`
  );
  const a = await burst(`${fleet.proxy.url}/sleep/postgres/?seconds=${SLEEP}`, total, { timeoutMs: 60_000 });
  const refused = refusalsLogged(fleet.dataDir) - refusalsBefore;
  const failed = a.results.filter((r) => r.status !== 200).length;
  out(
    `     ${a.results.length - failed} x 200, ${failed} failed (${kinds(a)}); PostgreSQL's log: ${refused} x "sorry, ` +
      'too many clients already"'
  );
  await fleet.stopHosts();
  const fleetLine = await refusedWithHosts(fleet, n);
  out(`     With HOSTS=${n}, a host does the fleet's arithmetic and refuses to start:\n       ${fleetLine}`);
  const fleetOk = fleetLine.includes(
    `HOSTS x WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) = ${n} x ${WORKERS} x (${POOL_SIZE} + ${POOL_MAX_OVERFLOW}) ` +
      `= ${total}`
  );
  const ok = refused > 0 && failed > 0 && fleetOk;
  return {
    claim: `a. ${n} hosts straight to PostgreSQL`,
    measured: `${failed} of ${total} failed, ${refused} refused by PostgreSQL`,
    expected: `each host ${perHost} <= ${fleet.available}, the fleet ${total} > ${fleet.available}: refusals`,
    verdict: ok ? 'ok' : `MISMATCH: ${fleetOk ? 'no refusal under load' : 'HOSTS did not refuse the fleet'}`,
    ok,
  };
}

/** (b) The same hosts through one central PgBouncer: no refusal, PgBouncer's waves. */
export async function throughOneBouncer (fleet: Fleet, out: (line: string) => void): Promise<Verdict> {
  const n = fleet.net.hosts.length;
  const total = n * WORKERS * (POOL_SIZE + POOL_MAX_OVERFLOW);
  const bouncerUrl = await fleet.startBouncer();
  const waves = waveCount(total, BOUNCER_POOL);
  const expected = wavesSeconds(total, SLEEP, BOUNCER_POOL);
  out(
    `  b. Through one PgBouncer at ${fleet.net.dbAddress} (transaction mode, ${BOUNCER_POOL} server connections): ` +
      `HOSTS=${n} PGBOUNCER_URL=... on every host.`
  );
  out(
    `     ${total} concurrent ${SLEEP} s sleeps: ceil(${total} / ${BOUNCER_POOL}) = ${waves} waves, ${s(expected)}.`
  );
  fleet.env = { HOSTS: String(n), PGBOUNCER_URL: bouncerUrl };
  await fleet.startAll();
  const peak = watchBackends(fleet.postgres.url, 50);
  const b = await burst(`${fleet.proxy.url}/sleep/postgres/?seconds=${SLEEP}`, total, { timeoutMs: 60_000 });
  const most = (await peak.stop()).backends;
  const served = b.results.filter((r) => r.status === 200).length;
  const took = Math.max(...b.results.map((r) => r.end)) / 1000;
  const problem = checkWaves(b, SLEEP, BOUNCER_POOL);
  const ok = !problem && within(took, expected) && most <= BOUNCER_POOL;
  out(
    `     ${served} x 200 in ${s(took)}; at most ${most} of our connections on PostgreSQL at ` +
      `once${problem ? `; ${problem}` : ''}`
  );
  return {
    claim: `b. ${n} hosts through one PgBouncer`,
    measured: `${served} of ${total} x 200 in ${s(took)}, <= ${most} on PostgreSQL`,
    expected: `${waves} waves of ${BOUNCER_POOL}, ${s(expected)}, <= ${BOUNCER_POOL} connections`,
    verdict: ok ? 'ok' : `MISMATCH: ${problem ?? `${s(took)}, ${most} connections`}`,
    ok,
  };
}

/** A host started with HOSTS=n: its budget check counts the fleet. Returns its one line. */
async function refusedWithHosts (fleet: Fleet, n: number): Promise<string> {
  // From here, not a namespace: it stops before it listens, and PostgreSQL also listens on 127.0.0.1.
  const env = {
    DATABASE_URL: fleet.postgres.url,
    HOSTS: String(n),
    WORKERS: String(WORKERS),
    POOL_SIZE: String(POOL_SIZE),
    POOL_MAX_OVERFLOW: String(POOL_MAX_OVERFLOW),
    DATA_DIR: join(fleet.dataDir, 'refused'),
  };
  const r = await runCliToEnd(['serve'], { ...env, PORT: '0' }, { timeoutMs: 30_000 });
  return `exit code ${r.code}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`;
}

/** Connection refusals PostgreSQL has logged so far ("sorry, too many clients already"). */
function refusalsLogged (dataDir: string): number {
  const log = join(dataDir, 'postgres.log');
  if (!existsSync(log)) return 0;
  return readFileSync(log, 'utf8').split('sorry, too many clients already').length - 1;
}

function kinds (b: Burst): string {
  const { errorKinds, errorMessages } = summarize(b);
  return (
    Object.entries(errorKinds)
      .map(([kind, n]) => `${n} x ${kind}${errorMessages[kind] ? `: ${errorMessages[kind]}` : ''}`)
      .join(', ') || 'none'
  );
}
