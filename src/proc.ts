import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * The path to run a program by, or undefined when it is not installed: `name` on PATH, then
 * Debian's /usr/sbin (where pgbouncer, haproxy and nginx live, not on a non-root user's PATH).
 * `args` must make it exit 0 without side effects (a version flag).
 */
export function findProgram(name: string, args: string[]): string | undefined {
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
export function alive(pid: number | undefined): boolean {
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
