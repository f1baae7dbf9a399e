// The commands of the README and docs/ do what the text next to them says, with the settings
// they name. (The demo's, the sizing lab's and the bench's runs are tests of their own.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig, SETTINGS } from '../../src/config.ts';
import { freshDatabase, request, ROOT, runCli, tempDir, withService } from '../helper.ts';

const text = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]
  .map((page) => readFileSync(join(ROOT, page), 'utf8'))
  .join('\n');
/** Every command written as `...npm ...` in a code span, or on a line of its own in a block. */
const commands = [
  ...new Set(
    [
      ...text.matchAll(
        /(?:`|^)((?:[A-Z_]+=\S+ )*(?:npm (?:start|run [\w:]+)|node dist\/cli\.js serve|curl |npx openapi-typescript )[^`\n]*)(?:`|$)/gm
      ),
    ].map((m) => m[1]!)
  ),
];
const scripts = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
).scripts;
const envOf = (c: string) =>
  Object.fromEntries([...c.matchAll(/(?:^| )([A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));

describe('the commands of the README and docs/', () => {
  test('every `npm run X` is a script of package.json; every `npm start -- --flag` a setting', () => {
    for (const c of commands) {
      const script = /npm run ([\w:]+)/.exec(c)?.[1];
      if (script) assert.ok(scripts[script], `${c}: no script ${script}`);
      if (/npm start -- --(?!help)/.test(c)) {
        const flag = /--([\w-]+)/.exec(c)![1];
        assert.ok(
          Object.values(SETTINGS).some((s) => s.flag === flag),
          `${c}: no setting --${flag}`
        );
      }
    }
  });

  test('every `VAR=... node dist/cli.js serve` names settings that exist, with values they accept', () => {
    const serves = commands.filter((c) => /^[A-Z_]+=.* node dist\/cli\.js serve/.test(c));
    assert.ok(serves.length >= 1, commands.join('\n'));
    for (const c of serves) assert.doesNotThrow(() => loadConfig({}, envOf(c)), c);
  });

  test(
    'every `curl` against the service with its default ' +
      'settings: the headers it sends, the answer the text gives',
    async () => {
      const curls = commands.filter((c) => c.startsWith('curl '));
      assert.ok(curls.length >= 1, commands.join('\n'));
      await withService({ DATABASE_URL: await freshDatabase() }, async (s) => {
        for (const c of curls) {
          const headers = Object.fromEntries(
            [...c.matchAll(/-H '([^:]+): ([^']*)'/g)].map((m) => [m[1]!.toLowerCase(), m[2]!])
          );
          const url = new URL(/ (http:\/\/\S+)/.exec(c)![1]!);
          const res = await request(s.url, 'GET', url.pathname, { headers });
          assert.equal(res.status, 200, `${c}: ${res.body}`);
          // The answer the text quotes right after the command.
          const quoted = new RegExp(`${c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\`, gets\\s+\`([^\`]+)\``).exec(
            text.replace(/\n/g, ' ')
          )?.[1];
          assert.ok(quoted, `${c}: the text quotes its answer`);
          assert.deepEqual(res.json, JSON.parse(quoted), c);
        }
      });
    }
  );

  test(
    'the `npx openapi-typescript` command generates the ' +
      'types of the running service: a todo needs only its title',
    async () => {
      const generate = commands.find((c) => c.startsWith('npx openapi-typescript '));
      assert.ok(generate, commands.join('\n'));
      const dir = tempDir();
      await withService({ DATABASE_URL: await freshDatabase() }, async (s) => {
        const args = generate
          .split(' ')
          .slice(2)
          .map((a) => a.replace('http://127.0.0.1:8000', s.url).replace(/^api\.ts$/, join(dir, 'api.ts')));
        execFileSync(
          process.execPath,
          [join(ROOT, 'node_modules', 'openapi-typescript', 'bin', 'cli.js'), ...args],
          {
            stdio: 'pipe',
          }
        );
      });
      const types = readFileSync(join(dir, 'api.ts'), 'utf8');
      const create = /TodoCreate: \{([^}]*)\}/.exec(types)?.[1] ?? '';
      assert.match(create, /title: string;/);
      assert.match(create, /done\?: boolean;/);
      assert.match(create, /priority\?: number;/);
    }
  );

  test('every `VAR=... npm start` names settings that exist, with values they accept', () => {
    const starts = commands.filter((c) => / npm start/.test(c) && /^[A-Z_]+=/.test(c));
    assert.ok(starts.length >= 3, starts.join('\n'));
    for (const c of starts) {
      const env = Object.fromEntries([...c.matchAll(/([A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
      assert.doesNotThrow(() => loadConfig({}, env), c);
    }
  });

  test(
    'every `npm run client ...` against the service with its default settings: every request answered 200',
    { timeout: 180_000 },
    async () => {
      const clients = commands.filter((c) => /^npm run client( -- [^[]*)?$/.test(c));
      assert.ok(clients.length >= 2, clients.join('\n'));
      // Each against a service of its own, all at once: one pool each, as if each were the only command run.
      await Promise.all(
        clients.map(async (c) =>
          withService({ DATABASE_URL: await freshDatabase() }, async (s) => {
            const args = c
              .replace(/^npm run client( -- )?/, '')
              .split(' ')
              .filter(Boolean)
              // A report goes to a folder of the test's, never into the working copy.
              .map((a, i, all) => (all[i - 1] === '--report' ? join(tempDir('anp-readme-'), a) : a));
            const res = await runCli(['client', ...args, '--url', s.url]);
            assert.equal(res.code, 0, `${c}: ${res.stderr}`);
            // A burst's or an open loop's summary line; a sweep's row per rate (its errors in the fourth column).
            const summaries = res.stdout.split('\n').filter((l) => /^\/\S+: \d+ ok, \d+ errors/.test(l));
            const rates = res.stdout.split('\n').filter((l) => /^ +[\d.]+\/s +[\d.]+ +\d+ /.test(l));
            assert.ok(summaries.length + rates.length > 0, `${c}: ${res.stdout}`);
            for (const l of summaries) assert.match(l, / 0 errors/, `${c}: ${l}`);
            for (const l of rates) assert.equal(l.trim().split(/ +/)[3], '0', `${c}: ${l}`);
          })
        )
      );
    }
  );

  test('npm start -- --help and npm run cli -- db --help answer', async () => {
    assert.ok(commands.includes('npm start -- --help'));
    for (const args of [
      ['serve', '--help'],
      ['db', '--help'],
    ]) {
      assert.equal((await runCli(args)).code, 0);
    }
  });
});
