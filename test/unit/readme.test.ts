// The README promises what a newcomer sees first, and what it shows must be current: the two
// commands, how to watch it live, a picture of the page as it is now, and where to go next; the
// reference in docs/ lists every setting; and every link of them all leads somewhere.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../../src/config.ts';
import { pageHash, stampedHash } from '../../scripts/dashboard-picture.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const configuration = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
/** The README and every page of docs/, by path from the root. */
const pages = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const anchorOf = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');

describe('README.md', () => {
  test(
    "the first screen: what this is, the two commands with how long they take, npm start with the dashboard's " +
      'address, the picture, the contents',
    () => {
      const first = readme.split('\n').slice(0, 45).join('\n');
      assert.match(first, /^npm install && npm run demo +# .*about [\d.]+ minutes\)$/m);
      assert.match(first, /^npm test +# .*about \d+ minutes\)$/m);
      assert.match(first, /`npm start`.*\n?.*http:\/\/127\.0\.0\.1:8000\//);
      assert.match(first, /!\[[^\]]+\]\(docs\/images\/dashboard\.png\)/);
      assert.match(first, /\*\*Contents:\*\*/);
    }
  );

  test(
    'the picture of the dashboard was taken of the page as ' +
      'it is now (npm run screenshot takes it; no test does)',
    () => {
      assert.ok(existsSync(join(ROOT, 'docs', 'images', 'dashboard.png')));
      assert.equal(
        stampedHash(),
        pageHash(),
        'public/dashboard changed since docs/images/dashboard.png was taken: run npm run screenshot, then commit ' +
          'docs/images/'
      );
    }
  );

  test('a front door: at most 250 lines, the reference in docs/', () => {
    assert.ok(readme.split('\n').length <= 250, `${readme.split('\n').length} lines`);
    for (const doc of ['configuration', 'api', 'operations']) {
      assert.match(readme, new RegExp(`\\]\\(docs/${doc}\\.md\\)`), doc);
    }
  });

  test('every setting is in the settings table of docs/configuration.md, with its flag and default', () => {
    for (const s of Object.values(SETTINGS)) {
      const value =
        s.default === undefined
          ? '\\(unset\\)'
          : `\`${s.default === true ? 'on' : s.default === false ? 'off' : String(s.default)}\``;
      assert.match(
        configuration,
        new RegExp(`^\\| \`${s.env}\` \\| \`--${s.flag}\` \\| ${value} \\| `, 'm'),
        s.env
      );
    }
  });

  test(
    'every link of the README and docs/ to a file of the repository leads to one, and every #anchor to a heading ' +
      'of its page',
    () => {
      const headings = (path: string) =>
        new Set([...readFileSync(join(ROOT, path), 'utf8').matchAll(/^#+ (.*)$/gm)].map((m) => anchorOf(m[1]!)));
      for (const page of pages) {
        const text = readFileSync(join(ROOT, page), 'utf8').replace(/```[\s\S]*?```/g, '');
        for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
          if (/^https?:/.test(target!)) continue;
          const [file, anchor] = target!.split('#');
          const path = file ? join(dirname(page), file) : page;
          assert.ok(existsSync(join(ROOT, path)), `${page}: no file ${target}`);
          if (anchor && path.endsWith('.md')) {
            assert.ok(headings(path).has(anchor), `${page}: no heading for ${target}`);
          }
        }
      }
    }
  );

  test("every file of the repository that the README, docs/ and the examples' READMEs name exists", () => {
    const examples = readdirSync(join(ROOT, 'examples')).map((e) => `examples/${e}/README.md`);
    const missing: string[] = [];
    let named = 0;
    for (const page of [...pages, ...examples]) {
      const text = readFileSync(join(ROOT, page), 'utf8');
      for (const [, path] of text.matchAll(/`((?:src|test|packages|examples|public|docs|bench|scripts)\/[\w./-]*)`/g)) {
        named++;
        if (!existsSync(join(ROOT, path!)) && !existsSync(join(ROOT, dirname(page), path!))) {
          missing.push(`${page}: ${path}`);
        }
      }
    }
    assert.ok(named > 100, `${named} paths`);
    assert.deepEqual(missing, []);
  });

  test('the verdict table it quotes is the one of the run in docs/demo.md', () => {
    const table = (text: string) =>
      text
        .split('\n')
        .filter((l) => /^\d\. .*\| ok$|^scenario +\|/.test(l))
        .join('\n');
    const quoted = table(readme);
    assert.ok(quoted.split('\n').length >= 6, quoted);
    assert.equal(quoted, table(readFileSync(join(ROOT, 'docs', 'demo.md'), 'utf8')));
  });

  test('MIT, as the LICENSE file says', () => {
    assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
    assert.match(readme, /^MIT \(\[LICENSE\]\(LICENSE\)\)/m);
  });
});
