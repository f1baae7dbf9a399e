// `npm test` (after the type check): the build, one embedded PostgreSQL for the whole run,
// node's test runner over test/unit, test/http and test/process (or the files named on the
// command line), coverage of src/ by c8 (the test processes, and the built service they start,
// mapped back to the TypeScript), then PostgreSQL stopped and a check that nothing the tests
// started outlives them.
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
 * Files that take a minute or so (on the idle 2-core machine) start first within their part, so
 * that the two files that run at a time finish together rather than one long file running alone
 * at the end.
 */
const SLOW = ['demo', 'browser', 'hosts', 'signals', 'modes', 'readme', 'sizing'];
const slowness = (file: string) => {
  const i = SLOW.indexOf(file.replace(/\.test\.ts$/, ''));
  return i < 0 ? SLOW.length : i;
};
const requested = process.argv.slice(2);
const files = requested.length
  ? requested
  : PARTS.flatMap((part) => readdirSync(join(testDir, part)).filter((f) => f.endsWith('.test.ts'))
    .sort((a, b) => slowness(a) - slowness(b) || a.localeCompare(b)).map((f) => join(testDir, part, f)));

// The process tests run the build: build first, so that it is never older than the source.
execFileSync(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit', cwd: fileURLToPath(new URL('..', import.meta.url)) });

const dataDir = mkdtempSync(join(tmpdir(), 'anp-test-run-'));
chmodSync(dataDir, 0o755);
const embedded = new EmbeddedPostgres({ dataDir, maxConnections: 300 });
await embedded.start();
const adminUrl = embedded.url.replace(/\/todos$/, '/postgres');

const c8 = createRequire(import.meta.url).resolve('c8/bin/c8.js');
const coverage = requested.length ? [] : [c8, '--all', '--src', 'src', '--include', 'src/**', '--include', 'dist/**', '--reporter', 'text-summary', '--reporter', 'html', '--report-dir', 'coverage'];
const runner = spawn(process.execPath, [
  ...coverage, ...(coverage.length ? [process.execPath] : []),
  '--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files,
], { stdio: 'inherit', env: { ...process.env, TEST_DATABASE_URL: adminUrl } });

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => runner.kill(signal));
}

const code = await new Promise<number>((resolve) => runner.once('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
await embedded.stop();
rmSync(dataDir, { recursive: true, force: true });

const leftovers = processesMarked('ANP_TEST_RUN', runId);
if (leftovers.length) {
  console.error(`\nProcesses started by the tests are still running:\n${leftovers.map((p) => `  ${p.pid} ${p.cmd}`).join('\n')}`);
  for (const p of leftovers) process.kill(p.pid, 'SIGKILL');
  process.exit(1);
}
console.log('No server or PostgreSQL process outlived the test run.');
process.exit(code);
