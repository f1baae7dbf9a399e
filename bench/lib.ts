// Benchmark helpers: the machine line, servers to measure, memory sampling, tables.
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { execFileSync, spawn } from 'node:child_process';
import { startServerProcess, untilOutput, type ServerProcess } from '../src/harness/server-process.ts';
import { freePort } from '../src/os/net.ts';
import { findProgram, stopProcess } from '../src/os/processes.ts';

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  postgres: string;
  host: string;
}

export async function machine (url: string): Promise<Machine> {
  const cpu =
    /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  await client.end();
  return { cpu: cpu.trim(), cores: cpus().length, node: process.version, postgres: rows[0]!.v, host: hostname() };
}

export const machineLine = (m: Machine) =>
  `machine: ${m.cpu} x ${m.cores} cores, Node ${m.node}, PostgreSQL ${m.postgres}`;

/** Runs `fn` against a server that `start` gives, and stops the server whatever happens. */
export async function using<T> (
  start: Promise<ServerProcess>,
  fn: (server: ServerProcess) => Promise<T>
): Promise<T> {
  const server = await start;
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}

/** Our service, in its own process. */
export function ours (
  databaseUrl: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = []
): Promise<ServerProcess> {
  return startServerProcess({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'error', ...env }, { nodeArgs });
}

const BARE = fileURLToPath(new URL('./baselines/bare.mjs', import.meta.url));

/** Baseline (a): node:http + pg, in its own process (`env`: BARE_BODY, BASELINE_POOL; see bare.mjs). */
export async function bare (
  databaseUrl: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = []
): Promise<ServerProcess> {
  const port = await freePort();
  const proc = spawn(process.execPath, [...nodeArgs, BARE], {
    env: { ...process.env, ...env, DATABASE_URL: databaseUrl, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { output } = await untilOutput(proc, /Listening on/, 'baseline', 60_000);
  return { url: `http://127.0.0.1:${port}`, proc, output, stop: (s = 'SIGTERM') => stopProcess(proc, s) };
}

/** Samples a process's resident memory every 100 ms; `stop()` returns the peak in MB. */
export function rssSampler (pid: number): { stop(): number } {
  const read = () => {
    try {
      return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    } catch {
      return 0;
    }
  };
  let peak = read();
  const timer = setInterval(() => {
    peak = Math.max(peak, read());
  }, 100);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, read());
    },
  };
}

export function table (title: string, head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    `\n${title}`,
    line(head),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.slice(1).map(line),
  ].join('\n');
}

/** The middle of the rounds (the upper middle of an even count). */
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** "median (min-max)" of a figure over the rounds, each written by `fmt`. */
export const spreadOf = (xs: number[], fmt: (x: number) => string) =>
  `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})`;

export const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
export const us = (x: number) => `${x.toFixed(1)} µs`;
export const whole = (x: number) => String(Math.round(x));
export const ratio = (x: number) => x.toFixed(3);

/**
 * CPU time (user + system) a process has used so far, in ms (Linux /proc); with `mainThread`, its main thread's alone.
 */
export function cpuMs (pid: number, mainThread = false): number {
  const fields = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
    .split(') ')[1]!
    .split(' ');
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * One thread's CPU time so far, ms, to the nanosecond (schedstat, where /proc/PID/stat counts 10 ms ticks); 0 if it
 * ended.
 */
function schedstatMs (pid: number, tid: number | string): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return 0; // the thread ended
  }
}

/** CPU time of every thread of a process, ms. */
export function threadsCpuMs (pid: number): number {
  return readdirSync(`/proc/${pid}/task`).reduce((ms, tid) => ms + schedstatMs(pid, tid), 0);
}

/** CPU time of a process's main thread, ms. */
export const mainThreadCpuMs = (pid: number) => schedstatMs(pid, pid);

/** CPU time of a process's threads named `name` (their comm), ms; 0 if none is. */
export function namedThreadsCpuMs (pid: number, name: string): number {
  return readdirSync(`/proc/${pid}/task`).reduce((ms, tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === name
        ? ms + schedstatMs(pid, tid)
        : ms;
    } catch {
      return ms;
    }
  }, 0);
}

const FASTIFY = fileURLToPath(new URL('./baselines/fastify.mjs', import.meta.url));
const ORIGINAL = fileURLToPath(new URL('./baselines/original/', import.meta.url));

/** Baseline (c): plain Fastify + pg, in its own process. */
export async function plainFastify (
  databaseUrl: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = []
): Promise<ServerProcess> {
  const port = await freePort();
  const proc = spawn(process.execPath, [...nodeArgs, FASTIFY], {
    env: { ...process.env, ...env, DATABASE_URL: databaseUrl, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { output } = await untilOutput(proc, /Listening on/, 'plain Fastify', 60_000);
  return { url: `http://127.0.0.1:${port}`, proc, output, stop: (s = 'SIGTERM') => stopProcess(proc, s) };
}

/** Why the original cannot run here, or undefined: it needs Debian's Python packages. */
export function originalMissing (): string | undefined {
  if (!findProgram('gunicorn', ['--version'])) return 'gunicorn is not installed';
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import flask, flask_sqlalchemy, gevent, psycogreen, psycopg2'], {
      stdio: 'ignore',
    });
    return undefined;
  } catch {
    return 'its Python packages are not installed';
  }
}

export const ORIGINAL_PACKAGES =
  'python3-flask python3-flask-sqlalchemy python3-gevent python3-psycogreen gunicorn python3-psycopg2';

/** Baseline (d): the original, Flask + Flask-SQLAlchemy under gunicorn's gevent worker with psycogreen. */
export async function original (databaseUrl: string): Promise<ServerProcess> {
  const port = await freePort();
  const proc = spawn(
    findProgram('gunicorn', ['--version'])!,
    ['-k', 'gevent', '-w', '1', '-b', `127.0.0.1:${port}`, 'server:app'],
    {
      cwd: ORIGINAL,
      env: { ...process.env, DATABASE_URL: databaseUrl, PSYCOGREEN: 'true', PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }
  );
  const { output } = await untilOutput(proc, /Booting worker/, 'the original (gunicorn)', 60_000);
  // The worker imports Flask and connects lazily: one request makes it ready.
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/todos/`)).ok) break;
    } catch {
      /* not yet */
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url: `http://127.0.0.1:${port}`, proc, output, stop: (s = 'SIGTERM') => stopProcess(proc, s) };
}

/** PostgreSQL's postmaster: its backends' CPU is PostgreSQL's share of each request. */
export function postmasterPid (url: string): number | undefined {
  const port = new URL(url).port;
  for (const entry of readdirSync('/proc')) {
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('/postgres') && cmd.includes('-p') && cmd[cmd.indexOf('-p') + 1] === port) {
        return Number(entry);
      }
    } catch {
      /* gone */
    }
  }
  return undefined;
}
