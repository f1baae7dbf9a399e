// `npm run screenshot`: takes the README's picture of the dashboard (docs/images/dashboard.png)
// during the original's warning, 100 database sleeps of 2 s against the pool of 5 + 10, mid-way
// through its 7 waves; then its picture of what blocks (docs/images/blocks.png): the charts and
// the block detector's panel after four /block/ routes; and stamps them with the page's hash. Then the client's
// report: latency against offered rate across the pool's knee (docs/images/knee.png) and the percentile spectrum
// of an open loop whose generator queues (docs/images/spectrum.png). Run it after changing public/dashboard/ or
// src/client/report.ts, then commit docs/images/. Needs Debian's Chromium (apt-get install chromium).
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { burst } from '../src/client/load.ts';
import { openLoop } from '../src/client/open-loop.ts';
import { writeReport } from '../src/client/report.ts';
import { runKneeSweep } from '../src/demo/knee.ts';
import { prepareDatabase } from '../src/db/tables.ts';
import { withServerProcess } from '../src/harness/server-process.ts';
import { EmbeddedPostgres } from '../src/postgres/embedded.ts';
import { CHROMIUM, launchChromium } from '../test/browser.ts';
import { BLOCKS_PICTURE, KNEE_PICTURE, pageHash, PICTURE, SPECTRUM_PICTURE, STAMP } from './dashboard-picture.ts';

if (!existsSync(CHROMIUM)) {
  console.error(
    `${CHROMIUM} is not installed: the picture is taken in Debian's Chromium (apt-get install chromium)`
  );
  process.exit(1);
}

const dataDir = mkdtempSync(join(tmpdir(), 'anp-screenshot-'));
chmodSync(dataDir, 0o755);
const postgres = new EmbeddedPostgres({ dataDir, maxConnections: 100 });
const browser = await launchChromium();
try {
  await postgres.start();
  await prepareDatabase(postgres.url);
  await withServerProcess({ DATABASE_URL: postgres.url, LOG_LEVEL: 'error' }, async (server) => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
    await page.goto(`${server.url}/`);
    await page.waitForFunction(
      () => (window as unknown as { dashboard?: { frames: number } }).dashboard!.frames > 2,
      undefined,
      { timeout: 10_000 }
    );
    await delay(300);
    const load = burst(`${server.url}/sleep/postgres/?seconds=2`, 100);
    await delay(9000); // mid-way through the 7 waves
    await page.screenshot({ path: PICTURE });
    const b = await load;
    if (!b.results.every((r) => r.status === 200)) {
      throw new Error('a request of the burst failed: the picture would not show the waves of 15');
    }

    for (const path of ['/block/cpu/?ms=300', '/block/hash/', '/block/regex/', '/block/json/', '/offload/json/']) {
      const blocked = await burst(`${server.url}${path}`, path.startsWith('/block/cpu/') ? 3 : 1);
      if (!blocked.results.every((r) => r.status === 200)) throw new Error(`${path} failed`);
      await delay(700);
    }
    await delay(500);
    const top = await page.locator('section.charts').boundingBox();
    const bottom = await page.locator('#blocks-panel').boundingBox();
    if (!top || !bottom) throw new Error('the charts or the blocks panel are not on the page');
    await page.screenshot({
      path: BLOCKS_PICTURE,
      fullPage: true,
      clip: { x: 0, y: top.y - 8, width: 1400, height: bottom.y + bottom.height - top.y + 16 },
    });

    // The client's report: the demo's sweep across 5 + 10 connections / 1 s sleeps, and an open loop at 20/s
    // whose generator has only 15 connections, so that it queues too: corrected and uncorrected part.
    const url = `${server.url}/sleep/postgres/?seconds=1`;
    const knee = await runKneeSweep(url, { quick: false, connections: 15, sleepSeconds: 1, out: console.log });
    await delay(1000);
    const queued = await openLoop({ url, rate: 20, seconds: 8, connections: 15 });
    const report = join(dataDir, 'report.html');
    writeReport(report, 'client report', [
      { title: 'Latency against offered rate', bursts: [], sweep: knee.sweep },
      { title: 'An open loop at 20/s with 15 connections', bursts: [], openLoops: [queued] },
    ]);
    const reportPage = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await reportPage.goto(`file://${report}`);
    await reportPage.waitForFunction(() => (window as unknown as { reportReady?: boolean }).reportReady);
    await reportPage.locator('canvas.sweep').locator('..').screenshot({ path: KNEE_PICTURE });
    await reportPage.locator('canvas.spectrum').last().locator('..').screenshot({ path: SPECTRUM_PICTURE });
  });
  writeFileSync(STAMP, `${pageHash()}\n`);
  console.log(
    `${PICTURE}, ${BLOCKS_PICTURE}, ${KNEE_PICTURE} and ${SPECTRUM_PICTURE} taken as the pages are now; commit ` +
      'docs/images/.'
  );
} finally {
  await browser.close();
  await postgres.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
