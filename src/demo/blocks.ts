// "What blocks in Node.js": the original's lesson that a non-blocking server blocks again, for
// the blocking that services really do. For each kind of work, 5 concurrent requests to its
// /block/ route, then to its /offload/ twin, with /healthz asked every 25 ms meanwhile: blocked,
// the responses come back one after another and /healthz waits; offloaded, /healthz answers at
// once. The verdicts check that shape, and that the block detector named the function.
import { burst } from '../client/load.ts';
import { blocksLogged, withServerProcess, type LoggedBlock, type Stoppable } from '../harness/server-process.ts';
import { KIND_NAMES, KINDS } from '../loop/catalog.ts';
import type { Verdict } from './verdicts.ts';

const N = 5;
const PROBE_MS = 25;

export const BLOCKS_TITLE =
  `What blocks in Node.js: ${N} concurrent requests to each /block/ route and to its ` + '/offload/ twin';

interface Answer {
  status: number;
  /** When it came back, ms from the burst's start. */
  end: number;
  /** How long its work took, as the service measured it. */
  workMs: number;
}

interface Probed {
  answers: Answer[];
  /** The longest /healthz took while the burst ran. */
  probeMaxMs: number;
}

/**
 * N concurrent requests, with /healthz asked every PROBE_MS until they are answered: how long the event loop kept it
 * waiting.
 */
async function probed (base: string, path: string): Promise<Probed> {
  const health = watchHealth(base, PROBE_MS);
  const t0 = performance.now();
  const answers = await Promise.all(
    Array.from({ length: N }, async (): Promise<Answer> => {
      const res = await fetch(`${base}${path}`);
      const body = (await res.json().catch(() => ({}))) as { ms?: number };
      return { status: res.status, end: performance.now() - t0, workMs: body.ms ?? 0 };
    })
  );
  const probeMaxMs = await health.stop();
  answers.sort((a, b) => a.end - b.end);
  return { answers, probeMaxMs };
}

/**
 * /healthz asked every `everyMs`, one at a time, until stop(), which resolves with the slowest
 * answer: how long the event loop kept it waiting.
 */
export function watchHealth (base: string, everyMs: number): { stop: () => Promise<number> } {
  const done = new AbortController();
  let slowest = 0;
  const asking = (async () => {
    while (!done.signal.aborted) {
      const b = await burst(`${base}/healthz`, 1);
      slowest = Math.max(slowest, b.totalMs);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    stop: async () => {
      done.abort();
      await asking;
      return slowest;
    },
  };
}

const secs = (ms: number) => (ms / 1000).toFixed(2);

/** Kinds whose stall is the thread waiting, not computing; fs is not judged (the page cache makes it CPU here). */
const WAITS = new Set(['wait']);
const UNJUDGED = new Set(['fs']);

/**
 * The median share of the blocks that the thread wanted a CPU (on one, or ready for one on a busy
 * machine), or undefined where the detector cannot read it (outside Linux).
 */
function cpuWanted (blocks: LoggedBlock[]): number | undefined {
  const shares = blocks
    .filter((b) => b.cpuShare !== undefined)
    .map((b) => b.cpuShare! + (b.runnableShare ?? 0))
    .sort((a, b) => a - b);
  return shares.length ? shares[Math.floor((shares.length - 1) / 2)] : undefined;
}

function cpuText (share: number | undefined): string {
  if (share === undefined) return 'CPU share unknown here';
  return share >= 0.5 ? `CPU ${Math.round(share * 100)} %` : `wait ${Math.round((1 - share) * 100)} %`;
}

/**
 * The third remedy: the same CPU loop on the event loop, in 5 ms slices that give the loop back
 * (/partition/cpu/). /healthz is served between slices; the work, sharing one thread, ends as late
 * as blocking's did, later than in worker threads.
 */
async function partitioned (
  base: string,
  blocked: Probed,
  offloaded: Probed,
  out: (line: string) => void
): Promise<Verdict> {
  const sliced = await probed(base, '/partition/cpu/');
  out(
    `    ${'/partition/cpu/'.padEnd(17)} ${sliced.answers.map((a) => secs(a.end).padStart(5)).join(' ')}   ` +
      `/healthz waited up to ${Math.round(sliced.probeMaxMs)} ms (5 ms slices, a turn of the loop between them)`
  );
  const last = (p: Probed) => p.answers.at(-1)!.end;
  const problems: string[] = [];
  const failed = sliced.answers.filter((a) => a.status !== 200).length;
  if (failed) problems.push(`${failed} request(s) failed`);
  if (sliced.probeMaxMs > Math.max(100, blocked.probeMaxMs / 3)) {
    problems.push(`/healthz waited ${Math.round(sliced.probeMaxMs)} ms`);
  }
  // One thread for all: the last ends no sooner than the blocking burst's sum of works.
  if (last(sliced) < last(blocked) * 0.8) problems.push(`the last ended at ${secs(last(sliced))} s`);
  return {
    claim: 'a CPU loop in slices (/partition/cpu/)',
    measured:
      `/healthz up to ${Math.round(sliced.probeMaxMs)} ms; all done at ${secs(last(sliced))} s (blocking ` +
      `${secs(last(blocked))} s, worker threads ${secs(last(offloaded))} s)`,
    expected: 'the loop free between slices; the work ends as late as blocking, no thread used',
    verdict: problems.length ? `MISMATCH: ${problems.join('; ')}` : 'ok',
    ok: problems.length === 0,
  };
}

export async function runBlockScenario (
  databaseUrl: string,
  running: Set<Stoppable>,
  out: (line: string) => void
): Promise<Verdict[]> {
  out(`=== ${BLOCKS_TITLE} ===`);
  out(
    '    the original: "I lied, it actually does block" (past the pool); here, the service\'s own work blocks first'
  );
  out(
    '    here:         npm start, then for each kind: npm run client -- 5 --route /block/<kind>/ (and /offload/<kind>/)'
  );
  out(
    `    Arrival times in seconds; /healthz is asked every ${PROBE_MS} ms meanwhile, and its slowest answer shows ` +
      'how long the loop was held.'
  );
  const rows: Verdict[] = [];
  await withServerProcess(
    { DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
    async (server) => {
      for (const name of KIND_NAMES) {
        const kind = KINDS[name];
        const blocked = await probed(server.url, `/block/${name}/`);
        const offloaded = await probed(server.url, `/offload/${name}/`);
        const show = (label: string, p: Probed) =>
          out(
            `    ${label.padEnd(17)} ${p.answers.map((a) => secs(a.end).padStart(5)).join(' ')}   /healthz waited up ` +
              `to ${Math.round(p.probeMaxMs)} ms`
          );
        out(`  ${kind.what}: ${kind.blocking} (${kind.fn}), then ${kind.twin}`);
        show(`/block/${name}/`, blocked);
        show(`/offload/${name}/`, offloaded);
        // Wait for the detector's last block to be logged (it ends when the loop answers again).
        await new Promise((resolve) => setTimeout(resolve, 200));
        const named = blocksLogged(server.output()).filter((b) => b.route === `GET /block/${name}/`);
        const culprits = [...new Set(named.map((b) => b.culprit ?? '(no frame of ours)'))];
        const wanted = cpuWanted(named);
        out(
          `    named by the detector: ${culprits.join(', ') || 'nothing'} (${named.length} ` +
            `block${named.length === 1 ? '' : 's'}), ${cpuText(wanted)}`
        );

        const problems: string[] = [];
        const failed = [...blocked.answers, ...offloaded.answers].filter((a) => a.status !== 200);
        if (failed.length) problems.push(`${failed.length} request(s) failed`);
        // One after another: the works did not overlap, so the last answer came no sooner than
        // their sum (as the service timed each; V8's regular expressions and the page cache make
        // the first slower than the rest, so the gaps alone would not tell).
        const sum = blocked.answers.reduce((a, b) => a + b.workMs, 0);
        const last = blocked.answers.at(-1)!.end;
        if (last < sum * 0.9) {
          problems.push(
            `the blocked answers overlapped: the last came at ${secs(last)} s, before the works' sum of ${secs(sum)} s`
          );
        }
        const longest = Math.max(...blocked.answers.map((a) => a.workMs));
        if (blocked.probeMaxMs < longest * 0.5) {
          problems.push(`/healthz waited only ${Math.round(blocked.probeMaxMs)} ms during the blocking burst`);
        }
        if (offloaded.probeMaxMs > Math.max(100, blocked.probeMaxMs / 3)) {
          problems.push(`/healthz waited ${Math.round(offloaded.probeMaxMs)} ms during the twin's burst`);
        }
        if (!culprits.some((c) => c.startsWith(`${kind.fn} (src/loop/stalls.ts:`))) {
          problems.push(`the detector did not name ${kind.fn}`);
        }
        const waits = WAITS.has(name);
        if (wanted !== undefined && !UNJUDGED.has(name) && (waits ? wanted >= 0.2 : wanted < 0.5)) {
          problems.push(`the blocks read as ${cpuText(wanted)}, not mostly ${waits ? 'wait' : 'CPU'}`);
        }
        rows.push({
          claim: `${kind.what} (/block/${name}/ vs /offload/${name}/)`,
          measured:
            `blocked: last at ${secs(last)} s (works' sum ${secs(sum)} s), /healthz up ` +
            `to ${Math.round(blocked.probeMaxMs)} ms; offloaded: last at ${secs(offloaded.answers.at(-1)!.end)} s, ` +
            `/healthz up to ${Math.round(offloaded.probeMaxMs)} ms; named: ${culprits[0] ?? 'nothing'}, ` +
            cpuText(wanted),
          expected:
            'blocked: one after another; the twin: the loop free; the function named' +
            (UNJUDGED.has(name) ? '' : WAITS.has(name) ? ', mostly wait' : ', mostly CPU'),
          verdict: problems.length ? `MISMATCH: ${problems.join('; ')}` : 'ok',
          ok: problems.length === 0,
        });
        if (name === 'cpu') rows.push(await partitioned(server.url, blocked, offloaded, out));
      }
    },
    { running, timeoutMs: 120_000 }
  );
  return rows;
}
