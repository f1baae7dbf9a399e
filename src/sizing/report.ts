// The sizing lab's HTML report: per workload, throughput and Little's law's prediction against
// the pool size, with p99 on a second axis; Chart.js is inlined so that the file opens offline.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { chartJsFile } from '../paths.ts';
import type { Point, Workload } from './model.ts';
import type { SizingOptions, SizingResult } from './sizing.ts';

const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

const TITLES: Record<Workload, string> = {
  wait: 'wait: the query waits in PostgreSQL (pg_sleep)',
  work: 'work: the query computes in PostgreSQL (CPU)',
};

function rows (points: Point[]): string {
  return points
    .map((p) =>
      p.skipped
        ? `<tr><td>${p.size}</td><td colspan="9">skipped: ${escapeHtml(p.skipped)}</td></tr>`
        : `<tr><td>${p.size}</td><td>${Math.round(p.rps)}</td><td>${Math.round(p.predicted)}</td>` +
          `<td>${p.p50.toFixed(1)} ms</td><td>${p.p99.toFixed(1)} ms</td>` +
          `<td>${'waitP99' in p ? `${(p as Point & { waitP99: number }).waitP99.toFixed(1)} ms` : '-'}</td>` +
          `<td>${p.errors}</td><td>${p.pgCores === undefined ? '?' : p.pgCores.toFixed(2)}</td>` +
          `<td>${p.activeMean.toFixed(1)} / ${p.activeMax}</td>` +
          `<td>${p.pgUssMb === undefined ? '?' : `${Math.round(p.pgUssMb)} MB`}</td></tr>`
    )
    .join('\n');
}

export interface CurvesReport {
  title: string;
  /** One paragraph: the server, the load, the time per point. */
  intro: string;
  /** The recommendation and what it rests on, one line each. */
  findings: string[];
  /** One chart and table each: throughput and Little's law's prediction by pool size, with p99 on a second axis. */
  sections: { title: string; points: Point[]; unit: string }[];
}

export function writeSizingReport (file: string, result: SizingResult, options: SizingOptions): void {
  writeCurvesReport(file, {
    title: 'How big should the pool be?',
    intro:
      `${result.facts.version}, max_connections ${result.facts.maxConnections}${
        result.cores ? `, ${result.cores} ` + 'cores (local)' : ', remote (cores unknown)'
      }; ` +
      `${options.concurrency} concurrent clients; ${options.seconds} s per point; the work query alone: ` +
      `about ${options.workMs} ms (${result.units} units); ` +
      `one request alone: wait ${result.aloneMs.wait.toFixed(1)} ms, work ${result.aloneMs.work.toFixed(1)} ms.`,
    findings: result.recommendations.map(
      (r) =>
        `${r.workload}: pool ${r.size} (${Math.round(r.rps)} req/s; the best, ${Math.round(r.best.rps)} req/s, ` +
        `at ${r.best.size})`
    ),
    sections: (['wait', 'work'] as const).map((w) => ({
      title: TITLES[w],
      points: result.points[w],
      unit: 'requests',
    })),
  });
}

export function writeCurvesReport (file: string, report: CurvesReport): void {
  const data = report.sections.map((section) => ({
    title: section.title,
    unit: section.unit,
    points: section.points
      .filter((p) => !p.skipped)
      .map((p) => ({
        size: p.size,
        rps: Math.round(p.rps),
        predicted: Math.round(p.predicted),
        p99: Math.round(p.p99 * 10) / 10,
      })),
  }));
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const findings = report.findings.map((line) => `<li>${escapeHtml(line)}</li>`).join('');
  const sections = report.sections
    .map(
      (section, i) =>
        `
<h2>${escapeHtml(section.title)}</h2>
<div class="chart"><canvas id="chart-${i}"></canvas></div>
<table><thead><tr><th>pool</th><th>${section.unit}/s</th><th>Little's law</th><th>p50</th><th>p99</th><th>waiting ` +
        'for a connection, p99</th><th>errors</th><th>PostgreSQL CPU (cores)</th><th>active backends (mean / ' +
        `max)</th><th>PostgreSQL USS</th></tr></thead>
<tbody>${rows(section.points)}</tbody></table>`
    )
    .join('\n');
  const html =
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(report.title)}</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }
 table { border-collapse: collapse; margin: 1rem 0 2rem; } td, th { border: 1px solid #ccc; padding: .3rem .6rem; ` +
    `text-align: right; }
 .chart { position: relative; height: 360px; margin-bottom: 1rem; }
 .note { color: #555; }
</style></head>
<body>
<h1>${escapeHtml(report.title)}</h1>
<p class="note">${escapeHtml(report.intro)}</p>
<p>Little's law: with <i>n</i> connections each held <i>R</i> per request, throughput is at most min(<i>n</i>, ` +
    `clients) / <i>R</i>;
for work, at most min(<i>n</i>, cores) / <i>R</i>, because a query that computes needs a core.</p>
<ul>${findings}</ul>
${sections}
<script>${readFileSync(chartJsFile, 'utf8')}</script>
<script>
const data = ${json};
Chart.defaults.animation = false;
data.forEach((d, i) => new Chart(document.getElementById('chart-' + i), {
  type: 'line',
  data: { datasets: [
    { label: d.unit + '/s, measured', data: d.points.map((p) => ({ x: p.size, y: p.rps })), borderColor: '#2f6fd6', ` +
    `yAxisID: 'y' },
    { label: d.unit + "/s, Little's law", data: d.points.map((p) => ({ x: p.size, y: p.predicted })), borderColor: ` +
    `'#9aa3b0', borderDash: [5, 5], yAxisID: 'y' },
    { label: 'p99 (ms)', data: d.points.map((p) => ({ x: p.size, y: p.p99 })), borderColor: '#c0392b', yAxisID: 'y2' },
  ] },
  options: {
    maintainAspectRatio: false, parsing: false,
    plugins: { title: { display: true, text: d.title } },
    scales: {
      // One tick per size tried (Chart.js would put a logarithmic axis's ticks at 10, 20, 30...).
      x: { type: 'logarithmic', title: { display: true, text: 'pool size (connections)' }, afterBuildTicks: (axis) =>` +
    ` { axis.ticks = d.points.map((p) => ({ value: p.size })); }, ticks: { callback: (v) => v } },
      y: { beginAtZero: true, title: { display: true, text: d.unit + ' per second' } },
      y2: { beginAtZero: true, position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: ` +
    `'p99 latency (ms)' } },
    },
  },
}));
</script>
</body></html>
`;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, html);
}
