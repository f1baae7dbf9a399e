// Signals and shutdown, the way users and supervisors send them: the built service started by
// `npm start` (npm -> node, the script execs node) or by `node dist/cli.js serve`, in a process
// group of its own as a terminal's foreground job is, on the embedded PostgreSQL.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { CLI } from '../../src/harness/server-process.ts';
import { alive, noPgBouncer, onCleanup, request, ROOT, tempDir, type Response } from '../helper.ts';
import { childrenOf, processesMarked } from '../processes.ts';

interface Started {
  /** The process we spawned: npm, or node itself. */
  proc: ChildProcess;
  /** The service's node process (npm's child under npm start). */
  node: number;
  url: string;
  output: () => string;
  /** Every process started on its behalf (they carry the marker in their environment). */
  leftovers: () => { pid: number; cmd: string }[];
  exited: Promise<number | null>;
}

/** Starts the service in a new process group, as a shell starts a foreground job, and waits for its banner. */
async function start (how: 'npm start' | 'node', env: Record<string, string>): Promise<Started> {
  const marker = randomUUID();
  const [cmd, args] = how === 'npm start' ? ['npm', ['start']] : [process.execPath, [CLI, 'serve']];
  const proc = spawn(cmd, args, {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'info', PORT: '0', ANP_SIGNAL_TEST: marker, ...env },
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)))
  );
  onCleanup(async () => {
    for (const p of processesMarked('ANP_SIGNAL_TEST', marker)) process.kill(p.pid, 'SIGKILL');
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const deadline = Date.now() + 60_000;
  let listening: RegExpExecArray | null;
  while (!(listening = /Listening on (http:\/\/[^\s"]+)/.exec(out))) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`the service did not start:\n${out}`);
    await delay(50);
  }
  const node = how === 'npm start' ? childrenOf(proc.pid!)[0]! : proc.pid!;
  return {
    proc,
    node,
    url: listening[1]!,
    output: () => out,
    leftovers: () => processesMarked('ANP_SIGNAL_TEST', marker),
    exited,
  };
}

/** Waits until nothing the service started is left (PostgreSQL's fast shutdown takes a moment). */
async function nothingLeft (s: Started): Promise<void> {
  for (let i = 0; i < 100 && s.leftovers().length; i++) await delay(100);
  assert.deepEqual(s.leftovers(), [], `still running after the service:\n${s.output()}`);
}

const group = (s: Started, signal: NodeJS.Signals) => process.kill(-s.proc.pid!, signal);

/** N requests that stay in flight for `seconds`. */
function inFlight (s: Started, n: number, path: string): Promise<(Response | Error)[]> {
  return Promise.all(Array.from({ length: n }, () => request(s.url, 'GET', path).catch((err: Error) => err)));
}

const statuses = (answers: (Response | Error)[]) => answers.map((a) => (a instanceof Error ? a.message : a.status));

describe('signals and shutdown (the built service, as users and supervisors stop it)', () => {
  // One data folder for the file: PostgreSQL is initialised once, then started and stopped by each test.
  const DATA_DIR = tempDir();

  test(
    "npm start, the package script: npm's child is node itself, neither tsx nor esbuild runs, every route answers " +
      'at once',
    async () => {
      const s = await start('npm start', { DATA_DIR });
      const cmdline = readFileSync(`/proc/${s.node}/cmdline`, 'utf8').split('\0');
      assert.deepEqual(cmdline.slice(1, 3), ['dist/cli.js', 'serve'], cmdline.join(' '));
      const all = s
        .leftovers()
        .map((p) => p.cmd)
        .join('\n');
      assert.doesNotMatch(all, /tsx|esbuild/);
      // Once it listens, every route works: the dashboard too (its monitor thread started before).
      const [todos, page] = await Promise.all([request(s.url, 'GET', '/todos/'), request(s.url, 'GET', '/')]);
      assert.deepEqual([todos.status, page.status], [200, 200]);
      group(s, 'SIGTERM');
      assert.equal(await s.exited, 0);
      await nothingLeft(s);
    }
  );

  test(
    'SIGTERM to the npm start PID alone (a supervisor): 5 ' +
      'requests in flight answered, exit 0, PostgreSQL stopped',
    async () => {
      const s = await start('npm start', { DATA_DIR });
      const answers = inFlight(s, 5, '/sleep/postgres/?seconds=1.5');
      await delay(500);
      process.kill(s.proc.pid!, 'SIGTERM');
      assert.deepEqual(statuses(await answers), [200, 200, 200, 200, 200]);
      assert.equal(await s.exited, 0);
      await nothingLeft(s);
    }
  );

  test('SIGTERM to the node PID alone under npm start: the same', async () => {
    const s = await start('npm start', { DATA_DIR });
    const answers = inFlight(s, 5, '/sleep/node/?seconds=1.5');
    await delay(500);
    process.kill(s.node, 'SIGTERM');
    assert.deepEqual(statuses(await answers), [200, 200, 200, 200, 200]);
    assert.equal(await s.exited, 0);
    await nothingLeft(s);
  });

  test(
    'Ctrl-C (SIGINT to the process group: node gets it twice, from the terminal and from npm), 5 requests in ' +
      'flight, 5 times: 5/5 answered every time',
    async () => {
      for (let round = 1; round <= 5; round++) {
        const s = await start('npm start', { DATA_DIR });
        const answers = inFlight(s, 5, '/sleep/postgres/?seconds=1');
        await delay(300);
        group(s, 'SIGINT');
        assert.deepEqual(statuses(await answers), [200, 200, 200, 200, 200], `round ${round}`);
        assert.equal(await s.exited, 0, `round ${round}: ${s.output()}`);
        await nothingLeft(s);
      }
    }
  );

  test(
    'APP_MODE=blocking: Ctrl-C during a 3 s blocking sleep ' +
      'is handled when it returns; the request is answered',
    async () => {
      const s = await start('npm start', { DATA_DIR, APP_MODE: 'blocking' });
      const answer = request(s.url, 'GET', '/sleep/node/?seconds=3');
      await delay(500);
      group(s, 'SIGINT');
      assert.equal((await answer).status, 200);
      assert.equal(await s.exited, 0);
      await nothingLeft(s);
    }
  );

  test('node dist/cli.js serve (the production command): SIGTERM drains and exits 0', async () => {
    const s = await start('node', { DATA_DIR });
    const answers = inFlight(s, 3, '/sleep/postgres/?seconds=1');
    await delay(300);
    process.kill(s.node, 'SIGTERM');
    assert.deepEqual(statuses(await answers), [200, 200, 200]);
    assert.equal(await s.exited, 0);
    await nothingLeft(s);
  });

  test(
    'SHUTDOWN_DELAY=2 (behind a load balancer): after SIGTERM /readyz is 503 at once, new connections are still ' +
      'served, then it stops listening and exits 0',
    async () => {
      const s = await start('node', { DATA_DIR, SHUTDOWN_DELAY: '2' });
      assert.equal((await request(s.url, 'GET', '/readyz')).status, 200);
      const t0 = performance.now();
      process.kill(s.node, 'SIGTERM');
      await delay(200);
      const ready = await request(s.url, 'GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.match(ready.body, /"reason":"shutting down"/);
      // request() opens a new connection each time: the service still accepts and serves.
      assert.equal((await request(s.url, 'GET', '/todos/')).status, 200);
      assert.equal(await s.exited, 0);
      assert.ok(
        performance.now() - t0 >= 1900,
        `exited ${(performance.now() - t0).toFixed(0)} ms after SIGTERM, before SHUTDOWN_DELAY ended`
      );
      assert.match(s.output(), /SHUTDOWN_DELAY: \/readyz answers 503 for 2 s/);
      await nothingLeft(s);
    }
  );

  test(
    'a signal node answers (--heapsnapshot-signal=SIGUSR2) leaves the service running; SIGHUP (the terminal ' +
      'closed) shuts it down gracefully, said in the log',
    async () => {
      const dir = tempDir();
      const s = await start('node', {
        DATA_DIR,
        NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`,
      });
      process.kill(s.node, 'SIGUSR2');
      for (let i = 0; i < 300 && !readdirSync(dir).some((f) => f.endsWith('.heapsnapshot')); i++) await delay(100);
      assert.ok(
        readdirSync(dir).some((f) => f.endsWith('.heapsnapshot')),
        'a heap snapshot was written'
      );
      assert.equal((await request(s.url, 'GET', '/todos/')).status, 200);
      const answers = inFlight(s, 2, '/sleep/node/?seconds=1');
      await delay(300);
      process.kill(s.node, 'SIGHUP');
      assert.deepEqual(statuses(await answers), [200, 200]);
      assert.equal(await s.exited, 0);
      assert.match(s.output(), /SIGHUP: shutting down gracefully/);
      await nothingLeft(s);
    }
  );

  test('a second Ctrl-C, after the first: exit at once, and PostgreSQL still stops', async () => {
    const s = await start('npm start', { DATA_DIR });
    const long = request(s.url, 'GET', '/sleep/postgres/?seconds=30').catch((err: Error) => err);
    await delay(300);
    group(s, 'SIGINT');
    await delay(1500); // longer than the echo window: this one is a second Ctrl-C
    const t0 = performance.now();
    group(s, 'SIGINT');
    assert.notEqual(await s.exited, 0);
    assert.ok(
      performance.now() - t0 < 3000,
      `exited ${Math.round(performance.now() - t0)} ms after the second Ctrl-C`
    );
    await long;
    await nothingLeft(s);
    assert.ok(!existsSync(join(DATA_DIR, 'postgres', 'postmaster.pid')), 'PostgreSQL shut down cleanly');
  });

  test(
    `WORKERS=2${noPgBouncer ? '' : ' with PGBOUNCER=on'} under npm start, Ctrl-C: both workers drain their ` +
      'requests, then PgBouncer and PostgreSQL stop',
    async () => {
      const s = await start('npm start', { DATA_DIR, WORKERS: '2', ...(noPgBouncer ? {} : { PGBOUNCER: 'on' }) });
      const workers = childrenOf(s.node).filter((pid) =>
        readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('cli.js')
      );
      assert.equal(workers.length, 2, 'two worker processes');
      const answers = inFlight(s, 8, '/sleep/postgres/?seconds=1.5');
      await delay(500);
      group(s, 'SIGINT');
      assert.deepEqual(statuses(await answers), Array(8).fill(200));
      assert.equal(await s.exited, 0, s.output());
      await nothingLeft(s);
    }
  );

  test(
    `SIGKILL of the service: PostgreSQL${noPgBouncer ? '' : ' and PgBouncer'} stop by themselves, and the next ` +
      'start works',
    async () => {
      const s = await start('node', { DATA_DIR, ...(noPgBouncer ? {} : { PGBOUNCER: 'on' }) });
      assert.ok(s.leftovers().length >= 2);
      process.kill(s.node, 'SIGKILL');
      await s.exited;
      await nothingLeft(s);
      const again = await start('node', { DATA_DIR });
      assert.equal((await request(again.url, 'GET', '/todos/')).status, 200);
      process.kill(again.node, 'SIGTERM');
      assert.equal(await again.exited, 0);
      await nothingLeft(again);
      assert.ok(!alive(s.node));
    }
  );
});
