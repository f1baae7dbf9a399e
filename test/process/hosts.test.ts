// `npm run demo -- --hosts N`: N hosts behind HAProxy over one PostgreSQL, judged by the demo's
// own verdicts; nothing it made (namespaces, the bridge, processes) is left afterwards. The test
// runs 2 hosts, the fewest that make a fleet (the README's 3 take a third more CPU): 2 x 2 workers
// x (5 + 10) = 60 connections are still more than PostgreSQL's 37.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { randomUUID } from 'node:crypto';
import { findHaproxy } from '../../src/demo/haproxy.ts';
import { noPgBouncer, runCli, tempDir } from '../helper.ts';
import { processesMarked } from '../processes.ts';

const noHaproxy = (() => {
  try {
    findHaproxy();
    return false;
  } catch {
    return process.env.CI ? false : 'haproxy is not installed (apt-get install haproxy); CI installs it';
  }
})();

test(
  'demo --quick --hosts 2: refusals straight to PostgreSQL, none through one PgBouncer, a rolling restart that drops ' +
    'nothing, a killed host taken out',
  { skip: noPgBouncer || noHaproxy, timeout: 300_000 },
  async () => {
    const marker = randomUUID();
    const res = await runCli(['demo', '--quick', '--hosts', '2'], { DATA_DIR: tempDir(), ANP_HOSTS_TEST: marker });
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    const out = res.stdout;
    if (process.getuid?.() === 0) {
      assert.match(out, /network namespaces anp-h1 \(10\.77\.0\.11\), anp-h2 \(10\.77\.0\.12\) on a bridge/);
    } else assert.match(out, /loopback addresses 127\.0\.0\.11, 127\.0\.0\.12 \(not root/);
    // (a) the refusals PostgreSQL logged, and the fleet's arithmetic with HOSTS=2.
    const a = /(\d+) failed \(.*\); PostgreSQL's log: (\d+) x "sorry, too many clients already"/.exec(out);
    assert.ok(a && Number(a[1]) > 0 && Number(a[2]) > 0, out);
    assert.match(
      out,
      /Refusing to start: HOSTS x WORKERS x \(POOL_SIZE \+ POOL_MAX_OVERFLOW\) = 2 x 2 x \(5 \+ 10\) = 60 connections; PostgreSQL allows max_connections 40 - superuser_reserved_connections 3 = 37, and 60 > 37/
    );
    // (b) 60 sleeps through 15 server connections: 4 waves.
    assert.match(out, /60 x 200 in [45]\.\d\ds; at most (1[0-5]|\d) of our connections on PostgreSQL at once/);
    // (c) every SIGTERM'd host left HAProxy before it stopped listening, and nothing failed.
    for (const h of ['h1', 'h2']) {
      assert.match(out, new RegExp(`${h}: out of HAProxy 0\\.\\d\\d s after SIGTERM, exit code 0`));
    }
    assert.match(out, /(\d+) of \1 requests answered 200 during the restarts \(no errors\)/);
    const rows = out.split('\n').filter((l) => /^[abc]\. .*\|/.test(l));
    assert.equal(rows.length, 4, out);
    for (const row of rows) assert.match(row, /\| ok$/, row);
    // Nothing left: no process of the run, no namespace, no bridge.
    assert.deepEqual(processesMarked('ANP_HOSTS_TEST', marker), []);
    if (process.getuid?.() === 0) {
      assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /anp-h/);
      assert.doesNotMatch(execFileSync('ip', ['link'], { encoding: 'utf8' }), /anp-/);
    }
  }
);
