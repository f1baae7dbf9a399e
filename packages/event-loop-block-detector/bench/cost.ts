// The detector's cost while nothing blocks: two plain node:http servers, one with the detector and
// its request tracker, one without, take the same load at the same moment (autocannon, keep-alive),
// both pinned to one core and the load to the other where taskset is found, so that whatever else
// the machine does hits both alike; which load starts first alternates. Each round gives one
// ratio of CPU per request (every thread of each process, the watcher's included, from
// /proc/PID/task/TID/schedstat); the verdict is their median, against the goal of at most 1.01.
// Then both servers idle: the standing cost in ms of CPU a second. Linux only (schedstat).
// `npm run bench -- --quick` for fewer, shorter rounds.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 6 : 16;
const SECONDS = quick ? 3 : 4;
const IDLE_SECONDS = quick ? 5 : 20;
const CONNECTIONS = 10;
const GOAL = 1.01;
const ENTRY = pathToFileURL(fileURLToPath(new URL('../dist/index.js', import.meta.url))).href;

const SERVER = `
import http from 'node:http';
import { startBlockDetector, trackRequests } from ${JSON.stringify(ENTRY)};
const body = JSON.stringify({ id: 1, title: 'a todo', done: false });
const handler = (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body);
};
let listener = handler;
if (process.env.DETECTOR === 'on') {
  await startBlockDetector({ onBlock: (b) => console.error('block', b.ms, b.culprit) });
  listener = trackRequests(handler);
}
const server = http.createServer(listener);
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

const schedstatMs = (pid: number, tid: string) =>
  Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]) / 1e6;
const cpuMs = (pid: number) => readdirSync(`/proc/${pid}/task`).reduce((ms, tid) => ms + schedstatMs(pid, tid), 0);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const spread = (xs: number[], f: (x: number) => string) =>
  `${f(median(xs))} (${f(Math.min(...xs))}-${f(Math.max(...xs))})`;

function taskset (pid: number, cores: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cores, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function start (dir: string, detector: 'on' | 'off'): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [join(dir, 'server.mjs')], {
    env: { ...process.env, DETECTOR: detector },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`the ${detector} server exited (${code})`)));
    createInterface({ input: proc.stdout! }).once('line', (line) => resolve(Number(line)));
  });
  return { proc, port };
}

const load = (port: number, seconds: number) =>
  autocannon({ url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, duration: seconds });

const dir = mkdtempSync(join(tmpdir(), 'elbd-bench-'));
writeFileSync(join(dir, 'server.mjs'), SERVER);
const servers = await Promise.all([start(dir, 'on'), start(dir, 'off')]);
try {
  const cores = availableParallelism();
  const pids = servers.map((s) => s.proc.pid!);
  const pinned =
    cores >= 2 && pids.every((pid) => taskset(pid, String(cores - 1))) && taskset(process.pid, `0-${cores - 2}`);
  await Promise.all(servers.map((s) => load(s.port, quick ? 1 : 3)));
  const perRequest: number[][] = [[], []];
  const rps: number[][] = [[], []];
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const cpu0 = pids.map(cpuMs);
    // Started in turns first: whichever load starts first could have the core a moment sooner.
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    const started = order.map((i) => load(servers[i]!.port, SECONDS));
    const results = order[0] === 0 ? await Promise.all(started) : (await Promise.all(started)).reverse();
    const cpu = pids.map((pid, i) => cpuMs(pid) - cpu0[i]!);
    results.forEach((r, i) => {
      perRequest[i]!.push((cpu[i]! * 1000) / r.requests.total);
      rps[i]!.push(r.requests.average);
    });
    ratios.push(perRequest[0]![round]! / perRequest[1]![round]!);
  }
  const idle0 = pids.map(cpuMs);
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  const idle = pids.map((pid, i) => (cpuMs(pid) - idle0[i]!) / IDLE_SECONDS);
  const us = (x: number) => `${x.toFixed(1)} µs`;
  console.log(
    `The detector's cost while nothing blocks: plain node:http, autocannon -c${CONNECTIONS} against both servers ` +
      `at once, ${ROUNDS} rounds of ${SECONDS} s; median (min-max); CPU of every thread of each process\n`
  );
  console.log('| server | CPU / request | req/s | idle CPU |');
  console.log('|---|---|---|---|');
  ['detector on (+ trackRequests)', 'detector off'].forEach((name, i) =>
    console.log(
      `| ${name} | ${spread(perRequest[i]!, us)} | ${spread(rps[i]!, (x) => String(Math.round(x)))} | ` +
        `${idle[i]!.toFixed(2)} ms/s |`
    )
  );
  const verdict = median(ratios);
  console.log(
    `\nCPU per request, on / off: ${verdict.toFixed(3)} x (median of the rounds' ratios; ` +
      `${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}); goal at most ${GOAL}: ` +
      `${verdict <= GOAL ? 'met' : 'MISSED'}`
  );
  const standing = (idle[0]! - idle[1]!).toFixed(2);
  console.log(`Idle, on minus off: ${standing} ms of CPU a second (the heartbeat and the watcher)`);
  console.log(
    pinned ? 'Both servers on the last core, the load on the others.' : 'Not pinned (no taskset, or one core).'
  );
} finally {
  for (const s of servers) s.proc.kill();
  rmSync(dir, { recursive: true, force: true });
}
