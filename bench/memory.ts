// Suite 11: memory. How many ES modules the compiled service loads before it serves, its idle
// and peak RSS, and V8's young generation (the semi-space size) against peak RSS and CPU per
// request under load, beside the bare json_agg server; all running at once, measured in turns.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerProcess } from '../src/harness/server-process.ts';
import { peakRss, treeCpuMs, treeRssMb } from '../src/os/proc.ts';
import { bare, median, ours, spreadOf as spread, table, us, whole } from './lib.ts';
import { load, loadTool } from './load.ts';

// Counts each module the ESM loader loads, by package ("ours" for the service's own files).
const HOOK = `
const seen = new Map();
export async function initialize ({ port }) { port.on('message', () => port.postMessage([...seen])); }
export async function load (url, context, next) {
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(url);
  const k = m ? m[1] : url.startsWith('node:') ? 'node:' : 'ours';
  seen.set(k, (seen.get(k) ?? 0) + 1);
  return next(url, context);
}`;

const COUNT =
  `
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}), { data: { port: port2 }, ` +
  `transferList: [port2] });
for (const file of process.argv.slice(1)) await import(file);
port1.postMessage('count');
port1.once('message', (list) => { console.log(JSON.stringify(Object.fromEntries(list))); port1.close(); });
`;

const DIST = (file: string) => fileURLToPath(new URL(`../dist/${file}`, import.meta.url));

/** ES modules the compiled service's server and app load (CommonJS packages count their entry only), by package. */
export function modulesLoaded (): Record<string, number> {
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', COUNT, DIST('server/serve.js'), DIST('app/app.js')],
    { encoding: 'utf8' }
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>;
}

interface Round {
  rps: number;
  p99: number;
  cpuUsPerRequest: number;
  peakRssMb: number;
}

export async function memorySuite (ctx: {
  url: string;
  quick: boolean;
  smoke: boolean;
  print(text: string): void;
}): Promise<unknown> {
  const seconds = ctx.smoke ? 1 : ctx.quick ? 3 : 6;
  const rounds = ctx.smoke ? 1 : ctx.quick ? 3 : 5;
  const modules = modulesLoaded();
  const total = Object.values(modules).reduce((a, b) => a + b, 0);
  ctx.print(
    `Suite 11: the compiled service loads ${total} ES modules before it serves: ${Object.entries(modules)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`
  );

  const pinned = { POOL_SIZE: '15', POOL_MAX_OVERFLOW: '0' };
  const semi = (mb: number) => [`--max-semi-space-size=${mb}`];
  const contenders: [string, () => Promise<ServerProcess>][] = [
    ["this service, V8's default young generation", () => ours(ctx.url, pinned)],
    ['this service, --max-semi-space-size=8', () => ours(ctx.url, pinned, semi(8))],
    ['this service, --max-semi-space-size=4', () => ours(ctx.url, pinned, semi(4))],
    ['this service, --max-semi-space-size=2', () => ours(ctx.url, pinned, semi(2))],
    ['(a2) bare node:http + pg, json_agg', () => bare(ctx.url, { BASELINE_POOL: 'pinned', BARE_BODY: 'json_agg' })],
  ];
  const servers = await Promise.all(contenders.map(([, start]) => start()));
  const runs: Round[][] = contenders.map(() => []);
  let idle: number[] = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, 3000)); // start-up's garbage collected
    idle = servers.map((s) => treeRssMb(s.proc.pid!));
    for (const s of servers) await load(`${s.url}/todos/`, 1);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < servers.length; k++) {
        const i = (round + k) % servers.length;
        const { url, proc } = servers[i]!;
        const rss = peakRss(proc.pid!);
        const cpu0 = treeCpuMs(proc.pid!);
        const r = await load(`${url}/todos/`, seconds);
        runs[i]!.push({
          rps: r.rps,
          p99: r.p99,
          cpuUsPerRequest: ((treeCpuMs(proc.pid!) - cpu0) * 1000) / Math.max(1, r.requests),
          peakRssMb: rss.stop(),
        });
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
  const base = runs.at(-1)!;
  const mb = (x: number) => `${Math.round(x)} MB`;
  ctx.print(
    table(
      `Suite 11: GET /todos/, ${loadTool} -c50, ${rounds} round(s) of ${seconds} s in a rotated order, all running ` +
        'at once; median (min-max) of the rounds',
      [
        'server',
        'idle RSS',
        'peak RSS (max of rounds)',
        'peak RSS / bare',
        'server CPU / req',
        'CPU / req / bare',
        'req/s',
        'p99',
      ],
      runs.map((rs, i) => [
        contenders[i]![0],
        mb(idle[i]!),
        mb(Math.max(...rs.map((r) => r.peakRssMb))),
        (Math.max(...rs.map((r) => r.peakRssMb)) / Math.max(...base.map((r) => r.peakRssMb))).toFixed(3),
        spread(
          rs.map((r) => r.cpuUsPerRequest),
          us
        ),
        median(rs.map((r, k) => r.cpuUsPerRequest / base[k]!.cpuUsPerRequest)).toFixed(3),
        spread(
          rs.map((r) => r.rps),
          whole
        ),
        spread(
          rs.map((r) => r.p99),
          (x) => `${x.toFixed(1)} ms`
        ),
      ])
    )
  );
  return {
    tool: loadTool,
    seconds,
    rounds,
    modules,
    servers: contenders.map(([name], i) => ({ name, idleRssMb: idle[i], runs: runs[i] })),
  };
}
