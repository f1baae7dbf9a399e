// Runs the built service as a user does (`node dist/cli.js serve`), as a child process, for the
// demo, the benchmarks and the tests; resolves once it listens. The service never imports this.
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { SETTINGS } from '../config.ts';
import { stopProcess } from '../os/processes.ts';
import { onInterrupt } from '../os/signals.ts';
import { builtFile } from '../paths.ts';

export const CLI = builtFile('cli.js');

/** Settings a parent's environment must not leak into a child server. */
const SETTINGS_ENV = Object.values(SETTINGS).map((s) => s.env);

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  output(): string;
  /** Sends `signal` (SIGTERM by default), waits for the exit and returns its code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Anything the demo or a signal handler must stop: servers, databases. */
export interface Stoppable {
  stop(): Promise<unknown>;
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment for a child CLI: ours without our settings (they must not leak into it), then `env`. */
export function cliEnv (env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const key of SETTINGS_ENV) delete base[key];
  return { ...base, LOG_LEVEL: 'warn', ...env };
}

/** Runs a program through another: `ip netns exec NAME`, `setpriv --pdeathsig`. Returns the command to spawn. */
export type Launcher = (program: string, args: string[]) => [string, string[]];

/** The built CLI as a child with piped output; the parent's settings do not leak into it. */
export function spawnCli (
  args: string[],
  env: Record<string, string | undefined> = {},
  cwd?: string,
  nodeArgs: string[] = [],
  launcher: Launcher = (program, programArgs) => [program, programArgs]
): ChildProcess {
  const [program, programArgs] = launcher(process.execPath, [...nodeArgs, CLI, ...args]);
  return spawn(program, programArgs, {
    cwd,
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Collects a child's output until it exits (stopped after `timeoutMs`, when given). */
export async function runToEnd (proc: ChildProcess, timeoutMs?: number): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => {
    stdout += d;
  });
  proc.stderr!.on('data', (d) => {
    stderr += d;
  });
  // 'close', not 'exit': the child may have exited with output still in the pipe.
  const exited = new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
  const timer = timeoutMs ? setTimeout(() => stopProcess(proc, 'SIGTERM', 10_000), timeoutMs) : undefined;
  const code = await exited;
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Runs a CLI command to its end and collects its output. */
export function runCliToEnd (
  args: string[],
  env: Record<string, string | undefined> = {},
  options: { cwd?: string; onSpawn?: (proc: ChildProcess) => void; timeoutMs?: number } = {}
): Promise<Finished> {
  const proc = spawnCli(args, env, options.cwd);
  options.onSpawn?.(proc);
  return runToEnd(proc, options.timeoutMs);
}

/**
 * Resolves once the child's output (stdout and stderr) matches `marker`, with the match and a
 * function that returns all output so far. Rejects, with that output, when the child exits
 * first or the marker takes longer than `timeoutMs` (the child is then killed).
 */
export async function untilOutput (
  proc: ChildProcess,
  marker: RegExp,
  what: string,
  timeoutMs: number
): Promise<{ match: RegExpExecArray; output: () => string }> {
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = marker.exec(out);
    if (match) return { match, output: () => out };
    if (proc.exitCode !== null) throw new Error(`${what} exited with code ${proc.exitCode}:\n${out.trim()}`);
    if (Date.now() > deadline) {
      await stopProcess(proc, 'SIGKILL');
      throw new Error(`${what} did not start in time:\n${out.trim()}`);
    }
    await delay(25);
  }
}

/** Starts `serve` (on a port the system picks, unless PORT is set) and resolves once it listens. */
export async function startServerProcess (
  env: Record<string, string | undefined>,
  options: {
    args?: string[];
    cwd?: string;
    onSpawn?: (proc: ChildProcess) => void;
    timeoutMs?: number;
    nodeArgs?: string[];
    launcher?: Launcher;
    /** Who it is, in an error: `server` unless given. */
    name?: string;
  } = {}
): Promise<ServerProcess> {
  const proc = spawnCli(
    ['serve', ...(options.args ?? [])],
    { PORT: '0', ...env },
    options.cwd,
    options.nodeArgs,
    options.launcher
  );
  options.onSpawn?.(proc);
  const { match, output } = await untilOutput(
    proc,
    /Listening on (http:\/\/[^\s"]+)/,
    options.name ?? 'server',
    options.timeoutMs ?? 60_000
  );
  return { url: match[1]!, proc, output, stop: (signal = 'SIGTERM') => stopProcess(proc, signal) };
}

/**
 * Ctrl-C for the commands that start servers (the demo, the sizing lab): stop what `running`
 * holds, newest first, and exit 130; a second Ctrl-C exits at once. Returns the unsubscriber.
 */
export function stopAllOnInterrupt (running: Set<Stoppable>, out: (line: string) => void): () => void {
  return onInterrupt(
    async () => {
      out('\nInterrupted: stopping the service and PostgreSQL (Ctrl-C again to quit now)...');
      for (const r of [...running].reverse()) await r.stop();
      process.exit(130);
    },
    () => process.exit(130)
  );
}

/**
 * Starts `serve`, runs `fn` against it, and stops it whatever happens. While it runs, the
 * server is in `running` (when given), for whoever must stop everything on a signal.
 */
export async function withServerProcess<T> (
  env: Record<string, string | undefined>,
  fn: (server: ServerProcess) => Promise<T>,
  options: { running?: Set<Stoppable>; timeoutMs?: number } = {}
): Promise<T> {
  const server = await startServerProcess(env, { timeoutMs: options.timeoutMs });
  options.running?.add(server);
  try {
    return await fn(server);
  } finally {
    await server.stop();
    options.running?.delete(server);
  }
}

/** A block the service's detector named, as its warn log line records it (src/app/plugins/live.ts). */
export interface LoggedBlock {
  pid: number;
  msg: string;
  blockedMs: number;
  route: string | null;
  culprit?: string;
  frames: string[];
  /** The share of the stall the main thread spent on a CPU (0-1); absent outside Linux. */
  cpuShare?: number;
  /** The share it was ready to run but waited for a CPU (a busy machine). */
  runnableShare?: number;
}

/** Every block named in a service's JSON log output so far, oldest first. */
export function blocksLogged (output: string): LoggedBlock[] {
  return output
    .split('\n')
    .filter((l) => l.includes('"blockedMs"'))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as LoggedBlock);
}

/** A leaked connection the service reported, as its warn log line records it (src/app/plugins/leaks.ts). */
export interface LoggedLeak {
  pid: number;
  level: number;
  msg: string;
  heldMs: number;
  route: string | null;
  culprit?: string;
  frames?: string[];
}

/** Every leak reported in a service's JSON log output so far (held: warn; given back: info), oldest first. */
export function leaksLogged (output: string): LoggedLeak[] {
  return output
    .split('\n')
    .filter((l) => l.includes('"heldMs"'))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as LoggedLeak);
}
