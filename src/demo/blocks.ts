// "What blocks in Node.js": the original's lesson that a non-blocking server blocks again, for
// the blocking that services really do. For each kind of work, 5 concurrent requests to its
// /block/ route, then to its /offload/ twin, with /healthz asked every 25 ms meanwhile: blocked,
// the responses come back one after another and /healthz waits; offloaded, /healthz answers at
// once. The verdicts check that shape, and that the block detector named the function.
import { burst } from '../client/load.ts';
import { blocksLogged, withServerProcess, type Stoppable } from '../harness/server-process.ts';
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
  const done = new AbortController();
  let probeMaxMs = 0;
  const probing = (async () => {
    while (!done.signal.aborted) {
      const b = await burst(`${base}/healthz`, 1);
      probeMaxMs = Math.max(probeMaxMs, b.totalMs);
      await new Promise((resolve) => setTimeout(resolve, PROBE_MS));
    }
  })();
  const t0 = performance.now();
  const answers = await Promise.all(
    Array.from({ length: N }, async (): Promise<Answer> => {
      const res = await fetch(`${base}${path}`);
      const body = (await res.json().catch(() => ({}))) as { ms?: number };
      return { status: res.status, end: performance.now() - t0, workMs: body.ms ?? 0 };
    })
  );
  done.abort();
  await probing;
  answers.sort((a, b) => a.end - b.end);
  return { answers, probeMaxMs };
}

const secs = (ms: number) => (ms / 1000).toFixed(2);

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
        out(
          `    named by the detector: ${culprits.join(', ') || 'nothing'} (${named.length} ` +
            `block${named.length === 1 ? '' : 's'})`
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
        rows.push({
          claim: `${kind.what} (/block/${name}/ vs /offload/${name}/)`,
          measured:
            `blocked: last at ${secs(last)} s (works' sum ${secs(sum)} s), /healthz up ` +
            `to ${Math.round(blocked.probeMaxMs)} ms; offloaded: last at ${secs(offloaded.answers.at(-1)!.end)} s, ` +
            `/healthz up to ${Math.round(offloaded.probeMaxMs)} ms; named: ${culprits[0] ?? 'nothing'}`,
          expected: 'blocked: one after another; the twin: the loop free; the function named',
          verdict: problems.length ? `MISMATCH: ${problems.join('; ')}` : 'ok',
          ok: problems.length === 0,
        });
      }
    },
    { running, timeoutMs: 120_000 }
  );
  return rows;
}
