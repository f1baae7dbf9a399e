// The command line as a user meets it: one-line errors with exit 2, help, version, db init,
// and the max_connections refusal. (Each setting's parsing is unit-tested in test/unit/config.test.ts.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SETTINGS } from '../../src/config.ts';
import { CLI } from '../../src/harness/server-process.ts';
import { freshDatabase, runCli, sql, tempDir, withService } from '../helper.ts';
import { childrenOf } from '../processes.ts';

const NO_DB = { DATABASE_URL: 'postgresql://127.0.0.1:1/x' };

/** Runs the CLI and checks: exit 2, nothing on stdout, exactly `line` on stderr. */
async function refused (args: string[], env: Record<string, string>, line: string | RegExp, cwd?: string) {
  const res = await runCli(args, env, cwd);
  assert.equal(res.code, 2, res.stderr);
  assert.equal(res.stdout, '');
  const lines = res.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got: ${res.stderr}`);
  if (typeof line === 'string') assert.equal(lines[0], line);
  else assert.match(lines[0]!, line);
}

describe('the command line', () => {
  test('a DATABASE_URL that is malformed: the reason, and never the password', async () => {
    await refused(
      ['serve'],
      { DATABASE_URL: 'mysql://root:S3cret@127.0.0.1/x' },
      'Invalid DATABASE_URL="mysql://root:***@127.0.0.1/x": expected a postgres:// or postgresql:// URL, not mysql:'
    );
    await refused(
      ['serve'],
      { DATABASE_URL: 'postgresql://u:S3cret@127.0.0.1:abc/x' },
      'Invalid DATABASE_URL="postgresql://u:***@127.0.0.1:abc/x": the port "abc" is not a number'
    );
    await refused(
      ['serve', '--database-url', 'host=localhost user=u password=S3cret dbname=x'],
      {},
      'Invalid --database-url="host=localhost user=u password=*** dbname=x": the key=value form is not accepted; ' +
        'write it as a URL: postgresql://user:password@host:5432/database'
    );
    await refused(
      ['serve'],
      { PGBOUNCER_URL: 'postgres//u:S3cret@h/x' },
      /^Invalid PGBOUNCER_URL="[^"]*": expected a URL such as/
    );
  });

  test(
    'a PostgreSQL that accepts the connection and never answers: one line naming it (no password) after ' +
      'CONNECT_TIMEOUT, exit 1',
    async (t) => {
      const silent = net.createServer(() => {}); // accepts, says nothing
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      t.after(() => silent.close());
      const port = (silent.address() as net.AddressInfo).port;
      const t0 = performance.now();
      // PORT=0: the default 8000 may be taken on this machine, and the port is checked first.
      const res = await runCli(['serve'], {
        DATABASE_URL: `postgresql://u:S3cret@127.0.0.1:${port}/x`,
        CONNECT_TIMEOUT: '1',
        PORT: '0',
      });
      assert.equal(res.code, 1);
      assert.equal(
        res.stderr.trim(),
        `Cannot connect to PostgreSQL at postgresql://u:***@127.0.0.1:${port}/x: no answer within 1 s`
      );
      // CONNECT_TIMEOUT=1 applies, not the default 10 s (a bound with room for a busy machine's slow start).
      assert.ok(performance.now() - t0 < 9000, `exited after ${Math.round(performance.now() - t0)} ms`);
      for (const s of [res.stdout, res.stderr]) assert.ok(!s.includes('S3cret'));
    }
  );

  test('a PORT in use: one line naming it, exit 2, before PostgreSQL is started', async (t) => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    t.after(() => taken.close());
    const port = (taken.address() as net.AddressInfo).port;
    const dir = tempDir();
    await refused(
      ['serve'],
      { PORT: String(port), DATA_DIR: dir },
      `Cannot listen on 127.0.0.1:${port}: the port is in use by another program (set PORT to another port, or 0 for ` +
        'any free one)'
    );
    assert.ok(!existsSync(join(dir, 'postgres')), 'PostgreSQL was not started');
  });

  test('switches take on/off in every form a flag may have: --pgbouncer=off, --log-sql=false, --log-sql', async () => {
    // The run stops at the bad port: the switches before it were accepted.
    await refused(
      ['serve', '--pgbouncer=off', '--log-sql=false', '--port', 'x'],
      NO_DB,
      'Invalid --port="x": expected an integer from 0 to 65535'
    );
    await refused(
      ['serve', '--log-sql', '--port', 'x'],
      NO_DB,
      'Invalid --port="x": expected an integer from 0 to 65535'
    );
    await refused(['serve', '--log-sql=maybe'], NO_DB, 'Invalid --log-sql="maybe": expected on or off');
  });

  test(
    'NO_COLOR: the log on a terminal has no colour codes (it has them without NO_COLOR)',
    { skip: existsSync('/usr/bin/script') ? false : 'script(1) is not installed' },
    async () => {
      const db = await freshDatabase();
      const onTerminal = (env: Record<string, string>) =>
        new Promise<string>((resolve) => {
          // script(1) gives the service a terminal, as a developer's shell does; SIGTERM after the first
          // log lines, to the service itself: script would not pass it on, and the service, left on a
          // terminal that is gone, would outlive the test.
          const child = spawn('script', ['-qec', `exec node ${CLI} serve`, '/dev/null'], {
            env: { ...process.env, DATABASE_URL: db, PORT: '0', LOG_LEVEL: 'info', ...env },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          let stopped = false;
          child.stdout!.on('data', (d) => {
            out += d;
            if (stopped || !out.includes('Listening on')) return;
            stopped = true;
            for (const pid of childrenOf(child.pid!)) process.kill(pid, 'SIGTERM');
          });
          child.on('exit', () => resolve(out));
        });
      const colour = new RegExp(`${String.fromCharCode(27)}\\[3\\dm`); // ESC [ 3x m: a foreground colour
      assert.match(await onTerminal({}), colour, 'colours on a terminal');
      assert.doesNotMatch(await onTerminal({ NO_COLOR: '1' }), colour, 'no colour with NO_COLOR');
    }
  );

  test(
    'piped, stdout carries JSON lines only: the banner is one log record with its facts as fields, even at ' +
      'LOG_LEVEL=error',
    async () => {
      const db = await freshDatabase();
      for (const level of ['info', 'error']) {
        const child = spawn(process.execPath, [CLI, 'serve'], {
          env: { ...process.env, DATABASE_URL: db, PORT: '0', LOG_LEVEL: level },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout!.on('data', (d) => {
          out += d;
        });
        const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
        for (let i = 0; i < 600 && !out.includes('Listening on'); i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        child.kill('SIGTERM');
        assert.equal(await exited, 0);
        const lines = out.trim().split('\n');
        for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not JSON: ${line}`);
        const record = lines
          .map((l) => JSON.parse(l) as { msg: string; address?: string; banner?: Record<string, string> })
          .find((r) => r.banner);
        assert.ok(record, `a banner record at LOG_LEVEL=${level}: ${out}`);
        assert.match(record.msg, /^Listening on http:\/\/127\.0\.0\.1:\d+$/);
        assert.equal(record.address, record.msg.slice('Listening on '.length));
        assert.match(record.banner!.pool!, /^QueuePool size 5 \+ overflow 10 per process/);
        assert.match(
          record.banner!.database!,
          /^postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\//,
          'the password masked'
        );
      }
    }
  );

  test('a bad setting, from the environment or a flag: one line, exit 2, before anything starts', async () => {
    await refused(
      ['serve'],
      { ...NO_DB, POOL_SIZE: 'abc' },
      'Invalid POOL_SIZE="abc": expected an integer from 1 to 1000'
    );
    await refused(
      ['serve', '--db-mode', 'async'],
      NO_DB,
      'Invalid --db-mode="async": expected blocking or nonblocking'
    );
    await refused(['--pool-size', '0'], NO_DB, 'Invalid --pool-size="0": expected an integer from 1 to 1000');
    await refused(
      ['sizing', '--sizes', '4,2'],
      NO_DB,
      'Invalid --sizes="4,2": expected increasing sizes, each once (1,2,4,8)'
    );
    await refused(
      ['sizing', '--sizes', '1,x'],
      NO_DB,
      'Invalid --sizes="1,x": expected integers from 1 to 1000, separated by commas (1,2,4,8)'
    );
    await refused(
      ['sizing', '--concurrency', '0'],
      NO_DB,
      'Invalid --concurrency="0": expected an integer from 1 to 10000'
    );
  });

  test('a bad value in .env is reported the same way, and the environment wins over .env', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, '.env'), 'POOL_MAX_OVERFLOW=lots\nWORKERS=3\n');
    await refused(['serve'], NO_DB, 'Invalid POOL_MAX_OVERFLOW="lots": expected an integer from 0 to 1000', dir);
    await refused(
      ['serve'],
      { ...NO_DB, POOL_MAX_OVERFLOW: '1', WORKERS: 'x' },
      'Invalid WORKERS="x": expected an integer from 1 to 64',
      dir
    );
  });

  test('an unknown option or command: one line, with a suggestion when one is close, exit 2', async () => {
    await refused(
      ['client', '--rout', '/x'],
      {},
      "Unknown option '--rout' (did you mean --route?). Run with --help for the accepted options."
    );
    await refused(
      ['serv'],
      {},
      "Unknown command 'serv' (did you mean serve?). Run with --help for the accepted options."
    );
    await refused(['frobnicate'], {}, "Unknown command 'frobnicate'. Run with --help for the accepted options.");
    await refused(['serve', '--nope'], {}, /^Unknown option '--nope'/);
  });

  test('--help lists every setting with its variable; every command and db have help; --version', async () => {
    const serve = await runCli(['serve', '--help']);
    assert.equal(serve.code, 0);
    for (const s of Object.values(SETTINGS)) {
      assert.match(serve.stdout, new RegExp(`--${s.flag}\\b[^\\n]*\\n?\\s*${s.env}:`), s.env);
    }
    for (const args of [
      ['--help'],
      ['client', '--help'],
      ['demo', '--help'],
      ['sizing', '--help'],
      ['db', '--help'],
      ['db', 'init', '--help'],
      ['db', 'url', '--help'],
    ]) {
      const res = await runCli(args);
      assert.equal(res.code, 0, args.join(' '));
      assert.match(res.stdout, /^Usage: async-node-postgres/, args.join(' '));
    }
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default;
    assert.equal((await runCli(['--version'])).stdout.trim(), version);
  });

  test(
    'db init migrates and seeds once: twice leaves 50 rows; ' +
      '--reset recreates; serve seeds only an empty table',
    async () => {
      const db = await freshDatabase();
      const first = await runCli(['db', 'init'], { DATABASE_URL: db });
      assert.equal(first.code, 0, first.stderr);
      assert.match(
        first.stdout,
        /^migration: up 0001_create_todo\nseeded 50 todos; 50 todos in postgresql:\/\/postgres:\*\*\*@/
      );
      const second = await runCli(['db', 'init'], { DATABASE_URL: db });
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /^50 todos in /);
      await sql(db, "INSERT INTO todo (title, done, priority) VALUES ('extra', false, 0)");
      const reset = await runCli(['db', 'init', '--reset'], { DATABASE_URL: db });
      assert.match(reset.stdout, /migration: down 0001_create_todo/);
      assert.deepEqual(await sql(db, 'SELECT id, title FROM todo ORDER BY id LIMIT 1'), [
        { id: 1, title: 'Todo 0' },
      ]);
      await sql(db, 'DELETE FROM todo WHERE id > 10');
      await withService({ DATABASE_URL: db }, async () => {});
      assert.deepEqual(await sql(db, 'SELECT count(*)::int AS n FROM todo'), [{ n: 10 }]);
    }
  );

  test(
    'the service refuses to start when its pools exceed what ' +
      'PostgreSQL allows: one line with the arithmetic, exit 2',
    async () => {
      const db = await freshDatabase();
      const [s] = await sql<{ max: string; su: string }>(
        db,
        "SELECT current_setting('max_connections') AS max, current_setting('superuser_reserved_connections') AS su"
      );
      const available = Number(s!.max) - Number(s!.su);
      await refused(
        ['serve', '--workers', '2', '--pool-size', String(available), '--pool-max-overflow', '1'],
        { DATABASE_URL: db, PORT: '0' },
        new RegExp(
          `^Refusing to start: WORKERS x \\(POOL_SIZE \\+ POOL_MAX_OVERFLOW\\) = 2 x \\(${available} \\+ 1\\) ` +
            `= ${2 * (available + 1)} connections; PostgreSQL allows max_connections ${s!.max} - ` +
            `superuser_reserved_connections ${s!.su} = ${available}, and`
        )
      );
    }
  );
});
