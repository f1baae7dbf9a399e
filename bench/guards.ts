// Suite 14: what the unhappy path's guards cost on the happy path (issue 40). This service as it is
// (a deadline on every query, the reset check on every return, TCP keepalive, the health check,
// PostgreSQL's session guards) beside the same service built from the commit before them,
// side by side on one core (bench/side-by-side.ts), GET /todos/: each round gives one ratio of
// their CPU per request. The goal is at most 1.02.
//
// The older build comes from a git worktree of BENCH_BASELINE_REF (default: the commit before
// issue 40), with the current node_modules linked in (pg-queuepool excepted: it is the worktree's
// own), built with the current TypeScript and esbuild; removed afterwards.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { untilOutput, type ServerProcess } from '../src/harness/server-process.ts';
import { freePort } from '../src/os/net.ts';
import { stopProcess } from '../src/os/processes.ts';
import { median, ours, ratio, spreadOf, table, us, whole } from './lib.ts';
import { loadTool } from './load.ts';
import { cpuRatios, sideBySide } from './side-by-side.ts';

/** main before issue 40 (no reset on return, no deadlines, no health check, no session guards). */
const BEFORE_ISSUE_40 = '416ea98';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A build of `ref` in a temporary worktree; `remove()` deletes it. */
function buildOf (ref: string): { dir: string; remove(): void } {
  const dir = join(mkdtempSync(join(tmpdir(), 'anp-baseline-')), 'tree');
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, stdio: 'pipe' });
  git('worktree', 'add', '--detach', dir, ref);
  const remove = () => {
    try {
      git('worktree', 'remove', '--force', dir);
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const modules = join(dir, 'node_modules');
    mkdirSync(modules);
    for (const name of readdirSync(join(ROOT, 'node_modules'))) {
      if (name === 'pg-queuepool' || name === '.bin' || name.startsWith('.')) continue;
      symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
    }
    symlinkSync(join(dir, 'packages', 'pg-queuepool'), join(modules, 'pg-queuepool'));
    const require = createRequire(import.meta.url);
    const node = (script: string, ...args: string[]) =>
      execFileSync(process.execPath, [script, ...args], { cwd: dir, stdio: 'pipe' });
    const tsc = require.resolve('typescript/bin/tsc');
    node(tsc, '-p', 'packages/pg-queuepool/tsconfig.build.json');
    node(tsc, '-p', 'tsconfig.build.json');
    const vendor = readdirSync(join(dir, 'src', 'vendor'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `src/vendor/${f}`);
    node(
      require.resolve('esbuild/bin/esbuild'),
      ...vendor,
      '--bundle',
      '--format=esm',
      '--platform=node',
      '--target=node20',
      '--outdir=dist/vendor',
      '--log-level=warning'
    );
    if (!existsSync(join(dir, 'dist', 'cli.js'))) throw new Error(`the build of ${ref} has no dist/cli.js`);
    return { dir, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

/** The service built in `dir`, started as ours() starts the current one. */
async function serviceIn (dir: string, databaseUrl: string): Promise<ServerProcess> {
  const port = await freePort();
  const proc = spawn(process.execPath, [join(dir, 'dist', 'cli.js'), 'serve'], {
    cwd: dir,
    env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'error', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { match, output } = await untilOutput(
    proc,
    /Listening on (http:\/\/[^\s"]+)/,
    'the baseline service',
    60_000
  );
  return { url: match[1]!, proc, output, stop: (signal = 'SIGTERM') => stopProcess(proc, signal) };
}

export async function guardsSuite (ctx: {
  url: string;
  quick: boolean;
  smoke: boolean;
  print(text: string): void;
}): Promise<unknown> {
  const seconds = ctx.smoke ? 1 : ctx.quick ? 3 : 6;
  const warmup = ctx.smoke ? 1 : ctx.quick ? 1 : 3;
  const rounds = ctx.smoke ? 2 : ctx.quick ? 5 : 11;
  const connections = 25;
  const ref = process.env.BENCH_BASELINE_REF ?? BEFORE_ISSUE_40;
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const baseline = buildOf(ref);
  const names = ['this service, with the guards (the defaults)', `the service at ${commit}, before them`];
  let measured: Awaited<ReturnType<typeof sideBySide>>;
  try {
    const servers = await Promise.all([ours(ctx.url), serviceIn(baseline.dir, ctx.url)]);
    try {
      measured = await sideBySide(ctx.url, servers, '/todos/', { seconds, warmup, rounds, connections });
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  } finally {
    baseline.remove();
  }
  const { runs, pinned } = measured;
  const ratios = cpuRatios(runs, 0, 1);
  const extraUs = runs[0]!.map((r, i) => r.cpuUsPerRequest - runs[1]![i]!.cpuUsPerRequest);
  ctx.print(
    table(
      `Suite 14: the guards' cost on the happy path, GET /todos/, ${loadTool} -c${connections} against both services ` +
        `at once, ${rounds} rounds of ${seconds} s after ${warmup} s warm-up; median (min-max) of the rounds; CPU of ` +
        'every thread of each process',
      ['service', 'CPU / req', 'CPU loaded', 'req/s', 'p99', 'peak RSS', 'errors'],
      runs.map((rs, i) => [
        names[i]!,
        spreadOf(
          rs.map((r) => r.cpuUsPerRequest),
          us
        ),
        spreadOf(
          rs.map((r) => r.msPerSecond),
          (x) => `${Math.round(x)} ms/s`
        ),
        spreadOf(
          rs.map((r) => r.rps),
          whole
        ),
        `${median(rs.map((r) => r.p99)).toFixed(1)} ms`,
        `${Math.round(Math.max(...rs.map((r) => r.peakRssMb)))} MB`,
        rs.reduce((a, r) => a + r.errors, 0),
      ])
    )
  );
  ctx.print(
    `Judged: CPU per request, with the guards / before them, ${ratio(median(ratios))} (median of the rounds' ratios; ` +
      `min-max ${ratio(Math.min(...ratios))}-${ratio(Math.max(...ratios))}), ${median(extraUs).toFixed(1)} µs a ` +
      'request more; the goal is at most 1.02'
  );
  ctx.print(
    pinned
      ? 'The two services ran on the last core; PostgreSQL, the load and the bench on the others.'
      : 'Not pinned (taskset missing, or one core): the figures share the cores with the load.'
  );
  return {
    tool: loadTool,
    connections,
    seconds,
    warmup,
    rounds,
    pinned,
    baseline: commit,
    runs: names.map((name, i) => ({ name, runs: runs[i] })),
    ratios,
    cpuRatio: median(ratios),
  };
}
