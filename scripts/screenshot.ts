// `npm run screenshot`: takes the README's picture of the dashboard (docs/images/dashboard.png)
// during the original's warning, 100 database sleeps of 2 s against the pool of 5 + 10, mid-way
// through its 7 waves; then its picture of what blocks (docs/images/blocks.png): the charts and
// the block detector's panel after four /block/ routes; and stamps them with the page's hash. Run it after changing
// public/dashboard/,
// then commit docs/images/. Needs Debian's Chromium (apt-get install chromium).
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { burst } from '../src/client/load.ts';
import { prepareDatabase } from '../src/db/tables.ts';
import { withServerProcess } from '../src/harness/server-process.ts';
import { EmbeddedPostgres } from '../src/postgres/embedded.ts';
import { CHROMIUM, launchChromium } from '../test/browser.ts';
import { BLOCKS_PICTURE, pageHash, PICTURE, STAMP } from './dashboard-picture.ts';

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
  });
  writeFileSync(STAMP, `${pageHash()}\n`);
  console.log(`${PICTURE} and ${BLOCKS_PICTURE} taken of the page as it is now; commit docs/images/.`);
} finally {
  await browser.close();
  await postgres.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
