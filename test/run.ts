// `npm test`: one embedded PostgreSQL for the whole run, node's test runner over every
// test file, then PostgreSQL stopped and a check that nothing the tests started outlives them.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmbeddedPostgres } from '../src/postgres/embedded.ts';
import { processesMarked } from './processes.ts';

const testDir = fileURLToPath(new URL('.', import.meta.url));
const runId = randomUUID();
// Every process the tests start inherits this marker, which is how leftovers are found.
process.env.ANP_TEST_RUN = runId;

const requested = process.argv.slice(2);
const files = requested.length
  ? requested
  : readdirSync(testDir).filter((f) => f.endsWith('.test.ts')).sort().map((f) => join(testDir, f));

const dataDir = mkdtempSync(join(tmpdir(), 'anp-test-run-'));
chmodSync(dataDir, 0o755);
const embedded = new EmbeddedPostgres({ dataDir, maxConnections: 300 });
await embedded.start();
const adminUrl = embedded.url.replace(/\/todos$/, '/postgres');

const runner = spawn(process.execPath, [
  '--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', ...files,
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
