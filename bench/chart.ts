// Renders BENCHMARKS.md's charts from a results file: Chart.js in headless Chromium, saved as PNG.
// Usage: npx tsx bench/chart.ts [bench/results/FILE.json]   (default: the newest)
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chartJsFile } from '../src/paths.ts';
import { launchChromium } from '../test/browser.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const resultsDir = join(here, 'results');
const file =
  process.argv[2] ??
  join(
    resultsDir,
    readdirSync(resultsDir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .at(-1)!
  );
const run = JSON.parse(readFileSync(file, 'utf8')) as {
  results: {
    concurrency?: { n: number; server: string; fidelity: number }[];
    pool?: { queue: { waves: { size: number; firstMs: number; lastMs: number }[] } };
  };
};
const chartJs = readFileSync(chartJsFile, 'utf8');

const charts: { name: string; config: unknown }[] = [];
const c = run.results.concurrency;
if (c) {
  const ns = [...new Set(c.map((r) => r.n))];
  const series = (server: string) =>
    ns.map((n) => c.find((r) => r.n === n && r.server === server)?.fidelity ?? null);
  charts.push({
    name: 'concurrency-fidelity',
    config: {
      type: 'bar',
      data: {
        labels: ns.map((n) => `N = ${n}`),
        datasets: [
          { label: 'ours', data: series('ours'), backgroundColor: '#2f6fd6' },
          { label: 'baseline (a) node:http + pg', data: series('baseline (a)'), backgroundColor: '#9aa3b0' },
        ],
      },
      options: {
        animation: false,
        plugins: {
          title: { display: true, text: 'Suite 1: total / (2 s + T0(N)), 1.00 is ideal (target <= 1.05)' },
        },
        scales: { y: { min: 0, suggestedMax: 1.1, title: { display: true, text: 'total / ideal' } } },
      },
    },
  });
}
const p = run.results.pool;
if (p) {
  charts.push({
    name: 'pool-waves',
    config: {
      type: 'bar',
      data: {
        labels: p.queue.waves.map((w, i) => `wave ${i + 1} at ${(w.firstMs / 1000).toFixed(2)} s`),
        datasets: [{ label: 'responses', data: p.queue.waves.map((w) => w.size), backgroundColor: '#2f6fd6' }],
      },
      options: {
        animation: false,
        plugins: {
          title: { display: true, text: 'Suite 2: 100 database sleeps of 1 s against pool 5 + 10' },
          legend: { display: false },
        },
        scales: { y: { beginAtZero: true, max: 16, title: { display: true, text: 'responses in the wave' } } },
      },
    },
  });
}

const out = join(here, 'charts');
mkdirSync(out, { recursive: true });
const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 800, height: 420 }, deviceScaleFactor: 1 });
for (const chart of charts) {
  await page.setContent(
    '<html><body style="margin:0;background:#fff"><div ' +
      `style="width:780px;height:400px;padding:10px"><canvas id="c"></canvas></div>
    <script>${chartJs}</script><script>new ` +
      `Chart(document.getElementById('c'), ${JSON.stringify(chart.config)});</script></body></html>`
  );
  await page.locator('canvas').screenshot({ path: join(out, `${chart.name}.png`) });
  console.log(`bench/charts/${chart.name}.png`);
}
await browser.close();
