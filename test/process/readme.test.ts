// The README's commands do what the text next to them says, with the settings they name.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { freshDatabase, ROOT, runCli, withService } from '../helper.ts';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
/** Every command in the README written as `...npm ...` in a code span. */
const commands = [...new Set([...readme.matchAll(/`((?:[A-Z_]+=\S+ )*npm (?:start|run \w+)[^`]*)`/g)].map((m) => m[1]!))];

describe("the README's commands", () => {
  test('every `VAR=... npm start` names settings that exist, with values they accept', () => {
    const starts = commands.filter((c) => / npm start/.test(c) && /^[A-Z_]+=/.test(c));
    assert.ok(starts.length >= 3, starts.join('\n'));
    for (const c of starts) {
      const env = Object.fromEntries([...c.matchAll(/([A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
      assert.doesNotThrow(() => loadConfig({}, env), c);
    }
  });

  test('every `npm run client ...` against the service with its default settings: every request answered 200', { timeout: 180_000 }, async () => {
    const clients = commands.filter((c) => /^npm run client( -- [^[]*)?$/.test(c));
    assert.ok(clients.length >= 2, clients.join('\n'));
    // Each against a service of its own, all at once: one pool each, as if each were the only command run.
    await Promise.all(clients.map(async (c) => withService({ DATABASE_URL: await freshDatabase() }, async (s) => {
      const args = c.replace(/^npm run client( -- )?/, '').split(' ').filter(Boolean);
      const res = await runCli(['client', ...args, '--url', s.url]);
      assert.equal(res.code, 0, `${c}: ${res.stderr}`);
      const summaries = res.stdout.split('\n').filter((l) => /^\/\S+: \d+ ok, \d+ errors/.test(l));
      assert.ok(summaries.length > 0, `${c}: ${res.stdout}`);
      for (const l of summaries) assert.match(l, / 0 errors/, `${c}: ${l}`);
    })));
  });

  test('npm start -- --help and npm run cli -- db --help answer', async () => {
    assert.ok(commands.includes('npm start -- --help'));
    for (const args of [['serve', '--help'], ['db', '--help']]) assert.equal((await runCli(args)).code, 0);
  });
});
