// The hosts demo's last scenario: a rolling restart under load drops nothing; then a host killed
// outright loses only what it held, and HAProxy takes it out.
import type { ChildProcess } from 'node:child_process';
import { errorMessage } from '../../client/load.ts';
import { steady, type SteadyResult } from '../../client/steady.ts';
import { s, type Verdict } from '../verdicts.ts';
import { name, SHUTDOWN_DELAY, type Fleet } from './fleet.ts';

/** Each client's pause between requests: about 100 requests a second per client. */
const THINK_MS = 10;

/** (c) A rolling restart under load drops nothing; then a host killed outright. */
export async function restarts (
  fleet: Fleet,
  pause: (ms: number) => Promise<unknown>,
  quick: boolean,
  out: (line: string) => void
): Promise<Verdict[]> {
  const { proxy, hosts } = fleet;
  const n = fleet.net.hosts.length;
  // Steady traffic, not a saturating loop: the hosts that restart need the CPU to start. --quick
  // sends a quarter of it: still thousands of requests across the restarts, for a fraction of the CPU.
  const clients = (quick ? 2 : 8) * n;
  const thinkMs = THINK_MS;
  const load = () => {
    const stop = new AbortController();
    const result = steady({
      url: `${proxy.url}/todos/`,
      concurrency: clients,
      seconds: 600,
      signal: stop.signal,
      timeoutMs: 30_000,
      thinkMs,
    });
    return { result, stop: () => stop.abort() };
  };
  out(
    `  c. A rolling restart: ${clients} clients send GET /todos/ through HAProxy, each every ${THINK_MS} ms after ` +
      'its last answer; each host in turn gets SIGTERM'
  );
  out(
    `     (/readyz fails at once, SHUTDOWN_DELAY=${SHUTDOWN_DELAY} s until it stops listening, then it drains), and ` +
      'is started again.'
  );
  const rolling = load();
  await pause(1000);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const h = hosts[i]!;
    h.proc.kill('SIGTERM');
    const outAt = await proxy.until(name(i), 'DOWN');
    const code = await exited(h.proc);
    await fleet.startHost(i);
    out(
      `     ${name(i)}: out of HAProxy ${(outAt / 1000).toFixed(2)} s after SIGTERM, exit code ${code}, back in ` +
        `after ${s((performance.now() - t0) / 1000)}`
    );
  }
  await pause(1000);
  rolling.stop();
  const c1 = await rolling.result;
  const failedC1 = c1.requests - c1.ok;
  out(`     ${c1.ok} of ${c1.requests} requests answered 200 during the restarts (${failures(c1)})`);

  const victim = n - 1;
  out(`     Then SIGKILL ${name(victim)} (its primary; its workers die with it) while the load runs:`);
  const killing = load();
  await pause(1000);
  const retriesSoFar = async () => (await proxy.stats()).reduce((a, x) => a + x.retries + x.redispatches, 0);
  const before = await retriesSoFar();
  hosts[victim]!.proc.kill('SIGKILL');
  const downAfter = await proxy.until(name(victim), 'DOWN').catch(() => NaN);
  await exited(hosts[victim]!.proc);
  hosts[victim] = undefined;
  await pause(2000);
  const seconds = quick ? 1 : 2;
  const after = steady({ url: `${proxy.url}/todos/`, concurrency: clients, seconds, timeoutMs: 30_000, thinkMs });
  killing.stop();
  const c2 = await killing.result;
  const c3 = await after;
  const retried = (await retriesSoFar()) - before;
  const failedC2 = c2.requests - c2.ok;
  out(
    `     out of HAProxy after ${(downAfter / 1000).toFixed(2)} s; ${failedC2} of ${c2.requests} requests ` +
      `failed (${failures(c2)}), ${retried} connection(s) retried on another host;`
  );
  out(`     the ${n - 1} left: ${c3.ok} of ${c3.requests} x 200 in the next ${seconds} s`);
  const okC2 = Number.isFinite(downAfter) && c3.requests > 0 && c3.ok === c3.requests;
  out('');
  out("  HAProxy's configuration, as the demo wrote it (docs/scaling.md):");
  for (const line of proxy.config.trim().split('\n')) out(`     ${line}`);
  return [
    {
      claim: `c. rolling restart of ${n} hosts (SIGTERM)`,
      measured: `${failedC1} of ${c1.requests} failed`,
      expected: '0 failed',
      verdict: failedC1 === 0 ? 'ok' : `MISMATCH: ${failedC1} failed`,
      ok: failedC1 === 0,
    },
    {
      claim: `c. ${name(victim)} killed (SIGKILL)`,
      measured:
        `${failedC2} of ${c2.requests} failed; out in ${(downAfter / 1000).toFixed(2)} s; ` +
        `then ${c3.ok}/${c3.requests} ok`,
      expected: 'the requests it held fail; taken out; the rest serve',
      verdict: okC2 ? 'ok' : 'MISMATCH: not taken out, or the others failed',
      ok: okC2,
    },
  ];
}

function exited (proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

/** "3 x HTTP 503, 2 reset", or "no errors". */
function failures (r: SteadyResult): string {
  const http = Object.entries(r.statuses).map(
    ([status, count]) => `${count} x HTTP ${status}: ${errorMessage(r.samples[Number(status)] ?? '')}`
  );
  const other = Object.entries(r.errors)
    .filter(([k]) => k !== 'http')
    .map(([k, v]) => `${v} ${k}`);
  return [...http, ...other].join(', ') || 'no errors';
}
