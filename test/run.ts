// `npm test` (after the type check): the build, one embedded PostgreSQL for the whole run,
// node's test runner over test/unit, test/http and test/process (or the parts or files named on
// the command line: `npm run test:fast` is `unit http`), then PostgreSQL stopped, a check that
// nothing the tests started outlives them, and one that no test changed a tracked file.
// `npm run test:coverage` (TEST_COVERAGE=1) adds coverage of src/ by c8 (the test processes, and
// the built service they start, mapped back to the TypeScript): about a quarter more CPU.
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmbeddedPostgres } from '../src/postgres/embedded.ts';
import { processesMarked } from './processes.ts';

const testDir = fileURLToPath(new URL('.', import.meta.url));
const runId = randomUUID();
// Every process the tests start inherits this marker, which is how leftovers are found.
process.env.ANP_TEST_RUN = runId;

/** The fast, in-process tests first: a broken contract shows in seconds, not after the process tests. */
const PARTS = ['unit', 'http', 'process'];
/**
 * Test files run at a time: two, one per core of the 2-core machine. Most of a test's time is
 * spent waiting (sleeps in PostgreSQL, services starting), so three at a time finished sooner
 * (6 min instead of 6.6), but the timing verdicts (the demo's waves and its pool timeout, the
 * sizing lab's curves), sharing the cores three ways, failed in two runs of three.
 */
const CONCURRENCY = Number(process.env.TEST_CONCURRENCY ?? 2);
const IN_PROCESS_CONCURRENCY = 4;
/**
 * Files that take a minute or so (on the idle 2-core machine) start first within their part, so
 * that the files that run at a time finish together rather than one long file running alone at
 * the end.
 */
const SLOW = ['demo', 'browser', 'signals', 'embedded', 'cli', 'hosts', 'client', 'sizing', 'pgbouncer', 'demo-scale', 'demo-claims', 'readme', 'modes'];
const slowness = (file: string) => {
  const i = SLOW.indexOf(file.replace(/\.test\.ts$/, ''));
  return i < 0 ? SLOW.length : i;
};
const args = process.argv.slice(2);
const parts = args.length ? args.filter((a) => PARTS.includes(a)) : PARTS;
const named = args.filter((a) => !PARTS.includes(a));
/** Each part's folders: the service's, and the pool package's (its unit tests need no PostgreSQL). */
const PACKAGE = join(testDir, '..', 'packages', 'pg-queuepool', 'test');
const FOLDERS: Record<string, string[]> = {
  unit: [join(testDir, 'unit'), join(PACKAGE, 'unit')],
  http: [join(testDir, 'http'), join(PACKAGE, 'integration'), join(PACKAGE, 'dropin')],
  process: [join(testDir, 'process')],
};
const files = [
  ...named,
  ...parts.flatMap((part) => FOLDERS[part]!.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.test.ts')).map((f) => join(dir, f)))
    .sort((a, b) => slowness(basename(a)) - slowness(basename(b)) || a.localeCompare(b))),
];
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The tracked files that differ from the last commit, as git sees them (none outside a git checkout). */
const changedTracked = () => existsSync(join(ROOT, '.git'))
  ? execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' })
  : '';
const changedBefore = changedTracked();

// The process tests run the build: build first, so that it is never older than the source. The
// type check of everything (tests included) runs beside the tests; its verdict counts all the same.
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
for (const project of ['packages/pg-queuepool/tsconfig.build.json', 'tsconfig.build.json']) execFileSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit', cwd: ROOT });

const dataDir = mkdtempSync(join(tmpdir(), 'anp-test-run-'));
chmodSync(dataDir, 0o755);
const embedded = new EmbeddedPostgres({ dataDir, maxConnections: 300 });
await embedded.start();
const adminUrl = embedded.url.replace(/\/todos$/, '/postgres');

const typecheck = spawn(process.execPath, [tsc, '-p', '.'], { stdio: 'inherit', cwd: ROOT });
const typed = new Promise<number>((resolve) => typecheck.once('exit', (c) => resolve(c ?? 1)));

const c8 = createRequire(import.meta.url).resolve('c8/bin/c8.js');
const withCoverage = process.env.TEST_COVERAGE === '1';
const coverage = withCoverage ? [c8, '--all', '--src', 'src', '--include', 'src/**', '--include', 'dist/**', '--reporter', 'text-summary', '--reporter', 'html', '--report-dir', 'coverage'] : [];

let runner: ReturnType<typeof spawn> | undefined;
/** Runs node's test runner over `batch`, `concurrency` files at a time; resolves with its exit code. */
function run (batch: string[], concurrency: number): Promise<number> {
  if (!batch.length) return Promise.resolve(0);
  console.log(`${batch.length} test files, ${concurrency} at a time`);
  runner = spawn(process.execPath, [
    ...coverage, ...(coverage.length ? [process.execPath] : []),
    '--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, ...batch,
  ], { stdio: 'inherit', env: { ...process.env, TEST_DATABASE_URL: adminUrl } });
  return new Promise<number>((resolve) => runner!.once('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => runner?.kill(signal));
}

// The in-process parts (unit, http) are light on CPU and judge timing by what the service recorded:
// four files at a time. The process part at CONCURRENCY. Coverage (one c8 report) runs them as one batch.
const inProcess = files.filter((f) => !named.includes(f) && [...FOLDERS.unit!, ...FOLDERS.http!].some((dir) => f.startsWith(dir + '/')));
const rest = files.filter((f) => !inProcess.includes(f));
let code: number;
if (withCoverage || process.env.TEST_CONCURRENCY) {
  code = await run(files, CONCURRENCY);
} else {
  code = await run(inProcess, IN_PROCESS_CONCURRENCY);
  code = (await run(rest, CONCURRENCY)) || code;
}
const typeErrors = await typed;
if (typeErrors) console.error('\nThe type check (tsc -p .) failed: see its errors above.');
await embedded.stop();
rmSync(dataDir, { recursive: true, force: true });

const changedAfter = changedTracked();
if (changedAfter !== changedBefore) {
  console.error(`\nThe tests changed tracked files (no test may):\n${changedAfter}`);
  process.exit(1);
}

const leftovers = processesMarked('ANP_TEST_RUN', runId);
if (leftovers.length) {
  console.error(`\nProcesses started by the tests are still running:\n${leftovers.map((p) => `  ${p.pid} ${p.cmd}`).join('\n')}`);
  for (const p of leftovers) process.kill(p.pid, 'SIGKILL');
  process.exit(1);
}
console.log('No server or PostgreSQL process outlived the test run.');
process.exit(code || typeErrors);
