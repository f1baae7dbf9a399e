// `npm test`: the build while one embedded PostgreSQL for the whole run starts, node's test
// runner over test/unit, test/http and test/process with the type check beside it (or the parts
// or files named on the command line, without it: `npm run test:fast` is `unit http`), then
// PostgreSQL stopped, a check that
// nothing the tests started outlives them, and one that no test changed a tracked file.
// `npm run test:coverage` (TEST_COVERAGE=1) adds coverage of src/ by c8 (the test processes, and
// the built service they start, mapped back to the TypeScript): about a quarter more CPU.
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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
const IN_PROCESS_GROUPS = 5;
// node --test runs the files it is given in the order of their paths (20, 22 and 24 sort them),
// so no order is set here. Measured on the idle machine, the process part's two lanes end within
// 10 s of each other in that order (447 s for 885 s of files, 2026-12-03).
const args = process.argv.slice(2);
const parts = args.length ? args.filter((a) => PARTS.includes(a)) : PARTS;
const named = args.filter((a) => !PARTS.includes(a));
/**
 * Each part's folders: the service's, and the packages' (the pool's unit tests need no PostgreSQL;
 * the block detector's process tests start applications of their own).
 */
const PACKAGE = join(testDir, '..', 'packages', 'pg-queuepool', 'test');
const DETECTOR = join(testDir, '..', 'packages', 'event-loop-block-detector', 'test');
const FOLDERS: Record<string, string[]> = {
  unit: [join(testDir, 'unit'), join(PACKAGE, 'unit'), join(DETECTOR, 'unit')],
  http: [join(testDir, 'http'), join(PACKAGE, 'integration'), join(PACKAGE, 'dropin')],
  process: [join(testDir, 'process'), join(DETECTOR, 'process')],
};
const files = [
  ...named,
  ...parts.flatMap((part) =>
    FOLDERS[part]!.flatMap((dir) =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.test.ts'))
        .map((f) => join(dir, f))
    )
  ),
];
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The tracked files that differ from the last commit, as git sees them (none outside a git checkout). */
const changedTracked = () =>
  existsSync(join(ROOT, '.git'))
    ? execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' })
    : '';
const changedBefore = changedTracked();

// The process tests run the build, and worker threads run it in every test: build first, so
// that it is never older than the source. The build is package.json's own (tsc, then esbuild for
// src/vendor/): tsc alone would overwrite a bundled vendor module with its unbundled build
// whenever its source changed.
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
/** Runs tsc with `args`; resolves with its exit code. */
const tscRun = (args: string[]) =>
  new Promise<number>((resolve) => {
    spawn(process.execPath, [tsc, ...args], { stdio: 'inherit', cwd: ROOT }).once('exit', (c) => resolve(c ?? 1));
  });
/** Runs `npm run build`; rejects when it fails. */
const build = () =>
  new Promise<void>((resolve, reject) => {
    spawn('npm', ['run', '-s', 'build'], { stdio: 'inherit', cwd: ROOT }).once('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error('the build (npm run build) failed: see its errors above'));
    });
  });

// PostgreSQL starts (mostly waiting: initdb, then the server) while the build compiles.
const dataDir = mkdtempSync(join(tmpdir(), 'anp-test-run-'));
chmodSync(dataDir, 0o755);
const embedded = new EmbeddedPostgres({ dataDir, maxConnections: 300 });
const [pgStarted, built] = await Promise.allSettled([embedded.start(), build()]);
for (const failed of [pgStarted, built]) {
  if (failed.status === 'rejected') {
    console.error((failed.reason as Error).message);
    await embedded.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(1);
  }
}
const adminUrl = embedded.url.replace(/\/todos$/, '/postgres');

// The full run type-checks everything (tests included) beside the tests; its verdict counts all
// the same. A run of parts (test:fast) leaves it to `npm test` and `npm run typecheck`: it is a
// quarter of test:fast's CPU.
const typed = parts.includes('process') ? tscRun(['-p', '.']) : Promise.resolve(0);

const c8 = createRequire(import.meta.url).resolve('c8/bin/c8.js');
const withCoverage = process.env.TEST_COVERAGE === '1';
const coverage = withCoverage
  ? [
      c8,
      '--all',
      '--src',
      'src',
      '--include',
      'src/**',
      '--include',
      'dist/**',
      '--reporter',
      'text-summary',
      '--reporter',
      'html',
      '--report-dir',
      'coverage',
    ]
  : [];

/**
 * Seconds each in-process file's tests take, measured alone on the idle 2-core machine (mostly
 * waiting: sleeps, timeouts, the pool's queue), to balance the groups. A file not listed counts 5
 * (a unit test's, 0.2).
 */
const IN_PROCESS_SECONDS = new Map<string, number>([
  ['pool', 18.5],
  ['routes', 12],
  ['openapi', 10],
  ['todos', 9.5],
  ['timeouts', 9.5],
  ['metrics', 8.5],
  ['cancel', 8],
  ['answers', 7.5],
  ['readiness', 18],
  ['block', 5.5],
  ['dashboard', 5],
  ['outages', 5],
  ['validation', 2],
  ['dependencies', 1],
  ['observe', 1],
  ['faults', 25],
]);

/**
 * The service's unit and in-process HTTP files, several to a process (IN_PROCESS_GROUPS of them);
 * the pool package's files one each. A test process pays about 3 s of CPU before its first test
 * (tsx, then the app's ~700 ES modules, each a round trip to the loader hooks' thread on Node 20),
 * which was half of the part's CPU when every file had its own. A group's files run one after
 * another in its process, as node --test-isolation=none (Node 22.8+) runs them; the helper's
 * cleanups run at the group's end. The package's files keep their own process: their
 * file-level hooks (mocked timers before each test) would reach every test of a shared one.
 */
function grouped (batch: string[], dir: string): string[] {
  const own = batch.filter((f) => f.startsWith(PACKAGE + '/'));
  const groups: { files: string[]; seconds: number }[] = Array.from({ length: IN_PROCESS_GROUPS }, () => ({
    files: [],
    seconds: 0,
  }));
  // Longest first, each to the group with the least so far: groups that end together.
  const timed = batch
    .filter((f) => !own.includes(f))
    .map((f) => ({
      f,
      seconds: IN_PROCESS_SECONDS.get(basename(f, '.test.ts')) ?? (f.includes('/unit/') ? 0.2 : 5),
    }))
    .sort((a, b) => b.seconds - a.seconds || a.f.localeCompare(b.f));
  for (const { f, seconds } of timed) {
    const least = groups.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    least.files.push(f);
    least.seconds += seconds;
  }
  const entries = groups
    .filter((g) => g.files.length)
    .map((g, i) => {
      const entry = join(dir, `group-${i + 1}.test.mjs`);
      writeFileSync(entry, g.files.map((f) => `import ${JSON.stringify(pathToFileURL(f).href)};\n`).join(''));
      return entry;
    });
  return [...own, ...entries];
}

let runner: ReturnType<typeof spawn> | undefined;
/**
 * Runs node's test runner over `batch`, `concurrency` files at a time (`flags`: node's, for each file's process);
 * resolves with its exit code.
 */
function run (
  batch: string[],
  concurrency: number,
  what = `${batch.length} test files`,
  flags: string[] = []
): Promise<number> {
  if (!batch.length) return Promise.resolve(0);
  console.log(`${what}, ${concurrency} at a time`);
  runner = spawn(
    process.execPath,
    [
      ...coverage,
      ...(coverage.length ? [process.execPath] : []),
      ...flags,
      '--import',
      'tsx',
      '--test',
      '--test-reporter=spec',
      `--test-concurrency=${concurrency}`,
      ...batch,
    ],
    { stdio: 'inherit', env: { ...process.env, TEST_DATABASE_URL: adminUrl } }
  );
  return new Promise<number>((resolve) => runner!.once('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => runner?.kill(signal));
}

// The in-process parts (unit, http) judge timing by what the service recorded: all their
// processes at once (see grouped()). The process part at CONCURRENCY. Coverage (one c8 report) runs them as one batch.
const inProcess = files.filter(
  (f) => !named.includes(f) && [...FOLDERS.unit!, ...FOLDERS.http!].some((dir) => f.startsWith(dir + '/'))
);
const rest = files.filter((f) => !inProcess.includes(f));
const groupDir = mkdtempSync(join(tmpdir(), 'anp-test-groups-'));
let code: number;
if (withCoverage || process.env.TEST_CONCURRENCY) {
  code = await run(files, CONCURRENCY);
} else {
  const processes = grouped(inProcess, groupDir);
  // A deprecation is an error in the in-process tests (node passes its flags on to each file's
  // process): pg 8.19+ deprecates what pg 9 removes (a client's query queue, activeQuery), and
  // neither the pool nor the service may lean on it. The process tests' services run as users run them.
  const what = `${inProcess.length} test files in ${processes.length} processes, deprecations thrown`;
  code = await run(processes, processes.length, what, ['--throw-deprecation']);
  code = (await run(rest, CONCURRENCY)) || code;
}
rmSync(groupDir, { recursive: true, force: true });
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
  console.error(
    `\nProcesses started by the tests are still running:\n${leftovers.map((p) => `  ${p.pid} ${p.cmd}`).join('\n')}`
  );
  for (const p of leftovers) process.kill(p.pid, 'SIGKILL');
  process.exit(1);
}
console.log('No server or PostgreSQL process outlived the test run.');
process.exit(code || typeErrors);
