// Waiting for a server process we started (PostgreSQL, PgBouncer) to accept connections.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';

export async function waitUntilAccepting (
  child: ChildProcess,
  url: string,
  what: string,
  logFile: string,
  timeoutMs: number
): Promise<void> {
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${what} failed to start: ${logTail(logFile)}`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.end();
      return;
    } catch {
      await client.end().catch(() => {});
      await delay(100);
    }
  }
  child.kill('SIGKILL');
  throw new Error(`${what} did not accept connections within ${timeoutMs / 1000} s: ${logTail(logFile)}`);
}

/** The last lines of a server's log, for an error message. */
export function logTail (file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '(no log)';
  }
}
