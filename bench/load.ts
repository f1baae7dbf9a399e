// HTTP load for the throughput suites: wrk (Debian's, a C program: it takes little of the CPU
// the servers share), or autocannon when wrk is not installed. And what the servers and
// PostgreSQL spend meanwhile, read from /proc: CPU per request, peak memory.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';

export interface Load {
  tool: 'wrk' | 'autocannon';
  requests: number;
  rps: number;
  /** Milliseconds. */
  p50: number;
  p99: number;
  errors: number;
}

// wrk exits 1 for --version as for its usage: look for it on PATH instead of running it.
const wrkBin = [...(process.env.PATH ?? '').split(':'), '/usr/bin'].map((d) => join(d, 'wrk')).find((f) => existsSync(f));

export const loadTool = wrkBin ? 'wrk -t2' : 'autocannon';

const ms = (text: string) => {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
};

/** `connections` keep-alive connections for `seconds` against `url`. */
export async function load (url: string, seconds: number, connections = 50): Promise<Load> {
  if (wrkBin) {
    const { stdout } = await promisify(execFile)(wrkBin, ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', url], { maxBuffer: 1 << 20 });
    const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? 0);
    const errors = num(/Non-2xx or 3xx responses: (\d+)/) + [...stdout.matchAll(/(connect|read|write|timeout) (\d+)/g)].reduce((a, m) => a + Number(m[2]), 0);
    return {
      tool: 'wrk',
      requests: num(/(\d+) requests in/),
      rps: num(/Requests\/sec:\s+([\d.]+)/),
      p50: ms(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? ''),
      p99: ms(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? ''),
      errors,
    };
  }
  const r = await autocannon({ url, connections, duration: seconds });
  return { tool: 'autocannon', requests: r.requests.total, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

/** A process and its descendants (gunicorn's master and worker; PostgreSQL's backends). */
function tree (root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!pid) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const walk = (pid: number) => { out.push(pid); for (const c of children.get(pid) ?? []) walk(c); };
  walk(root);
  return out;
}

/**
 * CPU time (user + system, ms) used so far by a process and its descendants, those that exited
 * too (PostgreSQL's backends come and go: their time is added to the postmaster's when it reaps them).
 */
export function treeCpuMs (root: number): number {
  let total = 0;
  for (const pid of tree(root)) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      // utime, stime, and for the root cutime, cstime (its reaped children), in 100 Hz ticks
      total += (Number(fields[11]) + Number(fields[12]) + (pid === root ? Number(fields[13]) + Number(fields[14]) : 0)) * 10;
    } catch { /* gone */ }
  }
  return total;
}

/** Resident memory of a process and its descendants, MB. */
export function treeRssMb (root: number): number {
  let kb = 0;
  for (const pid of tree(root)) {
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch { /* gone */ }
  }
  return kb / 1024;
}

/** Samples treeRssMb every 100 ms; stop() gives the peak. */
export function peakRss (root: number): { stop(): number } {
  let peak = treeRssMb(root);
  const timer = setInterval(() => { peak = Math.max(peak, treeRssMb(root)); }, 100);
  return { stop: () => { clearInterval(timer); return Math.max(peak, treeRssMb(root)); } };
}
