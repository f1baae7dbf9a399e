// Proven outside any one service: a plain node:http server, an Express app and a Fastify app under
// node:cluster, each a process of its own running the packed package, each block named by its
// function, its TypeScript file and line (through the build's source maps) and its request.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { pbkdf2Sync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Block } from '../../dist/index.js';
import { pack } from '../packed.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));

/** The 1-based line of a fixture that holds the loop (marked `// BLOCKS HERE`). */
function blockingLine (fixture: string): number {
  const lines = readFileSync(join(FIXTURES, `${fixture}.ts`), 'utf8').split('\n');
  return lines.findIndex((l) => l.includes('// BLOCKS HERE')) + 1;
}

interface App {
  proc: ChildProcess;
  port: number;
  pids: Set<number>;
  blocks: Block[];
  output: string[];
}

/** Starts a built fixture in the packed application's folder; resolves once `workers` processes listen. */
async function start (fixture: string, workers = 1): Promise<App> {
  const { dir } = pack();
  const proc = spawn(process.execPath, [join(dir, 'dist', `${fixture}.js`)], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const app: App = { proc, port: 0, pids: new Set(), blocks: [], output: [] };
  proc.stderr!.on('data', (d: Buffer) => app.output.push(d.toString()));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    app.output.push(line);
    try {
      const msg = JSON.parse(line) as { port?: number; pid?: number; block?: Block };
      if (msg.port) {
        app.port = msg.port;
        app.pids.add(msg.pid ?? proc.pid!);
      }
      if (msg.block) app.blocks.push(msg.block);
    } catch {
      /* not one of the fixture's lines */
    }
  });
  await until(() => app.pids.size >= workers, `${fixture} listening`, app);
  return app;
}

async function stop (app: App): Promise<void> {
  if (app.proc.exitCode !== null || app.proc.signalCode !== null) return;
  const exited = new Promise((resolve) => app.proc.once('exit', resolve));
  app.proc.kill('SIGTERM');
  await Promise.race([exited, delay(5000)]);
  if (app.proc.exitCode === null && app.proc.signalCode === null) app.proc.kill('SIGKILL');
}

async function until (what: () => boolean, label: string, app: App, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end || app.proc.exitCode !== null) {
      throw new Error(`timed out waiting for ${label}; output:\n${app.output.join('\n')}`);
    }
    await delay(25);
  }
}

/** Work on the CPU: the thread on a CPU or ready for one (a busy machine) most of the stall. */
function assertCpu (block: Block): void {
  if (block.cpuShare === undefined) return;
  const wanted = block.cpuShare + block.runnableShare!;
  assert.ok(wanted > 0.7, `on a CPU ${block.cpuShare}, waiting for one ${block.runnableShare}`);
}

/** A GET on a new connection (so that node:cluster hands each to the next worker). */
async function get (app: App, path: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${app.port}${path}`, { headers: { connection: 'close' } });
}

describe('outside any one service, from the packed package', () => {
  test('the tarball holds the build, its types, the README, the changelog and the licence', () => {
    const { files } = pack();
    assert.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), files.join(', '));
    assert.ok(files.includes('dist/watcher.js') && files.includes('dist/fastify.d.ts'), files.join(', '));
    for (const f of ['README.md', 'CHANGELOG.md', 'LICENSE', 'package.json']) assert.ok(files.includes(f), f);
    const expected = /^(dist\/[\w-]+\.(js|d\.ts)|README\.md|CHANGELOG\.md|LICENSE|package\.json)$/;
    assert.deepEqual(files.filter((f) => !expected.test(f)), []);
  });

  test('node:http: the culprit, its TypeScript line and the request are named', { timeout: 60_000 }, async (t) => {
    const app = await start('http-server');
    t.after(() => stop(app));
    assert.equal((await get(app, '/report?ms=400')).status, 200);
    await until(() => app.blocks.length > 0, 'the block', app);
    const [block] = app.blocks;
    assert.deepEqual(
      { ...block!.culprit, column: undefined },
      { fn: 'buildReport', file: 'src/http-server.ts', line: blockingLine('http-server'), column: undefined },
      JSON.stringify(block)
    );
    assert.deepEqual(block!.context, { method: 'GET', url: '/report?ms=400' });
    assert.ok(block!.ms >= 300, `${block!.ms} ms`);
    assertCpu(block!);
    // A request that does not block is never named.
    assert.equal((await get(app, '/')).status, 200);
    await delay(300);
    assert.equal(app.blocks.length, 1, JSON.stringify(app.blocks));
  });

  test('Express: the handler, its line, the method, URL and route pattern', { timeout: 60_000 }, async (t) => {
    const app = await start('express-app');
    t.after(() => stop(app));
    // Rounds for about 400 ms on this machine and this Node (OpenSSL 3 in Node 22 hashes twice as fast as 20).
    const t0 = performance.now();
    pbkdf2Sync('42', 'salt', 20_000, 32, 'sha256');
    const rounds = Math.round((20_000 * 400) / (performance.now() - t0));
    const res = await get(app, `/users/42/export?rounds=${rounds}`);
    assert.equal(res.status, 200, await res.text());
    await until(() => app.blocks.length > 0, 'the block', app);
    const [block] = app.blocks;
    assert.equal(block!.culprit?.file, 'src/express-app.ts', JSON.stringify(block));
    assert.equal(block!.culprit?.line, blockingLine('express-app'), JSON.stringify(block));
    assert.deepEqual(block!.context, {
      method: 'GET',
      url: `/users/42/export?rounds=${rounds}`,
      route: '/users/:id/export',
    });
    assertCpu(block!);
  });

  test('Fastify under node:cluster: each of two workers names its own blocks', { timeout: 60_000 }, async (t) => {
    const app = await start('fastify-cluster', 2);
    t.after(() => stop(app));
    const served = new Set<number>();
    for (let i = 0; i < 8 && served.size < 2; i++) {
      const res = await get(app, `/orders/${i}/total?ms=250`);
      assert.equal(res.status, 200);
      served.add(((await res.json()) as { worker: number }).worker);
    }
    assert.equal(served.size, 2, 'both workers served');
    await until(() => new Set(app.blocks.map((b) => b.pid)).size === 2, 'blocks from both workers', app);
    for (const pid of served) {
      const block = app.blocks.find((b) => b.pid === pid)!;
      assert.equal(block.culprit?.file, 'src/fastify-cluster.ts', JSON.stringify(block));
      assert.equal(block.culprit?.line, blockingLine('fastify-cluster'));
      assert.equal((block.context as { route: string }).route, '/orders/:id/total');
      // The adapter's own wrapper is left out of the stack.
      assert.deepEqual(block.frames.filter((f) => f.file.includes('event-loop-block-detector')), []);
      assert.match((block.context as { url: string }).url, /^\/orders\/\d\/total\?ms=250$/);
    }
  });
});
