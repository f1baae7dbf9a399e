// The embedded PostgreSQL (no DATABASE_URL): its lifecycle with the service.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { osUser, stagingDir } from '../../src/os/user.ts';
import { alive, get, noPgBouncer, onCleanup, runCli, sql, startService, tempDir, withService } from '../helper.ts';

const postmasterPid = (dir: string) =>
  Number(readFileSync(join(dir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);

describe('the embedded PostgreSQL', () => {
  test('first run: initialised, migrated, seeded; db url while it runs; stopped with the service', async () => {
    const dir = tempDir();
    const s = await startService({ DATA_DIR: dir, SLEEP_SECONDS: '0' });
    assert.match(
      s.output(),
      /"database":"embedded PostgreSQL in .*postgres at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/todos/
    );
    assert.equal(((await get(s.url, '/sleep/postgres/')).json as { todos: unknown[] }).todos.length, 50);
    const url = await runCli(['db', 'url'], { DATA_DIR: dir });
    assert.equal(url.code, 0, url.stderr);
    assert.deepEqual(await sql(url.stdout.trim(), 'SELECT count(*)::int AS n FROM todo'), [{ n: 50 }]);
    const pgPid = postmasterPid(dir);
    assert.ok(alive(pgPid));
    assert.equal(await s.stop('SIGTERM'), 0);
    assert.ok(!alive(pgPid), 'PostgreSQL stopped with the service');
    const after = await runCli(['db', 'url'], { DATA_DIR: dir });
    assert.equal(after.code, 1);
    assert.equal(
      after.stderr.trim(),
      `No embedded PostgreSQL is running for DATA_DIR=${dir}: start the service first (npm start).`
    );
  });

  test(
    'as root, inside a folder the postgres OS user cannot enter (mode 700): it still starts, with its data under ' +
      '/var/tmp',
    {
      skip: process.getuid?.() === 0 ? false : 'only root runs PostgreSQL as another OS user',
    },
    async () => {
      const secret = tempDir();
      chmodSync(secret, 0o700);
      const dir = join(secret, 'data');
      const staged = stagingDir(dir);
      onCleanup(async () => rmSync(staged, { recursive: true, force: true }));
      await withService({ DATA_DIR: dir, LOG_LEVEL: 'info', PGBOUNCER: noPgBouncer ? 'off' : 'on' }, async (s) => {
        assert.ok(
          s
            .output()
            .includes(
              `the postgres OS user cannot enter ${secret}: PostgreSQL's data is kept in ${join(staged, 'postgres')} ` +
                'instead'
            ),
          s.output()
        );
        assert.match(s.output(), new RegExp(`"database":"embedded PostgreSQL in ${join(staged, 'postgres')} at `));
        assert.equal((await get(s.url, '/todos/')).status, 200);
        assert.ok(existsSync(join(dir, 'postgres.password')), 'the password stays in DATA_DIR');
        assert.equal(statSync(secret).mode & 0o777, 0o700, 'the folder keeps its mode');
      });
    }
  );

  test(
    'a PostgreSQL left running in DATA_DIR with no owner (a ' +
      'run that could not stop it) is stopped by the next start',
    async () => {
      const dir = tempDir();
      // The program the service ran: node_modules' copy, or, when the postgres OS user cannot
      // reach node_modules (a clone in a mode-700 folder), the service's staged copy.
      let postgres = '';
      await withService({ DATA_DIR: dir }, async () => {
        postgres = readlinkSync(`/proc/${postmasterPid(dir)}/exe`);
      });
      const port = (JSON.parse(readFileSync(join(dir, 'postgres.json'), 'utf8')) as { port: number }).port;
      // The same server, started by hand and tied to no service: what a killed run leaves on a system without setpriv.
      const orphanProc = spawn(
        postgres,
        [
          '-D',
          join(dir, 'postgres'),
          '-p',
          String(port),
          '-c',
          'listen_addresses=127.0.0.1',
          '-c',
          'unix_socket_directories=',
        ],
        { detached: true, stdio: 'ignore', ...osUser() }
      );
      orphanProc.unref();
      onCleanup(async () => {
        if (alive(orphanProc.pid)) process.kill(orphanProc.pid!, 'SIGKILL');
      });
      for (let i = 0; i < 100 && !existsSync(join(dir, 'postgres', 'postmaster.pid')); i++) await delay(100);
      const orphan = postmasterPid(dir);
      assert.ok(alive(orphan), 'the orphaned PostgreSQL is running');
      await withService({ DATA_DIR: dir, LOG_LEVEL: 'info' }, async (s) => {
        assert.ok(!alive(orphan), 'the orphan was stopped');
        assert.match(s.output(), new RegExp(`stopping an orphaned embedded PostgreSQL \\(pid ${orphan}\\)`));
        assert.equal((await get(s.url, '/todos/')).status, 200);
      });
    }
  );

  test(
    'PostgreSQL killed under the running service: it is restarted, and the service serves again without a restart ' +
      'of its own',
    async () => {
      const dir = tempDir();
      await withService({ DATA_DIR: dir, LOG_LEVEL: 'info' }, async (s) => {
        const first = postmasterPid(dir);
        process.kill(first, 'SIGKILL');
        for (let i = 0; i < 100 && !/is running again/.test(s.output()); i++) await delay(100);
        assert.match(s.output(), /the embedded PostgreSQL exited with code null, signal SIGKILL: restarting it/);
        assert.match(s.output(), /the embedded PostgreSQL is running again \(restart 1 of at most 3 within 60 s\)/);
        assert.notEqual(postmasterPid(dir), first);
        let status = 0;
        for (let i = 0; i < 50 && status !== 200; i++) {
          status = (await get(s.url, '/todos/')).status;
          if (status !== 200) await delay(100);
        }
        assert.equal(status, 200);
        assert.equal((await get(s.url, '/readyz')).status, 200);
      });
    }
  );

  test(
    'PostgreSQL that cannot be started again: after 3 tries the service stops, exit 1, and /healthz no longer ' +
      'answers',
    async () => {
      const dir = tempDir();
      const s = await startService({ DATA_DIR: dir, LOG_LEVEL: 'info' });
      // A configuration PostgreSQL refuses: every restart fails at once.
      appendFileSync(join(dir, 'postgres', 'postgresql.conf'), '\nthis is not a setting\n');
      process.kill(postmasterPid(dir), 'SIGKILL');
      const code = await new Promise<number | null>((resolve) => s.proc.once('exit', (c) => resolve(c)));
      assert.equal(code, 1, s.output());
      assert.match(s.output(), /restarting the embedded PostgreSQL failed/);
      assert.match(
        s.output(),
        /the embedded PostgreSQL (exited with code null, signal SIGKILL|could not be restarted), and 3 restarts within 60 s did not keep it up/
      );
      await assert.rejects(get(s.url, '/healthz'));
    }
  );

  test('a stale postmaster.pid naming a dead process does not prevent the start', async () => {
    const dir = tempDir();
    await withService({ DATA_DIR: dir }, async () => {});
    const pidFile = join(dir, 'postgres', 'postmaster.pid');
    assert.ok(!existsSync(pidFile));
    writeFileSync(pidFile, `999999\n${join(dir, 'postgres')}\n0\n5432\n`);
    await withService({ DATA_DIR: dir }, async (s) => {
      assert.equal((await get(s.url, '/todos/')).status, 200);
    });
  });

  test('a second serve on the same DATA_DIR is refused while the first runs', async () => {
    const dir = tempDir();
    await withService({ DATA_DIR: dir }, async (first) => {
      const second = await runCli(['serve'], { DATA_DIR: dir, PORT: '0' });
      assert.equal(second.code, 1);
      assert.match(second.stderr, /is in use by process \d+/);
      assert.equal((await get(first.url, '/todos/')).status, 200);
    });
  });
});
