// `npm run bench`: starts its own embedded PostgreSQL and servers, runs the suites, prints a
// table per suite and writes every raw figure to bench/results/<date>-<host>.json.
// It reports; it does not assert. Options: --quick, --suite NAME, --smoke (a tiny run for the tests).
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EmbeddedPostgres } from '../src/postgres/embedded.ts';
import { prepareDatabase } from '../src/db/tables.ts';
import { ProgressLine } from '../src/client/progress.ts';
import { machine, machineLine } from './lib.ts';
import { SUITES } from './suites.ts';

const MAX_CONNECTIONS = 100;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    suite: { type: 'string', multiple: true },
    smoke: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(`Usage: npm run bench -- [--quick] [--suite NAME]...\nSuites: ${Object.keys(SUITES).join(', ')}`);
  process.exit(0);
}
const names = values.suite ?? (values.smoke ? ['blocking'] : Object.keys(SUITES));
for (const n of names) {
  if (!SUITES[n]) {
    console.error(`Invalid --suite=${JSON.stringify(n)}: expected one of ${Object.keys(SUITES).join(', ')}`);
    process.exit(2);
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'anp-bench-'));
chmodSync(dataDir, 0o755);
const pg = new EmbeddedPostgres({ dataDir, maxConnections: MAX_CONNECTIONS });
const cleanup = async () => {
  await pg.stop();
  rmSync(dataDir, { recursive: true, force: true });
};
process.on('SIGINT', () => cleanup().then(() => process.exit(130)));

try {
  await pg.start();
  await prepareDatabase(pg.url);
  const m = await machine(pg.url);
  const started = new Date();
  const results: Record<string, unknown> = {};
  // On a terminal: the suite running, of how many; its tables print above the line.
  const progress = new ProgressLine();
  const print = progress.printing(console.log);
  for (const [i, name] of names.entries()) {
    print(`\n== ${name} ==\n${machineLine(m)}`);
    progress.update(`suite ${i + 1} of ${names.length}: ${name}`);
    const t0 = performance.now();
    results[name] = await SUITES[name]!({
      url: pg.url,
      dataDir,
      quick: values.quick || values.smoke,
      smoke: values.smoke,
      maxConnections: MAX_CONNECTIONS,
      print,
    });
    print(`(${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  progress.stop();
  const dir = process.env.BENCH_RESULTS_DIR ?? fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${started.toISOString().slice(0, 19).replaceAll(':', '-')}-${m.host}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        date: started.toISOString(),
        command: `npm run bench${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
        machine: m,
        quick: values.quick,
        results,
      },
      null,
      2
    )
  );
  console.log(`\nRaw figures: ${file}`);
} finally {
  await cleanup();
}
