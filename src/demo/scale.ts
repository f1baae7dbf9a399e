// Scenario 6, "beyond the ceiling": four workers whose pools add up to more connections than
// PostgreSQL accepts. Straight to PostgreSQL the service refuses to start; through PgBouncer in
// transaction mode the same pools share 15 server connections and every request is served.
import { join } from 'node:path';
import { runClient } from '../client/client.ts';
import type { ReportSection } from '../client/report.ts';
import type { Config } from '../config.ts';
import { prepareDatabase } from '../db/tables.ts';
import { runCliToEnd, withServerProcess, type Stoppable } from '../harness/server-process.ts';
import { EmbeddedPostgres } from '../postgres/embedded.ts';
import { watchBackends } from '../postgres/observe.ts';
import { waveCount, wavesSeconds } from '../scenarios.ts';
import { checkWaves, row, s, within, type Verdict } from './verdicts.ts';

const MAX_CONNECTIONS = 20;
const WORKERS = 4;
const POOL_SIZE = 5;
const POOL_MAX_OVERFLOW = 10;
const BOUNCER_POOL = 15;
const N = 200;
const SECONDS = 1;

const CLIENT_CONNECTIONS = WORKERS * (POOL_SIZE + POOL_MAX_OVERFLOW);
const WAVES = waveCount(N, BOUNCER_POOL);
const SCALE_TITLE =
  `6. Beyond the ceiling: ${WORKERS} workers x (${POOL_SIZE} + ${POOL_MAX_OVERFLOW}) ` +
  `= ${CLIENT_CONNECTIONS} connections, max_connections ${MAX_CONNECTIONS}`;

const env = (extra: Record<string, string>) =>
  Object.entries(extra)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

export async function runScaleScenario (
  config: Config,
  running: Set<Stoppable>,
  out: (line: string) => void
): Promise<{ row: Verdict; section: ReportSection }> {
  // max_connections is fixed when PostgreSQL starts, so this scenario runs a server of its own.
  const dataDir = join(config.dataDir, 'scale');
  const postgres = new EmbeddedPostgres({ dataDir, maxConnections: MAX_CONNECTIONS });
  const pools = {
    WORKERS: String(WORKERS),
    POOL_SIZE: String(POOL_SIZE),
    POOL_MAX_OVERFLOW: String(POOL_MAX_OVERFLOW),
  };
  const bouncer = { PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: String(BOUNCER_POOL) };

  out(`=== ${SCALE_TITLE} ===`);
  out('    the original: "the concurrency for PostgreSQL operations is always limited by max_connections"');
  out(
    `    here:         a PostgreSQL of its own with max_connections ${MAX_CONNECTIONS} ` +
      `(in ${join(dataDir, 'postgres')}), then`
  );
  out(`                  1. ${env(pools)} npm start`);
  out(`                  2. ${env({ ...bouncer, ...pools })} npm start`);
  out(`                     npm run client -- ${N} --seconds ${SECONDS} --route /sleep/postgres/`);
  out(
    `    PgBouncer's ${BOUNCER_POOL} server connections become the limit: ceil(${N} / ${BOUNCER_POOL}) = ${WAVES} ` +
      `waves of ${SECONDS} s.`
  );
  await postgres.start();
  const stopPostgres = { stop: () => postgres.stop() };
  running.add(stopPostgres);
  try {
    await prepareDatabase(postgres.url);
    const base = { DATABASE_URL: postgres.url, DATA_DIR: dataDir, LOG_LEVEL: 'error', ...pools };
    const problems: string[] = [];

    out('  1. Straight to PostgreSQL:');
    const refused = await runCliToEnd(['serve'], { ...base, PORT: '0' }, { timeoutMs: 60_000 });
    const refusal = refused.stderr.trim();
    out(`     exit code ${refused.code}: ${refusal}`);
    const arithmetic = `${WORKERS} x (${POOL_SIZE} + ${POOL_MAX_OVERFLOW}) = ${CLIENT_CONNECTIONS}`;
    if (refused.code !== 2 || !refusal.includes(arithmetic)) {
      problems.push(`the direct start was not refused with "${arithmetic}"`);
    }

    out('  2. Through PgBouncer:');
    const { burst, seen } = await withServerProcess(
      { ...base, ...bouncer },
      async (server) => {
        // Piped, the banner is a JSON log record: its fields are the banner's lines.
        const announced = server
          .output()
          .split('\n')
          .find((l) => l.includes('"banner":'));
        const workersLine =
          announced &&
          (JSON.parse(announced.slice(announced.indexOf('{'))) as { banner: Record<string, string> }).banner
            .workers;
        if (workersLine) out(`     the banner: workers  : ${workersLine}`);
        const watch = watchBackends(postgres.url);
        const [b] = await runClient(
          { n: N, url: server.url, routes: ['/sleep/postgres/'], seconds: SECONDS, json: false, verbose: false },
          out
        );
        return { burst: b!, seen: await watch.stop() };
      },
      { running, timeoutMs: 120_000 }
    );
    out(
      `     PostgreSQL meanwhile: at most ${seen.backends} client connections, at most ${seen.sleeping} running ` +
        'pg_sleep at once.'
    );

    const total = burst.totalMs / 1000;
    const waves = checkWaves(burst, SECONDS, BOUNCER_POOL);
    if (waves) problems.push(waves);
    if (!within(total, wavesSeconds(N, SECONDS, BOUNCER_POOL))) {
      problems.push(`took ${s(total)}, expected ${s(wavesSeconds(N, SECONDS, BOUNCER_POOL))}`);
    }
    if (seen.sleeping > BOUNCER_POOL) {
      problems.push(`${seen.sleeping} pg_sleep ran at once, more than PgBouncer's ${BOUNCER_POOL}`);
    }
    return {
      row: row(
        SCALE_TITLE,
        [undefined, total],
        `refused, then ${N} OK in ceil(${N}/${BOUNCER_POOL}) x ${SECONDS}s = ${s(WAVES * SECONDS)}`,
        problems
      ),
      section: {
        title: SCALE_TITLE,
        note: `Through PgBouncer with ${BOUNCER_POOL} server connections; directly, the service refused: ${refusal}`,
        bursts: [burst],
      },
    };
  } finally {
    await postgres.stop();
    running.delete(stopPostgres);
  }
}
