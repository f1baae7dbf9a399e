// What a process tree spends, read from Linux's /proc: CPU time and memory. For the benchmarks,
// the demo's claims and the pool-sizing lab, which watch PostgreSQL and the servers from outside.
import { readdirSync, readFileSync } from 'node:fs';

const statFields = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');

/** A process and its descendants (gunicorn's master and worker; PostgreSQL's backends). */
export function tree (root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!pid) continue;
    try {
      const ppid = Number(statFields(pid)[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** The parent of `pid`, or undefined when it is gone. */
export function parentOf (pid: number): number | undefined {
  try {
    return Number(statFields(pid)[1]);
  } catch {
    return undefined;
  }
}

/** The program name of `pid` (/proc/PID/comm), or undefined when it is gone. */
export function commandOf (pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system, ms) used so far by a process and its descendants, those that exited
 * too (PostgreSQL's backends come and go: their time is added to the postmaster's when it reaps them).
 */
export function treeCpuMs (root: number): number {
  let total = 0;
  for (const pid of tree(root)) {
    try {
      const fields = statFields(pid);
      // utime, stime, and for the root cutime, cstime (its reaped children), in 100 Hz ticks
      total +=
        (Number(fields[11]) + Number(fields[12]) + (pid === root ? Number(fields[13]) + Number(fields[14]) : 0)) *
        10;
    } catch {
      /* gone */
    }
  }
  return total;
}

/** Resident memory of a process and its descendants, MB. */
export function treeRssMb (root: number): number {
  let kb = 0;
  for (const pid of tree(root)) {
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return kb / 1024;
}

/** Samples treeRssMb every 100 ms; stop() gives the peak. */
export function peakRss (root: number): { stop(): number } {
  let peak = treeRssMb(root);
  const timer = setInterval(() => {
    peak = Math.max(peak, treeRssMb(root));
  }, 100);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, treeRssMb(root));
    },
  };
}

export interface Memory {
  /** Unique set size: pages no other process maps (private clean + private dirty), MB. */
  uss: number;
  /** Proportional set size: private pages, plus each shared page divided by its sharers, MB. */
  pss: number;
  rss: number;
}

/**
 * A process's memory from /proc/PID/smaps_rollup. RSS counts PostgreSQL's shared buffers again
 * in every backend that touched them; USS is what the backend alone costs, PSS its fair share.
 * Throws when the file cannot be read (another user's process, without privileges).
 */
export function memoryOf (pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { uss: (kb('Private_Clean') + kb('Private_Dirty')) / 1024, pss: kb('Pss') / 1024, rss: kb('Rss') / 1024 };
}
