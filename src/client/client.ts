// The `client` command: the original client.py, made into a load client.
import { readFileSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import net from 'node:net';
import { burst, type Burst, type RequestResult } from './load.ts';
import { DEFAULT_CONNECTIONS, openLoop, type Arrivals, type OpenLoopRun, type Percentiles } from './open-loop.ts';
import { percentilesText } from './percentiles.ts';
import { ProgressLine } from './progress.ts';
import { writeReport } from './report.ts';
import { errorKind, errorLines, summarize, summaryLine, waveLine } from './summary.ts';

export interface ClientOptions {
  n: number;
  url: string;
  routes: string[];
  seconds?: number;
  json: boolean;
  report?: string;
  verbose: boolean;
  timeoutMs?: number;
  /**
   * Aborted on the first Ctrl-C: no further route is started, the requests in flight get
   * INTERRUPT_GRACE_MS to come back, and the summary and report cover what did.
   */
  interrupted?: AbortSignal;
}

/** How long the requests in flight may still take after a Ctrl-C before they are abandoned. */
export const INTERRUPT_GRACE_MS = 2000;

export const DEFAULT_ROUTES = ['/sleep/node/', '/sleep/postgres/'];
/** Above this many requests per route, print the summary and waves, not every response. */
const LINE_LIMIT = 50;

export class ClientError extends Error {}

export function routeUrl (base: string, route: string, seconds?: number): string {
  const u = new URL(route, base);
  if (seconds !== undefined) u.searchParams.set('seconds', String(seconds));
  return u.toString();
}

/** Checks that something listens before firing N requests, to fail with one clear line. */
export async function probe (url: string): Promise<void> {
  const u = new URL(url);
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect({ host: u.hostname, port: Number(u.port || 80) });
    socket.setTimeout(5000, () => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    socket.once('connect', () => {
      socket.end();
      resolve();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ECONNREFUSED' ? 'connection refused' : err.message;
      reject(
        new ClientError(`Cannot connect to ${u.origin}: ${why}. Is the service running? Start it with: npm start`)
      );
    });
  });
}

/** Node raises the soft limit to the hard one at start; say so when that is still too low. */
export function checkFileLimit (n: number): void {
  let limit: number;
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    limit = !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return; // not Linux: let the OS say no
  }
  if (n + 64 > limit) {
    throw new ClientError(
      `N=${n} needs about ${n + 64} open files but this process may open ${limit}: raise the limit (ulimit ` +
        `-n ${n + 1024}) or lower N`
    );
  }
}

export async function runClient (
  options: ClientOptions,
  out: (line: string) => void = console.log
): Promise<Burst[]> {
  checkFileLimit(options.n);
  await probe(options.url);
  const bursts: Burst[] = [];
  const perLine = options.verbose || options.n <= LINE_LIMIT;
  const abandon = new AbortController();
  // Every request of a burst listens to it: N listeners is what it is for.
  setMaxListeners(options.n + 10, abandon.signal);
  let grace: NodeJS.Timeout | undefined;
  options.interrupted?.addEventListener(
    'abort',
    () => {
      grace = setTimeout(() => abandon.abort(), INTERRUPT_GRACE_MS);
    },
    { once: true }
  );
  const routes: string[] = [];
  for (const route of options.routes) {
    if (options.interrupted?.aborted) break;
    routes.push(route);
    const url = routeUrl(options.url, route, options.seconds);
    if (!options.json) out(`Sending ${options.n} requests for ${url}...`);
    const progress = options.json ? undefined : new Progress(options.n);
    const b = await burst(url, options.n, {
      timeoutMs: options.timeoutMs,
      signal: abandon.signal,
      onResult: (r) => {
        progress?.tick();
        if (perLine && !options.json) {
          progress?.clear();
          out(responseLine(r));
        }
      },
    });
    progress?.stop();
    if (!options.json) out(`\t= ${fmt(b.totalMs / 1000)}s TOTAL`);
    bursts.push(b);
  }
  clearTimeout(grace);
  const sum = bursts.reduce((acc, b) => acc + b.totalMs, 0);
  if (options.json) {
    out(JSON.stringify(jsonDocument({ ...options, routes }, bursts, sum), null, 2));
  } else {
    out('------------------------------------------');
    out(`SUM TOTAL = ${(sum / 1000).toFixed(2)}s`);
    for (const [i, b] of bursts.entries()) {
      const s = summarize(b);
      out(summaryLine(routes[i]!, s));
      for (const line of errorLines(s)) out(line);
      if (!perLine) out(waveLine(s));
    }
  }
  if (options.report) {
    const title = `${options.n} concurrent requests per route${
      options.interrupted?.aborted ? ' (interrupted by Ctrl-C)' : ''
    }`;
    writeReport(options.report, `client ${options.n} against ${options.url}`, [{ title, bursts }]);
    if (!options.json) out(`Report written to ${options.report}`);
  }
  return bursts;
}

export interface OpenLoopClientOptions {
  url: string;
  routes: string[];
  seconds?: number;
  rate: number;
  duration: number;
  arrivals: Arrivals;
  json: boolean;
  report?: string;
  timeoutMs?: number;
  connections?: number;
  /** Stops the arrivals on the first Ctrl-C; the requests in flight are still awaited. */
  interrupted?: AbortSignal;
}

/** `client --rate R --duration T`: an open loop per route, in turn (src/client/open-loop.ts). */
export async function runOpenLoopClient (
  options: OpenLoopClientOptions,
  out: (line: string) => void = console.log
): Promise<OpenLoopRun[]> {
  checkFileLimit(options.connections ?? DEFAULT_CONNECTIONS);
  await probe(options.url);
  const runs: OpenLoopRun[] = [];
  for (const route of options.routes) {
    if (options.interrupted?.aborted) break;
    const url = routeUrl(options.url, route, options.seconds);
    if (!options.json) {
      out(
        `Open loop: ${options.rate} requests/s for ${options.duration} s (${options.arrivals} arrivals) to ${url}...`
      );
    }
    const run = await openLoop({
      url,
      rate: options.rate,
      seconds: options.duration,
      arrivals: options.arrivals,
      timeoutMs: options.timeoutMs,
      connections: options.connections,
      signal: options.interrupted,
    });
    runs.push(run);
    if (!options.json) for (const line of openLoopLines(route, run)) out(line);
  }
  if (options.json) {
    out(
      JSON.stringify(
        {
          url: options.url,
          rate: options.rate,
          duration: options.duration,
          arrivals: options.arrivals,
          routes: runs.map(openLoopJson),
        },
        null,
        2
      )
    );
  }
  if (options.report) {
    writeReport(
      options.report,
      `client --rate ${options.rate} --duration ${options.duration} against ${options.url}`,
      [
        {
          title: `${options.rate} requests/s, ${options.arrivals} arrivals, for ${options.duration} s`,
          bursts: [],
          openLoops: runs,
        },
      ]
    );
    if (!options.json) out(`Report written to ${options.report}`);
  }
  return runs;
}

const ms = (p: Percentiles) => percentilesText(p);

/** What an open loop did: whether the generator kept its rate, then both latencies and the errors. */
export function openLoopLines (route: string, run: OpenLoopRun): string[] {
  const kept = run.keptRate
    ? `\tthe generator kept the rate: ${run.sent} of ${run.scheduled} sent, ${run.achievedRate.toFixed(2)}/s, each ` +
      `within ${Math.ceil(run.sendLag.p99)} ms of its time (p99; max ${Math.ceil(run.sendLag.max)} ms)`
    : `\tthe generator did NOT keep the rate: ${run.why}; these figures undercount the server's queue`;
  const errors = new Map<string, { n: number; message: string }>();
  for (const r of run.results) {
    if (!r.error) continue;
    const kind = errorKind(r)!;
    const e = errors.get(kind) ?? { n: 0, message: r.body ?? r.message ?? '' };
    e.n++;
    errors.set(kind, e);
  }
  return [
    kept,
    `${route}: ${run.ok} ok, ${run.errors} errors`,
    `\tlatency from the intended send (corrected for coordinated omission): ${ms(run.corrected)}`,
    `\tlatency from the actual send:                                         ${ms(run.uncorrected)}`,
    ...[...errors].map(([kind, e]) => `\t${kind} x ${e.n}: ${e.message}`),
  ];
}

function openLoopJson (run: OpenLoopRun) {
  const { results, ...figures } = run;
  return {
    ...figures,
    requests: results.map((r) => ({
      intendedMs: r.intended,
      sentMs: r.sent,
      endMs: r.end,
      status: r.status ?? null,
      error: r.error ?? null,
      message: r.body ?? r.message ?? null,
    })),
  };
}

export function responseLine (r: RequestResult): string {
  return r.status !== undefined
    ? `\t@ ${fmt(r.end / 1000)}s got response [${r.status}]`
    : `\t@ ${fmt(r.end / 1000)}s got error [${r.error}: ${r.message}]`;
}

/** Python's "%5.2f". */
export const fmt = (x: number) => x.toFixed(2).padStart(5);

function jsonDocument (options: ClientOptions, bursts: Burst[], sumMs: number) {
  return {
    n: options.n,
    url: options.url,
    seconds: options.seconds ?? null,
    sumTotalMs: sumMs,
    routes: bursts.map((b, i) => ({
      route: options.routes[i],
      url: b.url,
      totalMs: b.totalMs,
      summary: summarize(b),
      requests: b.results.map((r) => ({
        startMs: r.start,
        endMs: r.end,
        status: r.status ?? null,
        error: r.error ?? null,
        message: r.body ?? r.message ?? null,
      })),
    })),
  };
}

/** How many responses are in, on the terminal's progress line after 2 s. */
class Progress {
  private done = 0;
  private readonly line = new ProgressLine(undefined, 2000);

  constructor (private readonly total: number) {
    this.line.update(() => `${this.done}/${this.total} responses`);
  }

  tick (): void {
    this.done++;
  }

  clear (): void {
    this.line.clear();
  }

  stop (): void {
    this.line.stop();
  }
}
