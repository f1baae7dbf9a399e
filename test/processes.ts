// Finding the processes a test started, through /proc (Linux).
import { readdirSync, readFileSync } from 'node:fs';
import { alive } from '../src/os/processes.ts';

/** Every running process whose environment holds `KEY=value` (a marker its ancestor was started with). */
export function processesMarked (key: string, value: string): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!pid || pid === process.pid || !alive(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`${key}=${value}`)) continue;
      found.push({ pid, cmd: readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').trim() });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** The PIDs whose parent is `pid`. */
export function childrenOf (pid: number): number[] {
  return readdirSync('/proc')
    .map(Number)
    .filter((p) => {
      try {
        return p > 0 && Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === pid;
      } catch {
        return false;
      }
    });
}
