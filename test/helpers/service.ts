// The built service and CLI as processes (what needs signals, workers or the embedded server's
// lifecycle): each killed after the file at the latest, withService() stopping it whatever happens.
import { spawn } from 'node:child_process';
import {
  runCliToEnd,
  runToEnd,
  startServerProcess,
  type Finished,
  type ServerProcess,
} from '../../src/harness/server-process.ts';
import { ROOT, trackChild } from './cleanup.ts';

export { alive } from '../../src/os/processes.ts';

export type Service = ServerProcess;

/** Starts the built service (`node dist/cli.js serve`) on a free port; killed after the file at the latest. */
export function startService (env: Record<string, string | undefined>, args: string[] = []): Promise<Service> {
  return startServerProcess(env, { args, onSpawn: trackChild });
}

/**
 * Starts the built service, runs `fn` against it, then stops it with SIGTERM. Unless `fn`
 * failed, the service must exit 0: every test also checks that the shutdown is clean.
 */
export async function withService<T> (
  env: Record<string, string | undefined>,
  fn: (service: Service) => Promise<T>
): Promise<T> {
  const service = await startService(env);
  let result: T;
  try {
    result = await fn(service);
  } catch (err) {
    await service.stop('SIGKILL');
    throw err;
  }
  const code = await service.stop('SIGTERM');
  if (code !== 0) throw new Error(`the service exited with code ${code} on SIGTERM:\n${service.output()}`);
  return result;
}

export type CliResult = Finished;

/** Runs the built CLI to its end. */
export function runCli (
  args: string[],
  env: Record<string, string | undefined> = {},
  cwd = ROOT
): Promise<CliResult> {
  return runCliToEnd(args, env, { cwd, onSpawn: trackChild });
}

/** Runs a TypeScript script of the repository (node --import tsx) to its end. */
export function runScript (args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(proc);
  return runToEnd(proc);
}
