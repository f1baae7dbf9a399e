// One connect to PostgreSQL by host name, timed: what a pool's new connection costs, including the
// dns.lookup that a host name takes on libuv's thread pool (an IP address skips it).
import pg from 'pg';
import { APPLICATION_NAME } from './application.ts';

/** The URL with a loopback address replaced by `localhost`, so that the connect looks the name up. */
export function byHostName (url: string): string {
  const u = new URL(url);
  if (u.hostname === '127.0.0.1' || u.hostname === '[::1]') u.hostname = 'localhost';
  return u.href;
}

/** Opens a connection to `url` and closes it; resolves with the milliseconds the open took. */
export async function timeConnect (url: string, timeoutMs: number): Promise<number> {
  const client = new pg.Client({
    connectionString: url,
    application_name: `${APPLICATION_NAME}-probe`,
    connectionTimeoutMillis: timeoutMs,
  });
  client.on('error', () => {}); // a reset after the open is no answer to give
  const start = performance.now();
  try {
    await client.connect();
    return performance.now() - start;
  } finally {
    await client.end().catch(() => {});
  }
}
