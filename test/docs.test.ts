// docs/scaling.md: its load-balancer samples pass the real programs' syntax checks, and its
// worked example is what the service's own budget check computes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { budgetFor, checkBudget } from '../src/db/budget.ts';
import { findProgram } from '../src/os/processes.ts';
import { ROOT, tempDir } from './helpers.ts';

const doc = readFileSync(join(ROOT, 'docs', 'scaling.md'), 'utf8');

/** The one fenced block of a language, e.g. ```haproxy. */
function block(lang: string): string {
  const blocks = [...doc.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
  assert.equal(blocks.length, 1, `one ${lang} block in docs/scaling.md`);
  return blocks[0]!;
}

/** Skipped only off CI, with the reason; CI installs both programs. */
const skipUnless = (bin: string) => (findProgram(bin, ['-v']) || process.env.CI ? false : `${bin} is not installed (apt-get install ${bin}); CI installs it`);

describe('docs/scaling.md', () => {
  test('the HAProxy sample passes haproxy -c', { skip: skipUnless('haproxy') }, () => {
    const file = join(tempDir(), 'haproxy.cfg');
    writeFileSync(file, block('haproxy'));
    const out = execFileSync(findProgram('haproxy', ['-v']) ?? 'haproxy', ['-c', '-f', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(out, /Configuration file is valid/);
  });

  test('the nginx sample passes nginx -t', { skip: skipUnless('nginx') }, () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'logs'));
    const file = join(dir, 'nginx.conf');
    writeFileSync(file, block('nginx'));
    // -p and -e keep every path nginx opens during the test inside the temporary folder.
    execFileSync(findProgram('nginx', ['-v']) ?? 'nginx', ['-t', '-q', '-p', dir, '-e', join(dir, 'error.log'), '-c', file, '-g', `pid ${join(dir, 'nginx.pid')};`], { stdio: ['ignore', 'pipe', 'pipe'] });
  });

  test("the worked example is the budget check's own arithmetic", () => {
    const limits = { maxConnections: 200, superuserReserved: 3, reserved: 0 };
    const host = { WORKERS: '4', POOL_SIZE: '10', POOL_MAX_OVERFLOW: '10' };
    const direct = loadConfig({}, host);
    const budget = budgetFor(limits, direct);
    assert.ok(doc.includes(budget.summary), `the doc quotes: ${budget.summary}`);
    assert.equal(budget.available, 197);
    // Per host both pass: the check cannot see the other hosts, which is the doc's point.
    checkBudget(budget, direct);
    const bounced = loadConfig({}, { ...host, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '16' });
    checkBudget(budgetFor(limits, bounced), bounced);
    // Across hosts: 11 PgBouncers during a deploy fit; 10 hosts straight to PostgreSQL do not.
    assert.ok(11 * bounced.pgbouncerPoolSize <= budget.available - 21);
    assert.ok(3 * budget.needed > budget.available);
  });
});
