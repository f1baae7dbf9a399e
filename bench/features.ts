// Suite 13: what the service's features cost, apart from what its framework costs. Three servers
// that all pass through the JSON PostgreSQL builds, side by side (bench/side-by-side.ts): this
// service with every feature on, (c2) plain Fastify with the same technique and nothing else,
// and (a2) bare node:http. Each round gives this service / (c2), the features on the framework,
// and (c2) / (a2), the framework on node:http; their product is issue 27's judged ratio.
import type { ServerProcess } from '../src/harness/server-process.ts';
import { bare, median, ours, plainFastify, ratio, spreadOf, table, us, whole } from './lib.ts';
import { loadTool } from './load.ts';
import { cpuRatios, sideBySide } from './side-by-side.ts';

export async function featuresSuite (ctx: {
  url: string;
  quick: boolean;
  smoke: boolean;
  print(text: string): void;
}): Promise<unknown> {
  const seconds = ctx.smoke ? 1 : ctx.quick ? 3 : 6;
  const warmup = ctx.smoke ? 1 : ctx.quick ? 1 : 3;
  const rounds = ctx.smoke ? 2 : ctx.quick ? 5 : 11;
  const connections = 25;
  // Every server keeps 15 connections open throughout, as in suite 3.
  const pinnedPool = { BASELINE_POOL: 'pinned' };
  const contenders: [string, () => Promise<ServerProcess>][] = [
    ['this service, every feature on', () => ours(ctx.url, { POOL_SIZE: '15', POOL_MAX_OVERFLOW: '0' })],
    [
      '(c2) plain Fastify + pg, json_agg passed through',
      () => plainFastify(ctx.url, { ...pinnedPool, FASTIFY_BODY: 'json_agg' }),
    ],
    ['(a2) bare node:http + pg, json_agg', () => bare(ctx.url, { ...pinnedPool, BARE_BODY: 'json_agg' })],
  ];
  const servers = await Promise.all(contenders.map(([, start]) => start()));
  let measured: Awaited<ReturnType<typeof sideBySide>>;
  try {
    measured = await sideBySide(ctx.url, servers, '/todos/', { seconds, warmup, rounds, connections });
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
  const { runs, pinned } = measured;
  const pairs: [string, number, number][] = [
    ['this service / (c2): the features, on the same framework', 0, 1],
    ['(c2) / (a2): Fastify, on node:http', 1, 2],
    ['this service / (a2): both (issue 27 judges this, at most 1.0)', 0, 2],
  ];
  const judged = pairs.map(([name, a, b]) => {
    const ratios = cpuRatios(runs, a, b);
    const extraUs = runs[a]!.map((r, i) => r.cpuUsPerRequest - runs[b]![i]!.cpuUsPerRequest);
    return { name, ratios, median: median(ratios), extraUs: median(extraUs) };
  });
  ctx.print(
    table(
      `Suite 13: what the features cost, GET /todos/, ${loadTool} -c${connections} against each server at ` +
        `once, ${rounds} rounds of ${seconds} s after ${warmup} s warm-up; median (min-max) of the rounds; CPU of ` +
        'every thread of each process',
      ['server', 'CPU / req', 'CPU loaded', 'req/s', 'p99', 'peak RSS', 'errors'],
      runs.map((rs, i) => [
        contenders[i]![0],
        spreadOf(
          rs.map((r) => r.cpuUsPerRequest),
          us
        ),
        spreadOf(
          rs.map((r) => r.msPerSecond),
          (x) => `${Math.round(x)} ms/s`
        ),
        spreadOf(
          rs.map((r) => r.rps),
          whole
        ),
        `${median(rs.map((r) => r.p99)).toFixed(1)} ms`,
        `${Math.round(Math.max(...rs.map((r) => r.peakRssMb)))} MB`,
        rs.reduce((a, r) => a + r.errors, 0),
      ])
    )
  );
  for (const j of judged) {
    ctx.print(
      `${j.name}: CPU per request ${ratio(j.median)} ` +
        `(min-max ${ratio(Math.min(...j.ratios))}-${ratio(Math.max(...j.ratios))}), ${j.extraUs.toFixed(1)} µs a ` +
        'request more (median of the rounds)'
    );
  }
  ctx.print(
    pinned
      ? 'The three servers ran on the last core; PostgreSQL, the load and the bench on the others.'
      : 'Not pinned (taskset missing, or one core): the figures share the cores with the load.'
  );
  return {
    tool: loadTool,
    connections,
    seconds,
    warmup,
    rounds,
    pinned,
    runs: contenders.map(([name], i) => ({ name, runs: runs[i] })),
    judged,
  };
}
