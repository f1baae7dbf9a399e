// The live dashboard: reads the monitor thread's Server-Sent Events and draws with Chart.js.
/* global Chart */
'use strict';

const WINDOW_S = 60;
/** The most requests the timeline draws: the newest ones in its window. */
const MAX_BARS = 300;
const ROUTES = ['/sleep/node/', '/sleep/python/', '/sleep/postgres/', '/todos/', '/work/postgres/'];
const COLORS = { '/sleep/node/': '#2e9b57', '/sleep/python/': '#7fb800', '/sleep/postgres/': '#2f6fd6', '/todos/': '#e07b00', '/work/postgres/': '#16a085' };
const WORK = '/work/postgres/';
/** The work route's median is taken over its last MEDIAN_OF responses. */
const MEDIAN_OF = 25;

const $ = (id) => document.getElementById(id);
const state = {
  settings: {},
  /** Frames received per worker (one EventSource per worker's monitor). */
  workers: {},
  max: { inUse: 0, waiting: 0, lagMs: 0, inFlight: 0 },
  requests: [],
  /** Blocks the detectors named, newest last: { worker, at, ms, frames, culprit, route }. */
  blocks: [],
  /** Per worker: is its block detector on (BLOCK_DETECTOR), and its threshold. */
  detectors: {},
  /** Connections held past LEAK_DETECTION, newest last, the latest report of each: { worker, id, at, heldMs, released, ... }. */
  leaks: [],
  frames: 0,
  drawnAt: 0,
  addRequests,
  drawTimeline,
};
window.dashboard = state; // for the browser test and the curious

Chart.defaults.animation = false;
Chart.defaults.font.size = 11;

function lineChart (canvas, datasets, yTitle) {
  return new Chart(canvas, {
    type: 'line',
    data: { datasets: datasets.map((d) => ({ pointRadius: 0, borderWidth: 2, stepped: true, data: [], ...d })) },
    options: {
      maintainAspectRatio: false,
      parsing: false,
      scales: {
        x: { type: 'linear', min: -WINDOW_S, max: 0, title: { display: true, text: 'seconds ago' } },
        y: { beginAtZero: true, title: { display: true, text: yTitle } },
      },
      plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
    },
  });
}

const inflightChart = lineChart($('chart-inflight'), ROUTES.map((r) => ({ label: r, borderColor: COLORS[r] })), 'requests');
const poolChart = lineChart($('chart-pool'), [
  { label: 'in use', borderColor: '#2f6fd6' },
  { label: 'waiting', borderColor: '#f0a020' },
  { label: 'size + overflow', borderColor: '#9aa3b0', borderDash: [4, 4], borderWidth: 1 },
], 'connections / requests');
// The work route's latency, one point per response, beside the pool: as the pool grows past
// PostgreSQL's cores, throughput stays flat and this climbs (npm run sizing measures it).
const workChart = lineChart($('chart-work'), [
  { label: 'one response (ms)', borderColor: '#16a085', backgroundColor: '#16a085', showLine: false, pointRadius: 2, stepped: false },
  { label: `median of the last ${MEDIAN_OF} (ms)`, borderColor: '#0b5345', stepped: false },
], 'ms');
// Every worker's live stream is at /live/<worker>/events: on the monitor's port (the page may be
// served by any worker), or, with no port given, on the page's own origin (a reverse proxy).
const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const LIVE_BASE = meta('live-port') ? `${location.protocol}//${location.hostname}:${meta('live-port')}` : '';
const MONITORS = meta('live-workers').split(',').map((worker) => ({ worker: Number(worker) }));
const LAG_COLORS = ['#c0392b', '#8e44ad', '#d35400', '#2c3e50', '#16a085', '#7f8c8d'];
// Event-loop lag is per process: one line per worker, side by side, never summed.
const lagChart = lineChart($('chart-lag'), [
  ...MONITORS.map((m, i) => ({
    label: MONITORS.length > 1 ? `worker ${m.worker} (ms)` : 'lag (ms)', borderColor: LAG_COLORS[i % LAG_COLORS.length], stepped: false,
  })),
  { label: 'a named block (ms)', borderColor: '#8a1010', backgroundColor: '#8a1010', showLine: false, pointStyle: 'triangle', pointRadius: 6 },
  { label: "libuv's thread pool: a task's wait (ms)", borderColor: '#2471a3', borderDash: [6, 3], stepped: false },
], 'ms');
const BLOCK_MARKS = MONITORS.length;
const THREAD_POOL = MONITORS.length + 1;

// Chart.js draws a higher `order` first: the whole-request bar underneath, its phases on top.
const PHASES = [
  { label: 'the rest', color: '#b8c0cc', order: 2 },
  { label: 'waiting for a connection', color: '#f0a020', order: 1 },
  { label: 'holding a core connection', color: '#2f6fd6', order: 1 },
  { label: 'holding an overflow connection', color: '#8e44ad', order: 1 },
];
// The timeline slides with the other charts ("seconds ago" on x): it shows the requests that
// ended in the last WINDOW_S seconds, over just the time they span (at least MIN_SPAN_S), so that
// a burst fills it as it happens and the one before slides out, however long ago that was.
const MIN_SPAN_S = 10;
const timeline = new Chart($('chart-timeline'), {
  type: 'bar',
  data: { labels: [], datasets: PHASES.map((p) => ({ label: p.label, backgroundColor: p.color, order: p.order, data: [], grouped: false, barPercentage: 1, categoryPercentage: 0.9, maxBarThickness: 14 })) },
  options: {
    indexAxis: 'y',
    maintainAspectRatio: false,
    scales: {
      x: { type: 'linear', min: -WINDOW_S, max: 0, title: { display: true, text: 'seconds ago (each bar: one request, from arrival to response)' } },
      y: { ticks: { autoSkip: true, maxTicksLimit: 15 }, title: { display: true, text: 'requests, by arrival' } },
    },
    plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${fmtRange(c.raw)}` } } },
  },
});

function fmtRange (r) {
  return Array.isArray(r) ? `${(r[1] - r[0]).toFixed(2)} s, ended ${(-r[1]).toFixed(1)} s ago` : '';
}

function push (chart, index, t, y) {
  const data = chart.data.datasets[index].data;
  data.push({ x: t, y });
  while (data.length && data[0].x < t - WINDOW_S - 1) data.shift();
}

// Charts are drawn against "seconds ago": shift every point's x by the newest time.
function redraw (chart, nowS) {
  const x = chart.options.scales.x;
  x.min = nowS - WINDOW_S;
  x.max = nowS;
  // Ticks every 10 s counted back from now (Chart.js would place them at round absolute times).
  x.afterBuildTicks = (axis) => { axis.ticks = [60, 50, 40, 30, 20, 10, 0].map((ago) => ({ value: nowS - ago })); };
  x.ticks = { callback: (v) => (v - nowS).toFixed(0) };
  chart.update('none');
}

function showSettings (s) {
  const rows = [
    ['app sleep', s.appMode], ['database calls', s.dbMode], ['pool', s.pool === 'none' ? 'none (a connection per request)' : `${s.poolSize} + ${s.poolMaxOverflow} overflow, timeout ${s.poolTimeout} s, queue max ${s.poolQueueMax}`],
    ['sleep', `${s.sleepSeconds} s`], ['workers', s.workers > 1 ? `${s.workers}: this page reads ${MONITORS.length} (${MONITORS.map((m) => m.worker).join(', ')}), summed; lag per worker` : '1'],
    [s.pgbouncer || s.pgbouncerUrl ? 'database (through PgBouncer)' : 'database', s.database],
  ];
  if (s.pgbouncer) rows.push(['PgBouncer', `transaction mode, ${s.pgbouncerPoolSize} server connections, max ${s.pgbouncerMaxClients} clients`]);
  $('settings').replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    return [dt, dd];
  }));
  const cap = MONITORS.length * (s.poolSize + s.poolMaxOverflow);
  $('pool-cap').textContent = s.pool === 'none' ? 'no cap' : MONITORS.length > 1 ? `of ${cap} (${MONITORS.length} x ${s.poolSize + s.poolMaxOverflow})` : `of ${cap}`;
}

/** Each worker's newest frame. */
const latest = new Map();
/** A worker whose monitor has sent nothing for this long (it died, or is being replaced) is left out. */
const STALE_MS = 2000;

/**
 * One frame for the whole process from every worker's newest: in-flight requests and the pools
 * summed, the database's view from the frame that just came (every monitor reads the same server).
 */
function combine (f) {
  const fresh = [...latest.entries()].filter(([, x]) => x.t >= f.t - STALE_MS);
  const sum = (get) => fresh.reduce((a, [, x]) => a + get(x), 0);
  const inFlight = Object.fromEntries(ROUTES.map((r) => [r, sum((x) => x.inFlight[r] ?? 0)]));
  const worst = fresh.reduce((a, [w, x]) => (x.lagMs > a.lagMs ? { worker: w, lagMs: x.lagMs } : a), { worker: 0, lagMs: 0 });
  const pool = {
    inUse: sum((x) => x.pool.inUse),
    waiting: sum((x) => x.pool.waiting),
    closed: sum((x) => x.pool.closed ?? 0),
    resets: sum((x) => x.pool.resets ?? 0),
    queryTimeouts: sum((x) => x.pool.queryTimeouts ?? 0),
    refillBackoffMs: Math.max(0, ...fresh.map(([, x]) => x.pool.refillBackoffMs ?? 0)),
  };
  const threadPoolMs = Math.max(0, ...fresh.map(([, x]) => x.threadPoolMs ?? 0));
  return { t: f.t, inFlight, pool, lagMs: worst.lagMs, worstWorker: worst.worker, threadPoolMs, db: f.db, requests: f.requests };
}

function onFrame (f) {
  state.frames++;
  const t = f.t / 1000;
  const inFlight = ROUTES.reduce((a, r) => a + f.inFlight[r], 0);
  ROUTES.forEach((r, i) => push(inflightChart, i, t, f.inFlight[r]));
  push(poolChart, 0, t, f.pool.inUse);
  push(poolChart, 1, t, f.pool.waiting);
  push(poolChart, 2, t, state.settings.pool === 'none' ? null : MONITORS.length * (state.settings.poolSize + state.settings.poolMaxOverflow));
  MONITORS.forEach((m, i) => {
    const own = latest.get(m.worker);
    push(lagChart, i, t, own && own.t >= f.t - STALE_MS ? Math.round(own.lagMs) : null);
  });
  push(lagChart, THREAD_POOL, t, Math.round(f.threadPoolMs));
  addWorkPoints(f.requests);
  // The block marks are kept by the block list; only the window's are drawn.
  lagChart.data.datasets[BLOCK_MARKS].data = state.blocks.filter((b) => (b.at + b.ms) / 1000 >= t - WINDOW_S - 1).map((b) => ({ x: (b.at + b.ms) / 1000, y: Math.round(b.ms) }));
  for (const c of [inflightChart, poolChart, workChart, lagChart]) redraw(c, t);

  $('in-flight').textContent = inFlight;
  $('in-use').textContent = f.pool.inUse;
  $('waiting').textContent = f.pool.waiting;
  $('untrusted').textContent = f.pool.closed ?? 0;
  $('recovery').textContent = `${f.pool.resets ?? 0} reset, ${f.pool.queryTimeouts ?? 0} timed out` +
    (f.pool.refillBackoffMs ? `; reconnecting within ${(f.pool.refillBackoffMs / 1000).toFixed(1)} s` : '');
  $('lag').textContent = f.lagMs >= 1000 ? `${(f.lagMs / 1000).toFixed(1)} s` : `${Math.round(f.lagMs)} ms`;
  $('threadpool').textContent = f.threadPoolMs >= 1000 ? `${(f.threadPoolMs / 1000).toFixed(1)} s` : `${f.threadPoolMs.toFixed(f.threadPoolMs < 10 ? 1 : 0)} ms`;
  state.max.inUse = Math.max(state.max.inUse, f.pool.inUse);
  state.max.waiting = Math.max(state.max.waiting, f.pool.waiting);
  state.max.lagMs = Math.max(state.max.lagMs, f.lagMs);
  state.max.inFlight = Math.max(state.max.inFlight, inFlight);

  const status = $('status');
  if (f.lagMs > 200) {
    status.className = 'status blocked';
    const whose = MONITORS.length > 1 ? `Worker ${f.worstWorker}'s event loop is blocked: none of its` : 'The event loop is blocked: no';
    status.textContent = `${whose} requests can make progress for ${(f.lagMs / 1000).toFixed(1)} s so far (what held it is named below once it lets go).`;
  } else if (f.db.error) {
    status.className = 'status down';
    status.textContent = `The monitor cannot reach PostgreSQL: ${f.db.error}`;
  } else {
    status.className = 'status';
    status.textContent = `Live: ${inFlight} request(s) in flight, event loop responsive.`;
  }
  $('db-sleeping').textContent = f.db.sleeping;
  $('db-states').textContent = Object.entries(f.db.states).map(([k, v]) => `${v} ${k}`).join(', ');
  showBouncer(f.db.bouncer);

  if (f.requests.length) addRequests(f.requests);
  // Redrawn at most twice a second: the bars slide, but 300 of them need not move at 10 frames a second.
  if (f.t - state.drawnAt >= 500 || f.requests.length) {
    state.drawnAt = f.t;
    drawTimeline(f.t);
  }
}

// Behind PgBouncer, the pool's "in use" includes clients that PgBouncer still queues.
function showBouncer (b) {
  $('bouncer').hidden = !b;
  if (!b) return;
  if (b.error) {
    $('bouncer-waiting').textContent = '?';
    $('bouncer-servers').textContent = `admin console: ${b.error}`;
    return;
  }
  $('bouncer-waiting').textContent = b.clientsWaiting;
  const wait = b.clientsWaiting ? `, longest wait ${(b.maxWaitMs / 1000).toFixed(1)} s` : '';
  $('bouncer-servers').textContent = `${b.serversActive} of ${b.serversActive + b.serversIdle + b.serversOther} server connections active${wait}`;
}

const workLatencies = [];
const workMedian = () => [...workLatencies].sort((a, b) => a - b)[Math.floor(workLatencies.length / 2)];

function addWorkPoints (list) {
  for (const r of list) {
    if (r.route !== WORK || r.status !== 200) continue;
    const ms = r.end - r.start;
    workLatencies.push(ms);
    if (workLatencies.length > MEDIAN_OF) workLatencies.shift();
    push(workChart, 0, r.end / 1000, Math.round(ms));
    push(workChart, 1, r.end / 1000, Math.round(workMedian()));
  }
  $('work-median').textContent = workLatencies.length ? `${Math.round(workMedian())} ms` : '-';
}

function addRequests (list) {
  state.requests.push(...list);
  if (state.requests.length > MAX_BARS) state.requests.splice(0, state.requests.length - MAX_BARS);
}

/** Redraws the timeline for the window ending at `nowMs`: the requests that ended within it. */
function drawTimeline (nowMs) {
  const from = nowMs - WINDOW_S * 1000;
  state.requests = state.requests.filter((r) => r.end >= from);
  const shown = [...state.requests].sort((a, b) => a.start - b.start);
  const s = (ms) => (ms - nowMs) / 1000;
  const span = shown.length ? Math.min(WINDOW_S, Math.max(MIN_SPAN_S, Math.ceil((nowMs - shown[0].start) / 5000) * 5)) : WINDOW_S;
  timeline.options.scales.x.min = -span;
  timeline.data.labels = shown.map((r) => r.route);
  const [rest, wait, core, overflow] = timeline.data.datasets;
  rest.data = shown.map((r) => [s(r.start), s(r.end)]);
  wait.data = shown.map((r) => (r.poolStart ? [s(r.poolStart), s(r.poolAcquired)] : null));
  core.data = shown.map((r) => (r.poolAcquired && !r.overflow ? [s(r.poolAcquired), s(r.poolReleased)] : null));
  overflow.data = shown.map((r) => (r.poolAcquired && r.overflow ? [s(r.poolAcquired), s(r.poolReleased)] : null));
  timeline.update('none');
}

const KEEP_BLOCKS = 20;
const frameText = (f) => `${f.fn} ${f.file}:${f.line}`;

function addBlocks (worker, list) {
  if (!list || !list.length) return;
  for (const b of list) {
    if (!state.blocks.some((x) => x.worker === worker && x.at === b.at)) state.blocks.push({ worker, ...b });
  }
  state.blocks.sort((a, b) => a.at - b.at);
  if (state.blocks.length > KEEP_BLOCKS) state.blocks.splice(0, state.blocks.length - KEEP_BLOCKS);
  drawBlocks();
}

/**
 * `, CPU 97 %` or `, wait 98 %`: which the stall mostly was. Time ready to run but kept off the cores
 * by other work (runnableShare) counts as CPU wanted.
 */
function cpuOrWait (b) {
  if (b.cpuShare === undefined || b.cpuShare === null) return '';
  const wanted = Math.min(1, b.cpuShare + (b.runnableShare ?? 0));
  return wanted >= 0.5 ? `, CPU ${Math.round(wanted * 100)} %` : `, wait ${Math.round((1 - wanted) * 100)} %`;
}

/** The panel: the newest blocks first, each with when, how long, the function to fix, the route and the stack. */
function drawBlocks () {
  const detectors = Object.values(state.detectors);
  const on = detectors.filter((d) => d.on);
  const note = $('blocks-note');
  if (!detectors.length) note.textContent = 'Waiting for the monitor…';
  else if (!on.length) note.textContent = 'The block detector is off (BLOCK_DETECTOR=off): nothing is named.';
  else if (!state.blocks.length) note.textContent = `Nothing has blocked the event loop for more than ${on[0].thresholdMs} ms since this page opened. Try /block/cpu/, or five at once: npm run client -- 5 --route /block/cpu/.`;
  else note.textContent = `Each time the event loop stalled for more than ${on[0].thresholdMs} ms, the detector's watcher thread interrupted it, read its stack and let it go: the function of ours innermost in that stack is the one to fix. CPU: the share of the stall spent computing (cut it into slices, /partition/cpu/, or move it off the loop, /offload/...); wait: the thread slept (a synchronous call with an asynchronous form).`;
  const table = $('blocks');
  table.hidden = state.blocks.length === 0;
  const body = table.tBodies[0];
  body.replaceChildren(...[...state.blocks].reverse().map((b) => {
    const tr = document.createElement('tr');
    const named = b.culprit ?? b.frames[0];
    const cells = [
      new Date(b.at).toLocaleTimeString() + (MONITORS.length > 1 ? ` (worker ${b.worker})` : ''),
      (b.ms >= 1000 ? `${(b.ms / 1000).toFixed(2)} s` : `${Math.round(b.ms)} ms`) + cpuOrWait(b),
      named ? `${named.fn} (${named.file}:${named.line})` : '(the stack could not be taken in time)',
      b.route ?? '(no handler running)',
      b.frames.slice(0, 4).map(frameText).join(' ← '),
    ];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 2) td.className = 'fn';
      if (i === 4) td.className = 'stack';
      tr.append(td);
    });
    return tr;
  }));
}

const KEEP_LEAKS = 20;
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** A leak is reported twice (held, then given back): the later report takes the earlier one's row. */
function addLeaks (worker, list) {
  if (!list || !list.length) return;
  for (const l of list) {
    const i = state.leaks.findIndex((x) => x.worker === worker && x.id === l.id);
    if (i < 0) state.leaks.push({ worker, ...l });
    else if (l.released || !state.leaks[i].released) state.leaks[i] = { worker, ...l };
  }
  state.leaks.sort((a, b) => (a.at - a.heldMs) - (b.at - b.heldMs));
  if (state.leaks.length > KEEP_LEAKS) state.leaks.splice(0, state.leaks.length - KEEP_LEAKS);
  drawLeaks();
}

/** The panel: the newest leaks first, each with when it was checked out, for how long, by what code, for which route. */
function drawLeaks () {
  const note = $('leaks-note');
  const { leakDetection, dbMode } = state.settings;
  if (leakDetection === undefined) note.textContent = 'Waiting for the monitor…';
  else if (!leakDetection || dbMode === 'blocking') {
    note.textContent = 'Leak detection is off (LEAK_DETECTION=0, or DB_MODE=blocking): nothing is reported.';
  } else if (!state.leaks.length) {
    note.textContent = `No connection has been held for more than ${leakDetection} s. Try /leak/?seconds=${leakDetection + 5}: ` +
      'it answers at once and keeps its connection, as a handler that forgot to release it would.';
  } else {
    note.textContent = `Each connection held for more than ${leakDetection} s was reported by the pool with the stack of the code ` +
      'that checked it out: the function of ours innermost in that stack is the one that kept it.';
  }
  const table = $('leaks');
  table.hidden = state.leaks.length === 0;
  table.tBodies[0].replaceChildren(...[...state.leaks].reverse().map((l) => {
    const tr = document.createElement('tr');
    const named = l.culprit ?? l.frames[0];
    const cells = [
      new Date(l.at - l.heldMs).toLocaleTimeString() + (MONITORS.length > 1 ? ` (worker ${l.worker})` : ''),
      l.released ? `${seconds(l.heldMs)}, given back` : `over ${seconds(l.heldMs)}, still held`,
      named ? `${named.fn} (${named.file}:${named.line})` : '(code outside the project)',
      l.route ?? '(outside any request)',
      l.frames.slice(0, 4).map(frameText).join(' ← '),
    ];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 1 && !l.released) td.className = 'held';
      if (i === 2) td.className = 'fn';
      if (i === 4) td.className = 'stack';
      tr.append(td);
    });
    return tr;
  }));
}

function connect ({ worker }) {
  const source = new EventSource(`${LIVE_BASE}/live/${worker}/events`);
  source.addEventListener('hello', (e) => {
    const hello = JSON.parse(e.data);
    state.settings = hello.settings;
    showSettings(hello.settings);
    if (hello.recent.length) {
      addRequests(hello.recent);
      addWorkPoints(hello.recent);
    }
    state.detectors[worker] = hello.detector;
    drawBlocks();
    addBlocks(worker, hello.blocks);
    drawLeaks();
    addLeaks(worker, hello.leaks);
  });
  source.addEventListener('frame', (e) => {
    const f = JSON.parse(e.data);
    state.workers[worker] = (state.workers[worker] ?? 0) + 1;
    addBlocks(worker, f.blocks);
    addLeaks(worker, f.leaks);
    latest.set(worker, f);
    onFrame(combine(f));
  });
  source.onerror = () => {
    $('status').className = 'status down';
    $('status').textContent = MONITORS.length > 1
      ? `Worker ${worker}'s monitor is not answering (the service stopped, or the worker is being replaced). Retrying…`
      : 'The monitor is not answering (the service stopped?). Retrying…';
  };
}

MONITORS.forEach(connect);

// With replicas: each server's pool and each replica's lag, from /servers on the page's origin.
const REPLICAS = Number(meta('replicas') || 0);
const SERVER_POLL_MS = 1000;
const replicaLagChart = REPLICAS
  ? lineChart($('chart-replica-lag'), Array.from({ length: REPLICAS }, (_, i) => ({ label: `replica-${i + 1} (ms behind)`, borderColor: LAG_COLORS[i % LAG_COLORS.length], stepped: false })), 'ms')
  : undefined;

function bytes (n) {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} kB` : `${n} B`;
}

function showServers (view) {
  state.servers = view;
  const t = Date.now() / 1000;
  view.servers.filter((x) => x.replica).forEach((x, i) => push(replicaLagChart, i, t, x.replica.up ? Math.round(x.replica.lagSeconds * 1000) : null));
  redraw(replicaLagChart, t);
  $('servers').tBodies[0].replaceChildren(...view.servers.map((x) => {
    const r = x.replica;
    const rotation = !r ? 'writes, and reads past the replicas' : r.inRotation ? 'in rotation' : `out: ${r.reason ?? 'not usable'}`;
    const cells = [
      // Behind a proxy that routes by role (HAProxy before Patroni), the address says which member answers.
      x.at ? `${x.name} at ${x.at}` : x.name,
      rotation,
      `${x.pool.inUse} of ${x.pool.size + x.pool.maxOverflow}`,
      String(x.pool.waiting),
      r ? (r.up ? `${bytes(r.lagBytes)}, ${r.lagSeconds.toFixed(2)} s` : 'down') : '-',
      String(view.reads?.served[x.name] ?? 0),
    ];
    const tr = document.createElement('tr');
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 1 && r && !r.inRotation) td.className = 'out';
      tr.append(td);
    });
    return tr;
  }));
}

async function pollServers () {
  try {
    const res = await fetch('/servers');
    if (res.ok) showServers(await res.json());
  } catch {
    // The service is restarting or blocked: the next poll tries again.
  }
  setTimeout(pollServers, SERVER_POLL_MS);
}

if (REPLICAS) {
  // The figures above are of the primary's pool; each server's is in the panel.
  $('in-use').previousElementSibling.textContent = "primary's pool in use";
  $('servers-panel').hidden = false;
  pollServers();
}
