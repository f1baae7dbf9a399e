// A self-contained HTML report: one timeline per burst (a bar per request, from send
// to response) drawn with Chart.js, which is inlined so the file opens offline.
import { readFileSync, writeFileSync } from 'node:fs';
import { chartJsFile } from '../paths.ts';
import type { Burst } from './load.ts';
import type { OpenLoopRun } from './open-loop.ts';
import { percentilesText, spectrum } from './percentiles.ts';
import { latencyText, summarize, type Summary } from './summary.ts';
import type { SweepResult } from './sweep.ts';

export interface ReportSection {
  title: string;
  note?: string;
  bursts: Burst[];
  /** Open-loop runs: latency over time, corrected and not. */
  openLoops?: OpenLoopRun[];
  /** A rate sweep: latency against offered rate, with the predicted knee. */
  sweep?: SweepResult;
}

/** [nines, seconds] pairs: a percentile spectrum. */
type Spectrum = [number, number][];

interface ChartData {
  title: string;
  note?: string;
  bursts: { url: string; totalMs: number; summary: Summary; bars: [number, number, number][]; spectrum: Spectrum }[];
  openLoops: {
    url: string;
    rate: number;
    keptRate: boolean;
    why?: string;
    text: string;
    points: [number, number, number, number][];
    corrected: Spectrum;
    uncorrected: Spectrum;
  }[];
  sweep?: {
    /** [offered rate, achieved rate, p50, p99, p99.9, max, predicted p50 or null, predicted max or null] (s). */
    rows: [number, number, number, number, number, number, number | null, number | null][];
    capacity?: number;
    capacityText?: string;
    measured?: number;
  };
}

const spectrumOf = (ms: number[]): Spectrum => spectrum(ms).map((p) => [p.nines, round(p.value)]);

const chartJs = () => readFileSync(chartJsFile, 'utf8');

export function writeReport (file: string, title: string, sections: ReportSection[]): void {
  const data: ChartData[] = sections.map((s) => ({
    title: s.title,
    note: s.note,
    bursts: s.bursts.map((b) => ({
      url: b.url,
      totalMs: b.totalMs,
      summary: summarize(b),
      // [start s, end s, status] sorted by response time, so that waves show as steps.
      bars: [...b.results].sort((x, y) => x.end - y.end).map((r) => [round(r.start), round(r.end), r.status ?? 0]),
      spectrum: spectrumOf(b.results.map((r) => r.end - r.start)),
    })),
    openLoops: (s.openLoops ?? []).map((run) => ({
      url: run.url,
      rate: run.rate,
      keptRate: run.keptRate,
      why: run.why,
      text:
        `${run.ok} ok, ${run.errors} errors; corrected ${percentilesText(run.corrected)}; from the actual send ` +
        percentilesText(run.uncorrected),
      // [intended send s, corrected latency s, latency from the actual send s, status], in the order they were meant to
      // leave.
      points: [...run.results]
        .sort((x, y) => x.intended - y.intended)
        .map((r) => [round(r.intended), round(r.end - r.intended), round(r.end - r.sent), r.status ?? 0]),
      corrected: spectrumOf(run.results.map((r) => r.end - r.intended)),
      uncorrected: spectrumOf(run.results.map((r) => r.end - r.sent)),
    })),
    ...(s.sweep ? { sweep: sweepData(s.sweep) } : {}),
  }));
  writeFileSync(file, page(title, data));
}

function sweepData ({ points, capacity, measured }: SweepResult): NonNullable<ChartData['sweep']> {
  return {
    rows: points.map(({ rate, run, predicted }) => [
      rate,
      run.achievedRate,
      round(run.corrected.p50),
      round(run.corrected.p99),
      round(run.corrected.p999),
      round(run.corrected.max),
      predicted ? round(predicted.p50) : null,
      predicted ? round(predicted.max) : null,
    ]),
    capacity: capacity?.rate,
    capacityText: capacity?.source,
    measured,
  };
}

const round = (ms: number) => Math.round(ms) / 1000;

const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function page (title: string, data: ChartData[]): string {
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const rows = data
    .flatMap((section) =>
      section.bursts.map(
        (b) =>
          `<tr><td>${escapeHtml(section.title)}</td>` +
          `<td>${escapeHtml(new URL(b.url).pathname + new URL(b.url).search)}</td><td>${b.bars.length}</td>` +
          `<td>${b.summary.ok}</td><td>${b.summary.errors}</td><td>${(b.totalMs / 1000).toFixed(2)} s</td>` +
          `<td>${latencyText(b.summary)}</td></tr>`
      )
    )
    .concat(
      data.flatMap((section) =>
        section.openLoops.map(
          (o) =>
            `<tr><td>${escapeHtml(section.title)}</td>` +
            `<td>${escapeHtml(new URL(o.url).pathname + new URL(o.url).search)}</td><td>${o.points.length} ` +
            `at ${o.rate}/s</td>` +
            `<td colspan="4">${escapeHtml(o.text)}${
              o.keptRate
                ? ''
                : ' <strong>The generator did not keep the ' + `rate: ${escapeHtml(o.why ?? '')}</strong>`
            }</td></tr>`
        )
      )
    )
    .concat(
      data.flatMap((section) =>
        (section.sweep?.rows ?? []).map(
          (r) =>
            `<tr><td>${escapeHtml(section.title)}</td><td>offered ${r[0]}/s</td><td>sent ${r[1].toFixed(2)}/s</td>` +
            `<td colspan="4">corrected p50 ${r[2]} s, p99 ${r[3]} s, p99.9 ${r[4]} s, max ${r[5]} s` +
            `${r[6] === null ? '' : `; predicted p50 ${r[6]} s`}</td></tr>`
        )
      )
    )
    .join('\n');
  return (
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
 table { border-collapse: collapse; margin: 1rem 0 2rem; } td, th { border: 1px solid #ccc; padding: .3rem .6rem; ` +
    `text-align: left; }
 .chart { position: relative; width: 100%; max-width: 1100px; margin-bottom: 2rem; }
 .note { color: #555; }
</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
${
  data.some((d) => d.bursts.length)
    ? `<p class="note">Each bar is one request, from the moment it was sent to the moment its response had
fully arrived, sorted by arrival. Green: 2xx; red: an error. Bars that end together are a wave: they were served
together.</p>`
    : ''
}
<table><thead><tr><th>scenario</th><th>route</th><th>requests</th><th>ok</th><th>errors</th><th>total</th><th>` +
    `latency</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<div id="charts"></div>
<script>${chartJs()}</script>
<script id="data" type="application/json">${json}</script>
<script>
const data = JSON.parse(document.getElementById('data').textContent);
const root = document.getElementById('charts');
// The percentile spectrum: latency against the nines, -log10(1 - p): 1 is p90, 2 p99, 3 p99.9.
const ninesLabel = (v) =>
  Number.isInteger(v) ? (v === 0 ? '0%' : (100 - 100 / 10 ** v).toFixed(Math.max(0, v - 2)) + '%') : '';
function spectrumChart (title, series) {
  const h4 = document.createElement('h4'); h4.textContent = title;
  const box = document.createElement('div'); box.className = 'chart'; box.style.height = '320px';
  const canvas = document.createElement('canvas'); canvas.className = 'spectrum';
  box.append(canvas); root.append(h4, box);
  new Chart(canvas, {
    type: 'line',
    data: { datasets: series.map(([label, points, color]) => ({
      label, data: points.map((p) => ({ x: p[0], y: p[1] })),
      borderColor: color, backgroundColor: color, pointRadius: 0, borderWidth: 2, stepped: 'before',
    })) },
    options: {
      animation: false, maintainAspectRatio: false,
      scales: {
        x: { type: 'linear', min: 0, ticks: { stepSize: 1, callback: ninesLabel }, ` +
    `title: { display: true, text: 'percentile (log scale of nines)' } },
        y: { type: 'linear', min: 0, title: { display: true, text: 'latency (s)' } },
      },
    },
  });
}
for (const section of data) {
  const h2 = document.createElement('h2'); h2.textContent = section.title; root.append(h2);
  if (section.note) { const p = document.createElement('p'); p.className = 'note'; p.textContent = section.note; ` +
    `root.append(p); }
  for (const burst of section.bursts) {
    const h3 = document.createElement('h3');
    h3.textContent = burst.url + ': ' + burst.bars.length + ' requests, ' + (burst.totalMs / 1000).toFixed(2) + ' s';
    const box = document.createElement('div'); box.className = 'chart';
    box.style.height = Math.min(900, 120 + burst.bars.length * 6) + 'px';
    const canvas = document.createElement('canvas'); canvas.className = 'timeline';
    box.append(canvas); root.append(h3, box);
    new Chart(canvas, {
      type: 'bar',
      data: { labels: burst.bars.map((_, i) => i + 1), datasets: [{
        label: 'request (send to response)',
        data: burst.bars.map((b) => [b[0], b[1]]),
        backgroundColor: burst.bars.map((b) => b[2] >= 200 && b[2] < 400 ? '#2e9b57' : '#d33c3c'),
        barPercentage: 1, categoryPercentage: 0.9, minBarLength: 2,
      }] },
      options: {
        indexAxis: 'y', animation: false, maintainAspectRatio: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => {
          const b = burst.bars[c.dataIndex]; return 'sent ' + b[0].toFixed(2) + ' s, answered ' + b[1].toFixed(2) + ` +
    `' s, status ' + (b[2] || 'error');
        } } } },
        scales: {
          x: { type: 'linear', min: 0, title: { display: true, text: 'seconds since the burst started' } },
          y: { title: { display: true, text: 'requests, by arrival' }, ticks: { autoSkip: true, maxTicksLimit: 20 } },
        },
      },
    });
    spectrumChart(burst.url + ': the percentile spectrum', [['latency', burst.spectrum, '#2e9b57']]);
  }
  for (const run of section.openLoops) {
    const h3 = document.createElement('h3');
    h3.textContent = run.url + ': ' + run.points.length + ' requests at ' + run.rate + '/s, open loop';
    const box = document.createElement('div'); box.className = 'chart'; box.style.height = '420px';
    const canvas = document.createElement('canvas'); canvas.className = 'open-loop';
    box.append(canvas); root.append(h3, box);
    const color = (p) => p[3] >= 200 && p[3] < 400 ? '#2e9b57' : '#d33c3c';
    new Chart(canvas, {
      type: 'scatter',
      data: { datasets: [
        { label: 'latency from the intended send (corrected)', data: run.points.map((p) => ({ x: p[0], y: p[1] })), ` +
    `pointBackgroundColor: run.points.map(color), pointBorderColor: run.points.map(color), pointRadius: 2 },
        { label: 'latency from the actual send', data: run.points.map((p) => ({ x: p[0], y: p[2] })), ` +
    `pointBackgroundColor: '#7f8c8d', pointBorderColor: '#7f8c8d', pointRadius: 1 },
      ] },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: {
          x: { type: 'linear', min: 0, title: { display: true, text: 'when it was meant to be sent (s since the ` +
    `start)' } },
          y: { type: 'linear', min: 0, title: { display: true, text: 'latency (s)' } },
        },
      },
    });
    spectrumChart(run.url + ': the percentile spectrum', [
      ['from the intended send (corrected)', run.corrected, '#2e9b57'],
      ['from the actual send', run.uncorrected, '#7f8c8d'],
    ]);
  }
  if (section.sweep) {
    const sw = section.sweep;
    const h3 = document.createElement('h3');
    h3.textContent = 'Latency against offered rate' +
      (sw.capacity ? ': the knee predicted at ' + sw.capacity.toFixed(1) + '/s' : '') +
      (sw.measured ? ', measured at ' + sw.measured.toFixed(1) + '/s' : '');
    const p = document.createElement('p'); p.className = 'note';
    p.textContent = sw.capacityText ? 'Predicted: ' + sw.capacityText + '. Dashed: what queueing arithmetic expects ' +
      '(flat to the knee, then the queue grows for as long as the arrivals last).'
      : 'No prediction: the pool was not known.';
    const box = document.createElement('div'); box.className = 'chart'; box.style.height = '460px';
    const canvas = document.createElement('canvas'); canvas.className = 'sweep';
    box.append(canvas); root.append(h3, p, box);
    const line = (label, i, color, dash) => ({
      label, data: sw.rows.filter((r) => r[i] !== null).map((r) => ({ x: r[0], y: r[i] })),
      borderColor: color, backgroundColor: color, borderDash: dash ? [6, 4] : [],
      pointRadius: dash ? 0 : 3, borderWidth: 2,
    });
    const top = Math.max(...sw.rows.flatMap((r) => [r[5], r[7] ?? 0]));
    const datasets = [line('p50', 2, '#2e9b57'), line('p99', 3, '#e07b00'), line('p99.9', 4, '#d33c3c'), ` +
    `line('max', 5, '#7f8c8d'), line('predicted p50', 6, '#2e9b57', true), line('predicted max', 7, '#7f8c8d', true)];
    if (sw.capacity) datasets.push({ label: 'the predicted capacity', data: [{ x: sw.capacity, y: 0 }, ` +
    `{ x: sw.capacity, y: top }], borderColor: '#2f6fd6', borderDash: [2, 3], pointRadius: 0, borderWidth: 2 });
    if (sw.measured) datasets.push({ label: 'the measured knee', data: [{ x: sw.measured, y: 0 }, ` +
    `{ x: sw.measured, y: top }], borderColor: '#8e44ad', borderDash: [8, 3], pointRadius: 0, borderWidth: 1 });
    new Chart(canvas, {
      type: 'line',
      data: { datasets },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: {
          x: { type: 'linear', title: { display: true, text: 'offered rate (requests a second)' } },
          y: { type: 'linear', min: 0, title: { display: true, text: 'latency from the intended send (s)' } },
        },
      },
    });
  }
}
window.reportReady = true;
</script>
</body></html>
`
  );
}
