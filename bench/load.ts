// HTTP load for the throughput suites: wrk (Debian's, a C program: it takes little of the CPU
// the servers share), or autocannon when wrk is not installed. What the servers and PostgreSQL
// spend meanwhile is read from /proc (src/os/proc.ts).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
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
const wrkBin = [...(process.env.PATH ?? '').split(':'), '/usr/bin']
  .map((d) => join(d, 'wrk'))
  .find((f) => existsSync(f));

export const loadTool = wrkBin ? 'wrk -t2' : 'autocannon';

const ms = (text: string) => {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
};

/** `connections` keep-alive connections for `seconds` against `url`. */
export async function load (url: string, seconds: number, connections = 50): Promise<Load> {
  if (wrkBin) {
    // wrk takes whole seconds only (it refuses -d0.5s).
    const { stdout } = await promisify(execFile)(
      wrkBin,
      ['-t2', `-c${connections}`, `-d${Math.max(1, Math.ceil(seconds))}s`, '--latency', url],
      { maxBuffer: 1 << 20 }
    );
    const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? 0);
    const errors =
      num(/Non-2xx or 3xx responses: (\d+)/) +
      [...stdout.matchAll(/(connect|read|write|timeout) (\d+)/g)].reduce((a, m) => a + Number(m[2]), 0);
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
  return {
    tool: 'autocannon',
    requests: r.requests.total,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
  };
}
