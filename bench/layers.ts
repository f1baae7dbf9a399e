// Where a server's CPU per request goes, layer by layer: its main thread's V8 CPU profile
// (node --cpu-prof), cut to the measured window, each sample's time given to the layer of the
// code it was in. Native code called from JavaScript (JSON.stringify, a socket's write) counts to
// the layer of the JavaScript that called it; V8's own work (compiling, the interpreter's
// entry) and libuv outside any JavaScript count as "(program)", the collector as "GC".
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The layers, in the order a table shows them; the first rule that matches a frame's URL wins. */
export const LAYERS: [layer: string, matches: (url: string) => boolean][] = [
  ['routing (find-my-way)', (u) => u.includes('/node_modules/find-my-way/')],
  [
    'reply and serialization (Fastify)',
    (u) => /\/node_modules\/(fastify\/lib\/(reply|content-type|error-serializer)|fast-json-stringify)/.test(u),
  ],
  [
    'Fastify core (request, hooks, route context)',
    (u) => /\/node_modules\/(fastify|avvio|light-my-request|@fastify\/[^/]+)\//.test(u),
  ],
  ['host check and security headers', (u) => u.includes('/app/plugins/security.')],
  [
    'request tracking, live gauges',
    (u) => /\/app\/plugins\/(request-tracking|live)\.|\/live\/|\/db\/abort\./.test(u),
  ],
  [
    'metrics (ours and prom-client)',
    (u) =>
      u.includes('/app/plugins/metrics.') ||
      u.includes('/node_modules/prom-client/') ||
      u.includes('/node_modules/hdr-histogram-js/'),
  ],
  [
    'the pool and its gate (pg-queuepool, our db layer)',
    (u) => u.includes('/pg-queuepool/') || /\/dist\/db\/|\/src\/db\//.test(u),
  ],
  [
    'pg: protocol and client',
    (u) => /\/node_modules\/(pg|pg-protocol|pg-pool|pg-types|pgpass|postgres-[a-z]+)\//.test(u),
  ],
  ['route handlers and the rest of the app', (u) => /\/dist\/|\/bench\/baselines\//.test(u)],
  ['logging (pino)', (u) => /\/node_modules\/(pino|pino-std-serializers|sonic-boom|thread-stream)\//.test(u)],
  [
    'Node: HTTP server, request parsing',
    (u) => /^node:(_http_server|_http_common|_http_incoming|internal\/http)/.test(u),
  ],
  ['Node: HTTP response (headers, body)', (u) => u.startsWith('node:_http_outgoing')],
  [
    'Node: sockets and streams (reads, writes, both sides)',
    (u) => /^node:(net|stream|internal\/(stream_base_commons|streams\/|net|js_stream_socket))/.test(u),
  ],
  [
    'Node: timers, promises, events',
    (u) =>
      /^node:(internal\/(timers|process\/task_queues|async_hooks|process\/promises)|timers|events|internal\/event_target)/.test(
        u
      ),
  ],
  ['Node: other', (u) => u.startsWith('node:')],
  ['other packages', (u) => u.includes('/node_modules/')],
];
export const PROGRAM = '(program): V8 and libuv outside JavaScript';
export const GC = 'GC';

/**
 * The main thread's profile among those `node --cpu-prof` wrote to `dir` for process `pid`
 * (CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile; thread 0 is the main one).
 */
export function mainProfile (dir: string, pid: number): string {
  const file = readdirSync(dir).find(
    (f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(pid) && f.split('.')[4] === '0'
  );
  if (!file) throw new Error(`no CPU profile of process ${pid}'s main thread in ${dir}`);
  return join(dir, file);
}

/**
 * Microseconds of the main thread per layer within [fromUs, toUs] of the monotonic clock
 * (process.hrtime, which V8's profiler stamps its samples with), idle time left out.
 */
export function layerTimes (file: string, fromUs: number, toUs: number): Map<string, number> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const layerOf = new Map<number, string | null>();
  const classify = (id: number): string | null => {
    let layer = layerOf.get(id);
    if (layer !== undefined) return layer;
    const { functionName, url } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') layer = null;
    else if (functionName === '(garbage collector)') layer = GC;
    else if (functionName === '(program)' || functionName === '(root)') layer = PROGRAM;
    else if (url) layer = LAYERS.find(([, m]) => m(url))?.[0] ?? 'other';
    else {
      // Native (a builtin, a binding): the layer of the JavaScript that called it.
      const up = parent.get(id);
      layer = up === undefined ? PROGRAM : classify(up);
    }
    layerOf.set(id, layer);
    return layer;
  };
  const times = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    // A sample's delta is the time since the one before: the time it stands for.
    const delta = profile.timeDeltas[i]!;
    t += delta;
    if (t < fromUs || t > toUs) continue;
    const layer = classify(profile.samples[i]!);
    if (layer) times.set(layer, (times.get(layer) ?? 0) + delta);
  }
  return times;
}
