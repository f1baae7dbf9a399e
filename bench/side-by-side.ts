// Servers measured side by side. In each round every server takes the same load at the same
// moment, all of them pinned to one core (PostgreSQL, the load and the bench to the others), so
// that whatever else the machine does meanwhile hits them alike, and each round gives one ratio
// per pair of servers that saw the same machine. Taken in turns instead, one server's rounds
// moved by 0.99-1.27 here (suite 8): more than most differences worth judging.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { ServerProcess } from '../src/harness/server-process.ts';
import { tree } from '../src/os/proc.ts';
import { findProgram } from '../src/os/processes.ts';
import { postmasterPid, rssSampler, threadsCpuMs } from './lib.ts';
import { load } from './load.ts';

// Read once, before any pinning: availableParallelism() counts the cores this process may use, so
// read after pinApart it says 1, and unpinning to it would leave everything on core 0.
const cores = availableParallelism();

export interface SideRun {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  /** Every thread of the process (schedstat), per request served. */
  cpuUsPerRequest: number;
  peakRssMb: number;
  /** Every thread's CPU over the round, per second. */
  msPerSecond: number;
}

export interface SideBySideOptions {
  seconds: number;
  warmup: number;
  rounds: number;
  /** Keep-alive connections of each server's load. */
  connections: number;
  /** Once the servers are pinned and settled, before any load (an idle reading). */
  settled?: (pids: number[]) => Promise<void>;
  /** Called as each round starts; what it returns is called as the round ends (a reading across the round). */
  round?: (pids: number[]) => () => void;
}

/** `rounds` rounds of `seconds` of GET `path` against every server at once; runs[i] are server i's rounds. */
export async function sideBySide (
  url: string,
  servers: ServerProcess[],
  path: string,
  o: SideBySideOptions
): Promise<{ runs: SideRun[][]; pinned: boolean }> {
  const pids = servers.map((s) => s.proc.pid!);
  const runs: SideRun[][] = servers.map(() => []);
  const pgPid = postmasterPid(url);
  const pinned = pinApart(pids, pgPid);
  try {
    await new Promise((resolve) => setTimeout(resolve, 2000)); // settled after start
    await o.settled?.(pids);
    await Promise.all(servers.map((s) => load(`${s.url}${path}`, o.warmup, o.connections)));
    for (let round = 0; round < o.rounds; round++) {
      const rss = pids.map((pid) => rssSampler(pid));
      const cpu0 = pids.map(threadsCpuMs);
      const ended = o.round?.(pids);
      const loads = await Promise.all(servers.map((s) => load(`${s.url}${path}`, o.seconds, o.connections)));
      const cpu = pids.map((pid, i) => threadsCpuMs(pid) - cpu0[i]!);
      ended?.();
      loads.forEach((r, i) =>
        runs[i]!.push({
          rps: r.rps,
          p50: r.p50,
          p99: r.p99,
          errors: r.errors,
          requests: r.requests,
          cpuUsPerRequest: (cpu[i]! * 1000) / Math.max(1, r.requests),
          peakRssMb: rss[i]!.stop(),
          msPerSecond: cpu[i]! / o.seconds,
        })
      );
    }
  } finally {
    if (pinned) unpin([...(pgPid ? tree(pgPid) : []), process.pid]);
  }
  return { runs, pinned };
}

/** Every core again, for the suites after this one. */
export function unpin (pids: (number | undefined)[]): void {
  const all = `0-${cores - 1}`;
  for (const pid of pids) if (pid) setCores(pid, all);
}

/** A process that has exited meanwhile (a backend that closed) is no failure. */
function setCores (pid: number, list: string): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: 'ignore' });
  } catch (err) {
    if (existsSync(`/proc/${pid}`)) throw err;
  }
}

/**
 * Servers on the last core; PostgreSQL (the postmaster, whose new backends inherit it, and the backends already open)
 * and this process (wrk inherits) on the others.
 */
export function pinApart (servers: number[], postgres: number | undefined): boolean {
  if (!findProgram('taskset', ['--version']) || cores < 2) return false;
  const last = String(cores - 1);
  const rest = cores === 2 ? '0' : `0-${cores - 2}`;
  try {
    for (const pid of servers) setCores(pid, last);
    for (const pid of [...(postgres ? tree(postgres) : []), process.pid]) setCores(pid, rest);
    return true;
  } catch {
    return false;
  }
}

/** The rounds' ratios of server a's CPU per request to server b's. */
export const cpuRatios = (runs: SideRun[][], a: number, b: number) =>
  runs[a]!.map((r, i) => r.cpuUsPerRequest / runs[b]![i]!.cpuUsPerRequest);
