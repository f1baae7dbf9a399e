// The README promises what a newcomer sees first, and what it shows must be current: the two
// commands, how to watch it live, a picture of the page as it is now, every setting, and links
// that lead somewhere.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../../src/config.ts';
import { pageHash, stampedHash } from '../../scripts/dashboard-picture.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('README.md', () => {
  test('the first screen: what this is, the two commands with how long they take, npm start with the dashboard\'s address, the picture, the contents', () => {
    const first = readme.split('\n').slice(0, 45).join('\n');
    assert.match(first, /^npm install && npm run demo +# .*about [\d.]+ minutes\)$/m);
    assert.match(first, /^npm test +# .*about \d+ minutes\)$/m);
    assert.match(first, /`npm start`.*\n?.*http:\/\/127\.0\.0\.1:8000\//);
    assert.match(first, /!\[[^\]]+\]\(docs\/images\/dashboard\.png\)/);
    assert.match(first, /\*\*Contents:\*\*/);
  });

  test('the picture of the dashboard was taken of the page as it is now (npm run screenshot takes it; no test does)', () => {
    assert.ok(existsSync(join(ROOT, 'docs', 'images', 'dashboard.png')));
    assert.equal(stampedHash(), pageHash(), 'public/dashboard changed since docs/images/dashboard.png was taken: run npm run screenshot, then commit docs/images/');
  });

  test('every setting is in the settings table, with its flag and default', () => {
    for (const s of Object.values(SETTINGS)) {
      const value = s.default === undefined ? '\\(unset\\)' : `\`${s.default === true ? 'on' : s.default === false ? 'off' : String(s.default)}\``;
      assert.match(readme, new RegExp(`^\\| \`${s.env}\` \\| \`--${s.flag}\` \\| ${value} \\| `, 'm'), s.env);
    }
  });

  test('every link to a file of the repository leads to one, and every #anchor to a heading', () => {
    const anchors = new Set([...readme.matchAll(/^#+ (.*)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
    for (const [, target] of readme.matchAll(/\]\(([^)]+)\)/g)) {
      if (/^https?:/.test(target!)) continue;
      if (target!.startsWith('#')) assert.ok(anchors.has(target!.slice(1)), `no heading for ${target}`);
      else assert.ok(existsSync(join(ROOT, target!.split('#')[0]!)), `no file ${target}`);
    }
  });

  test('the verdict table it quotes is the one of the run in docs/demo.md', () => {
    const table = (text: string) => text.split('\n').filter((l) => /^\d\. .*\| ok$|^scenario +\|/.test(l)).join('\n');
    const quoted = table(readme);
    assert.ok(quoted.split('\n').length >= 6, quoted);
    assert.equal(quoted, table(readFileSync(join(ROOT, 'docs', 'demo.md'), 'utf8')));
  });

  test('MIT, as the LICENSE file says', () => {
    assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
    assert.match(readme, /^MIT \(\[LICENSE\]\(LICENSE\)\)/m);
  });
});
