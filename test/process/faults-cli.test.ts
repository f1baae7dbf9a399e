// `npm run cli -- faults`: the fault proxy by hand, as a user drives it from a terminal: the URL to
// give the service (its password masked), then commands on standard input.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import pg from 'pg';
import { CLI, cliEnv, runToEnd } from '../../src/harness/server-process.ts';
import { freshDatabase, runCli, tempDir } from '../helper.ts';

test(
  'drop, heal, status and quit typed on standard input: a partition and its heal, seen by a client through the proxy',
  { timeout: 60_000 },
  async (t) => {
    const db = await freshDatabase();
    const proc = spawn(process.execPath, [CLI, 'faults', '--to', db], {
      env: cliEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    t.after(() => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    });
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
    });
    const seen = async (marker: RegExp) => {
      const end = performance.now() + 10_000;
      while (!marker.test(out)) {
        if (performance.now() > end || proc.exitCode !== null) assert.fail(`not printed: ${marker}\n${out}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };
    await seen(/DATABASE_URL='([^']+)'/);
    const shown = /DATABASE_URL='([^']+)'/.exec(out)![1]!;
    const password = decodeURIComponent(new URL(db).password);
    assert.ok(!out.includes(password), 'the password is not printed');
    const through = new URL(shown);
    through.password = new URL(db).password;
    const query = async (timeoutMs: number) => {
      const client = new pg.Client({
        connectionString: through.toString(),
        connectionTimeoutMillis: timeoutMs,
        query_timeout: timeoutMs,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        return (await client.query('SELECT 42 AS answer')).rows[0].answer as number;
      } catch (err) {
        return (err as Error).message;
      } finally {
        client.end().catch(() => {});
      }
    };
    assert.equal(await query(5000), 42);
    proc.stdin.write('drop\n');
    await seen(/^drop: /m);
    assert.match(String(await query(500)), /timeout/i, 'a partition: no answer');
    proc.stdin.write('heal\nstatus\n');
    await seen(/^\{"mode":"pass"/m);
    assert.equal(await query(5000), 42);
    proc.stdin.write('quit\n');
    const { code } = await runToEnd(proc);
    assert.equal(code, 0);
  }
);

test(
  'a bad --to names the flag and what it takes; without a ' +
    'PostgreSQL to forward to, one line says where to find one',
  async () => {
    const bad = await runCli(['faults', '--to', 'mysql://user:secret@host/db']);
    assert.equal(bad.code, 2);
    assert.equal(
      bad.stderr.trim(),
      'Invalid --to="mysql://user:***@host/db": expected a postgres:// or postgresql:// URL, not mysql:'
    );
    const none = await runCli(['faults', '--data-dir', tempDir()]);
    assert.equal(none.code, 2);
    assert.match(
      none.stderr,
      /^No PostgreSQL to forward to: give --to URL, set DATABASE_URL, or start the service first/
    );
  }
);
