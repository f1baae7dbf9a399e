// `npm run demo`: the original's scenarios for real, judged by the demo's own verdicts. The
// scenarios beyond the original's five (6, past max_connections, and the claims 7 and 8) have
// files of their own, demo-scale and demo-claims, so that the three run side by side.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freshDatabase, runCli, tempDir } from '../helper.ts';

test(
  'demo --quick passes its own verdicts: the three setups, the waves of 15, the pool timeout',
  { timeout: 300_000 },
  async () => {
    const res = await runCli(['demo', '--quick'], { DATABASE_URL: await freshDatabase(), DATA_DIR: tempDir() });
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    const titles = [
      '1. Blocking server, blocking database',
      '2. Non-blocking server, blocking database',
      '3. Non-blocking server, non-blocking database',
      '4. The warning: 100 requests against a pool of 5 + 10',
      '5. Past POOL_TIMEOUT',
    ];
    for (const title of titles) assert.ok(res.stdout.includes(`=== ${title}`), title);
    assert.match(res.stdout, /\/sleep\/postgres\/: 100 ok, 0 errors/);
    assert.match(
      res.stdout,
      /15 x HTTP 503: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 2\.00/
    );
    // The table: one row per scenario, each with the verdict "ok".
    const rows = res.stdout.split('\n').filter((l) => /^\d\. .*\|/.test(l));
    assert.equal(rows.length, titles.length);
    for (const row of rows) assert.match(row, /\| ok$/, row);
    assert.match(res.stdout, /Every scenario matched its expected figures\./);
    // Piped, as here: no progress line (a terminal gets one, rewritten with carriage returns).
    assert.ok(![res.stdout, res.stderr].some((s) => s.includes('\r') || s.includes('\u001b')), 'no progress line');
  }
);
