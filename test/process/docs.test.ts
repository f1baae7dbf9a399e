// docs/scaling.md: its load-balancer samples pass the real programs' syntax checks, and its
// worked example is what the service's own budget check computes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { budgetFor, checkBudget } from '../../src/db/budget.ts';
import { haproxyConfig } from '../../src/demo/haproxy.ts';
import { findProgram } from '../../src/os/processes.ts';
import { ROOT, tempDir } from '../helper.ts';

const doc = readFileSync(join(ROOT, 'docs', 'scaling.md'), 'utf8');

/** The one fenced block of a language, e.g. ```haproxy. */
function block (lang: string): string {
  const blocks = [...doc.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
  assert.equal(blocks.length, 1, `one ${lang} block in docs/scaling.md`);
  return blocks[0]!;
}

/** Skipped only off CI, with the reason; CI installs both programs. */
const skipUnless = (bin: string) =>
  findProgram(bin, ['-v']) || process.env.CI
    ? false
    : `${bin} is not installed (apt-get install ${bin}); CI installs it`;

describe('docs/scaling.md', () => {
  test('the HAProxy sample is what demo --hosts writes', () => {
    const sample = block('haproxy');
    const backends = [...sample.matchAll(/server (h\d+) ([\d.]+):(\d+) check/g)].map((m) => ({
      name: m[1]!,
      address: m[2]!,
      port: Number(m[3]),
    }));
    const port = Number(/bind 127\.0\.0\.1:(\d+)/.exec(sample)?.[1]);
    const socket = /stats socket (\S+)/.exec(sample)?.[1] ?? '';
    assert.equal(backends.length, 3);
    assert.equal(sample, haproxyConfig({ port, socket, backends }));
  });

  test('the HAProxy sample passes haproxy -c', { skip: skipUnless('haproxy') }, () => {
    const file = join(tempDir(), 'haproxy.cfg');
    writeFileSync(file, block('haproxy'));
    const out = execFileSync(findProgram('haproxy', ['-v']) ?? 'haproxy', ['-c', '-f', file], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.match(out, /Configuration file is valid/);
  });

  test('the nginx sample passes nginx -t', { skip: skipUnless('nginx') }, () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'logs'));
    const file = join(dir, 'nginx.conf');
    writeFileSync(file, block('nginx'));
    // -p and -e keep every path nginx opens during the test inside the temporary folder.
    execFileSync(
      findProgram('nginx', ['-v']) ?? 'nginx',
      ['-t', '-q', '-p', dir, '-e', join(dir, 'error.log'), '-c', file, '-g', `pid ${join(dir, 'nginx.pid')};`],
      { stdio: ['ignore', 'pipe', 'pipe'] }
    );
  });

  test(
    "the worked example: its settings, read from the page, give the figures it quotes, by the service's own " +
      'budget check',
    () => {
      const example = doc.slice(doc.indexOf('## Sizing: a worked example'));
      const num = (re: RegExp) => Number(re.exec(example)?.[1] ?? NaN);
      const limits = {
        maxConnections: num(/`max_connections = (\d+)`/),
        superuserReserved: num(/`superuser_reserved_connections = (\d+)`/),
        reserved: 0,
        versionNum: 170010,
      };
      const hosts = num(/(\d+) service hosts/);
      const host = {
        WORKERS: String(num(/`WORKERS=(\d+)`/)),
        POOL_SIZE: String(num(/`POOL_SIZE=(\d+)`,/)),
        POOL_MAX_OVERFLOW: String(num(/`POOL_MAX_OVERFLOW=(\d+)`\. Each/)),
      };
      const bouncerPool = num(/PGBOUNCER_POOL_SIZE=(\d+)`/);
      assert.deepEqual(
        [limits.maxConnections, limits.superuserReserved, hosts, bouncerPool],
        [200, 3, 10, 16],
        'the settings were found on the page'
      );

      const server = { DATABASE_URL: 'postgresql://app@db.internal/todos' };
      const direct = loadConfig({}, { ...server, ...host });
      const budget = budgetFor(limits, direct);
      assert.ok(example.includes(budget.summary), `the page quotes the check's line: ${budget.summary}`);
      assert.ok(example.includes(`That leaves ${budget.available} connections for us`));
      // Alone (HOSTS=1) a host passes straight to PostgreSQL; told HOSTS, it refuses with the line the page quotes.
      checkBudget(budget, direct);
      const fleet = loadConfig({}, { ...server, ...host, HOSTS: String(hosts) });
      assert.throws(
        () => checkBudget(budgetFor(limits, fleet), fleet),
        (e: Error) => {
          assert.ok(example.includes(e.message), `the page quotes the refusal: ${e.message}`);
          return true;
        }
      );
      // Through a PgBouncer per host, HOSTS x PGBOUNCER_POOL_SIZE fits.
      const bounced = loadConfig(
        {},
        { ...server, ...host, HOSTS: String(hosts), PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: String(bouncerPool) }
      );
      checkBudget(budgetFor(limits, bounced), bounced);
      assert.ok(
        example.includes(
          `the check compares ${hosts} x ${bouncerPool} = ${hosts * bouncerPool} with ${budget.available}`
        )
      );
      // The sums the page states.
      const deploy = (hosts + 1) * bouncerPool;
      assert.ok(
        example.includes(`${hosts + 1} PgBouncers during a rolling deploy`) &&
          example.includes(`x ${bouncerPool} = ${deploy} server connections`)
      );
      assert.ok(example.includes(`${budget.available} - ${deploy} = ${budget.available - deploy} for people`));
      assert.ok(
        example.includes(
          `${hosts} x ${budget.needed} = ${hosts * budget.needed} client connections and ${hosts} x ${bouncerPool} ` +
            `= ${hosts * bouncerPool} server connections`
        )
      );
      assert.ok(
        example.includes(`the third host already brings the total to ${3 * budget.needed}`) &&
          3 * budget.needed > budget.available &&
          2 * budget.needed <= budget.available
      );
    }
  );
});
