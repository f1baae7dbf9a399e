// Suite 12: GET /todos/ at one fixed rate for every server (an open loop: requests leave on a
// schedule whether or not the earlier ones came back). Under closed-loop load (wrk) a server
// that answers sooner is asked again sooner, so how busy its clients and the kernel are differs
// from one server to the next, and with it what a socket write costs (most of each server's CPU
// is loopback TCP, suite 9). At one rate, below every server's ceiling, each does the same work
// at the same pace: its CPU per request compares the code alone.
import type { ServerProcess } from '../src/harness/server-process.ts';
import { openLoop } from '../src/client/open-loop.ts';
import { treeCpuMs } from '../src/os/proc.ts';
import { bare, median, ours, plainFastify, postmasterPid, spreadOf as spread, table, us, whole } from './lib.ts';

interface Round {
  ok: number;
  errors: number;
  achievedRate: number;
  p50: number;
  p99: number;
  p999: number;
  cpuUsPerRequest: number;
  pgUsPerRequest?: number;
}

export async function rateSuite (ctx: {
  url: string;
  quick: boolean;
  smoke: boolean;
  print(text: string): void;
}): Promise<unknown> {
  const rate = ctx.smoke ? 200 : 1500;
  const seconds = ctx.smoke ? 1 : ctx.quick ? 4 : 8;
  const rounds = ctx.smoke ? 1 : ctx.quick ? 3 : 7;
  const pinnedPool = { BASELINE_POOL: 'pinned' };
  const contenders: [string, () => Promise<ServerProcess>][] = [
    ['this service, every feature on', () => ours(ctx.url, { POOL_SIZE: '15', POOL_MAX_OVERFLOW: '0' })],
    ['(a2) bare node:http + pg, json_agg', () => bare(ctx.url, { ...pinnedPool, BARE_BODY: 'json_agg' })],
    ['(c) plain Fastify + pg + response schema', () => plainFastify(ctx.url, pinnedPool)],
  ];
  const servers = await Promise.all(contenders.map(([, start]) => start()));
  const pgPid = postmasterPid(ctx.url);
  const runs: Round[][] = contenders.map(() => []);
  const at = (i: number, s: number) =>
    openLoop({ url: `${servers[i]!.url}/todos/`, rate, seconds: s, connections: 64, timeoutMs: 10_000 });
  try {
    for (let i = 0; i < servers.length; i++) await at(i, 1); // warm
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < servers.length; k++) {
        const i = (round + k) % servers.length;
        const pid = servers[i]!.proc.pid!;
        const cpu0 = treeCpuMs(pid);
        const pg0 = pgPid ? treeCpuMs(pgPid) : 0;
        const r = await at(i, seconds);
        const per = (ms: number) => (ms * 1000) / Math.max(1, r.ok);
        runs[i]!.push({
          ok: r.ok,
          errors: r.errors,
          achievedRate: r.achievedRate,
          p50: r.corrected.p50,
          p99: r.corrected.p99,
          p999: r.corrected.p999,
          cpuUsPerRequest: per(treeCpuMs(pid) - cpu0),
          pgUsPerRequest: pgPid ? per(treeCpuMs(pgPid) - pg0) : undefined,
        });
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const base = runs[1]!;
  ctx.print(
    table(
      `Suite 12: GET /todos/ at ${rate} requests a second for every server (open loop, constant arrivals, up to 64 ` +
        `connections), ${rounds} round(s) of ${seconds} s in a ` +
        'rotated order; median (min-max) of the rounds; latency ' +
        "from each request's intended send",
      [
        'server',
        'server CPU / req',
        'against (a2), per round',
        'PostgreSQL CPU / req',
        'p50',
        'p99',
        'p99.9',
        'sent / s',
        'errors',
      ],
      runs.map((rs, i) => {
        const perRound = rs.map((r, k) => r.cpuUsPerRequest / base[k]!.cpuUsPerRequest);
        return [
          contenders[i]![0],
          spread(
            rs.map((r) => r.cpuUsPerRequest),
            us
          ),
          `${median(perRound).toFixed(3)} (${Math.min(...perRound).toFixed(3)}-${Math.max(...perRound).toFixed(3)})`,
          pgPid
            ? spread(
              rs.map((r) => r.pgUsPerRequest!),
              us
            )
            : '-',
          spread(
            rs.map((r) => r.p50),
            ms
          ),
          spread(
            rs.map((r) => r.p99),
            ms
          ),
          spread(
            rs.map((r) => r.p999),
            ms
          ),
          spread(
            rs.map((r) => r.achievedRate),
            whole
          ),
          rs.reduce((a, r) => a + r.errors, 0),
        ];
      })
    )
  );
  return { rate, seconds, rounds, servers: contenders.map(([name], i) => ({ name, runs: runs[i] })) };
}
