// Processes we start and stop: servers (PostgreSQL, PgBouncer) and, in the harness, the service.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * The path to run a program by, or undefined when it is not installed: `name` on PATH, then
 * Debian's /usr/sbin (where pgbouncer, haproxy and nginx live, not on a non-root user's PATH).
 * `args` must make it exit 0 without side effects (a version flag).
 */
export function findProgram (name: string, args: string[]): string | undefined {
  const candidates = name.includes('/') ? [name] : [name, `/usr/sbin/${name}`];
  for (const candidate of candidates) {
    try {
      execFileSync(candidate, args, { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next
    }
  }
  return undefined;
}

/** True while `pid` runs. A zombie (exited, never reaped by its parent) is not running. */
export function alive (pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (macOS)
  }
}

/** Sends `signal`, waits for the exit (SIGKILL after `forceAfterMs`) and returns the exit code. */
export async function stopProcess (
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  forceAfterMs = 40_000
): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), forceAfterMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/**
 * The command that runs `program` so that it receives `signal` when we die, even by SIGKILL
 * (util-linux's setpriv --pdeathsig). Without setpriv (not Linux), the program as it is.
 */
export function tiedToUs (program: string, args: string[], signal: 'INT' | 'TERM'): [string, string[]] {
  return setpriv() ? ['setpriv', ['--pdeathsig', signal, '--', program, ...args]] : [program, args];
}

let hasSetpriv: boolean | undefined;
const setpriv = () => (hasSetpriv ??= findProgram('setpriv', ['--version']) !== undefined);
