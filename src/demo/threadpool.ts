// "Don't block the event loop, or the worker pool": libuv's thread pool (4 threads unless
// UV_THREADPOOL_SIZE) runs fs calls, dns.lookup (every connect to a host name), zlib and crypto's
// asynchronous forms. /offload/hash/ keeps the loop free by hashing there, and so fills it: an fs
// call or a connect by host name then waits behind the hashes while the loop's lag stays flat.
// Three ways are measured under the same CPU work: the pool's 4 threads, 64 threads, and the work
// in worker threads (piscina) instead, with the calls that need the pool timed by GET /threadpool/.
// 64 threads end the queue but not the shortage: 48 threads hashing at once share the cores with
// the event loop and PostgreSQL, so the loop and the connect slow down instead; worker threads, one
// per core, leave libuv's pool to the calls that need it.
import { burst } from '../client/load.ts';
import { withServerProcess, type ServerProcess, type Stoppable } from '../harness/server-process.ts';
import { pbkdf2Sync } from 'node:crypto';
import { HASH } from '../loop/inputs.ts';
import { watchHealth } from './blocks.ts';
import type { Verdict } from './verdicts.ts';

/** Requests that hash at once, and hashes each: 48 tasks, over a second of both cores here. */
const REQUESTS = 8;
const HASHES = 6;
const ENLARGED = 64;
const PROBE_EVERY_MS = 150;
const HEALTH_EVERY_MS = 25;

export const THREADPOOL_TITLE =
  `The other pool that blocks: libuv's thread pool, filled by ${REQUESTS} x /offload/hash/?count=${HASHES}, ` +
  'while fs, a host-name lookup and a connect by host name are timed';

interface Times {
  fsMs: number;
  lookupMs: number;
  connectMs: number;
}

interface Phase {
  label: string;
  probes: Times[];
  /** The slowest /healthz answer meanwhile: the event loop's lag. */
  healthMaxMs: number;
  /** How long the load took (0 for none). */
  loadMs: number;
  failed: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : Number.NaN;
};
const ms = (x: number) => (Number.isFinite(x) ? `${x < 10 ? x.toFixed(1) : Math.round(x)} ms` : '-');

async function probe (base: string): Promise<Times | undefined> {
  const res = await fetch(`${base}/threadpool/`);
  if (res.status !== 200) return undefined;
  return (await res.json()) as Times;
}

/**
 * `load` (if any) started, /threadpool/ asked every PROBE_EVERY_MS and /healthz every
 * HEALTH_EVERY_MS until it is done; without a load, five probes one after another.
 */
async function phase (label: string, server: ServerProcess, load?: string): Promise<Phase> {
  const base = server.url;
  if (!load) {
    const probes: Times[] = [];
    for (let i = 0; i < 5; i++) {
      const t = await probe(base);
      if (t) probes.push(t);
    }
    return { label, probes, healthMaxMs: 0, loadMs: 0, failed: 5 - probes.length };
  }
  const health = watchHealth(base, HEALTH_EVERY_MS);
  const t0 = performance.now();
  const loading = burst(`${base}${load}`, REQUESTS);
  const probes: Promise<Times | undefined>[] = [];
  const state = { finished: false };
  loading.then(
    () => (state.finished = true),
    () => (state.finished = true)
  );
  // The first after the load's requests are in: the hashes are queued by then.
  await new Promise((resolve) => setTimeout(resolve, 100));
  while (!state.finished) {
    probes.push(probe(base));
    await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS));
  }
  const loaded = await loading;
  const loadMs = performance.now() - t0;
  const healthMaxMs = await health.stop();
  const answered = (await Promise.all(probes)).filter((t): t is Times => t !== undefined);
  const failed = loaded.results.filter((r) => r.status !== 200).length + probes.length - answered.length;
  return { label, probes: answered, healthMaxMs, loadMs, failed };
}

export async function runThreadPoolScenario (
  databaseUrl: string,
  running: Set<Stoppable>,
  out: (line: string) => void
): Promise<Verdict[]> {
  out(`=== ${THREADPOOL_TITLE} ===`);
  out(
    '    here:  npm start, then npm run client -- 8 --route "/offload/hash/?count=6" and, meanwhile, ' +
      'curl localhost:8000/threadpool/'
  );
  const hashLoad = `/offload/hash/?count=${HASHES}`;
  // The same CPU in worker threads: the hashes' time on this machine, as a JavaScript loop.
  const start = performance.now();
  pbkdf2Sync('password', HASH.salt, HASH.iterations, HASH.keyBytes, HASH.digest);
  const hashMs = performance.now() - start;
  const cpuLoad = `/offload/cpu/?ms=${Math.round(HASHES * hashMs)}`;
  const env = { DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', UV_THREADPOOL_SIZE: undefined };
  const phases: Phase[] = [];
  await withServerProcess(
    env,
    async (server) => {
      phases.push(await phase('4 threads, idle', server));
      phases.push(await phase('4 threads, hashing', server, hashLoad));
      phases.push(await phase('4 threads, the CPU work in worker threads', server, cpuLoad));
    },
    { running, timeoutMs: 60_000 }
  );
  await withServerProcess(
    { ...env, UV_THREADPOOL_SIZE: String(ENLARGED) },
    async (server) => {
      phases.push(await phase(`${ENLARGED} threads, hashing`, server, hashLoad));
    },
    { running, timeoutMs: 60_000 }
  );
  const [idle, saturated, threads, enlarged] = phases as [Phase, Phase, Phase, Phase];
  const cell = (p: Phase, key: keyof Times) => {
    const xs = p.probes.map((t) => t[key]);
    return xs.length ? `${ms(median(xs))} (max ${ms(Math.max(...xs))})` : '-';
  };
  out('    median (max) of the probes during each load; /healthz slowest: the event loop\'s lag meanwhile');
  out(
    `    ${'pool and load'.padEnd(44)} ${'fs call'.padEnd(20)} ${'lookup'.padEnd(20)} ` +
      `${'connect by name'.padEnd(20)} /healthz   load took`
  );
  for (const p of [idle, saturated, enlarged, threads]) {
    out(
      `    ${p.label.padEnd(44)} ${cell(p, 'fsMs').padEnd(20)} ${cell(p, 'lookupMs').padEnd(20)} ` +
        `${cell(p, 'connectMs').padEnd(20)} ${(p.loadMs ? ms(p.healthMaxMs) : '-').padEnd(10)} ` +
        `${p.loadMs ? `${(p.loadMs / 1000).toFixed(2)} s` : '-'}`
    );
  }
  const fs = (p: Phase) => median(p.probes.map((t) => t.fsMs));
  const connect = (p: Phase) => median(p.probes.map((t) => t.connectMs));
  const verdict = (claim: string, measured: string, expected: string, problems: string[]): Verdict => ({
    claim,
    measured,
    expected,
    verdict: problems.length ? `MISMATCH: ${problems.join('; ')}` : 'ok',
    ok: problems.length === 0,
  });
  // The loop is free when /healthz waits a scheduling delay, not the work: with every core busy
  // (two demos at once in CI) it waited 207 ms beside worker threads, where a held loop waits for
  // the whole load (2 s). So: at most 100 ms, or a quarter of the load's time.
  const held = (p: Phase) => p.healthMaxMs > Math.max(100, p.loadMs / 4);
  const failures = phases.reduce((a, p) => a + p.failed, 0);
  const queued: string[] = [];
  if (failures) queued.push(`${failures} request(s) failed`);
  if (saturated.probes.length === 0) queued.push('no probe answered during the hashing');
  if (!(fs(saturated) >= Math.max(50, 5 * fs(idle)))) queued.push(`the fs call took ${ms(fs(saturated))}`);
  if (!(connect(saturated) >= Math.max(50, 2 * connect(idle)))) {
    queued.push(`the connect took ${ms(connect(saturated))}`);
  }
  if (held(saturated)) queued.push(`/healthz waited ${ms(saturated.healthMaxMs)}: the loop was held`);
  // The fs call no longer queues: a third of its time behind the hashes at most (8 times less here).
  const relieved = (p: Phase, what: string, loopFree: boolean) => {
    const problems: string[] = [];
    if (p.failed) problems.push(`${p.failed} request(s) failed`);
    if (!(fs(p) <= fs(saturated) / 3)) problems.push(`the fs call still took ${ms(fs(p))} ${what}`);
    if (loopFree && held(p)) problems.push(`/healthz waited ${ms(p.healthMaxMs)}`);
    return problems;
  };
  return [
    verdict(
      "libuv's thread pool, full (4 threads, /offload/hash/)",
      `fs ${ms(fs(idle))} idle, ${ms(fs(saturated))} hashing; connect by host name ${ms(connect(idle))} -> ` +
        `${ms(connect(saturated))}; /healthz at most ${ms(saturated.healthMaxMs)}`,
      'the calls that need the pool queue behind the hashes; the event loop stays free',
      queued
    ),
    // Not judged on the loop: 48 hashing threads now share the cores with it, and with PostgreSQL.
    verdict(
      `UV_THREADPOOL_SIZE=${ENLARGED}, the same hashes`,
      `fs ${ms(fs(enlarged))}, connect ${ms(connect(enlarged))}, /healthz at most ${ms(enlarged.healthMaxMs)}; ` +
        `the load took ${(enlarged.loadMs / 1000).toFixed(2)} s (${(saturated.loadMs / 1000).toFixed(2)} s with 4)`,
      'a thread free for them, no queue; but 48 hashing threads now share the cores with the loop and PostgreSQL',
      relieved(enlarged, `with ${ENLARGED} threads`, false)
    ),
    verdict(
      'the same CPU work in worker threads (/offload/cpu/)',
      `fs ${ms(fs(threads))}, connect ${ms(connect(threads))}; /healthz at most ${ms(threads.healthMaxMs)}`,
      "libuv's pool left to the calls that need it",
      relieved(threads, 'beside worker threads', true)
    ),
  ];
}
