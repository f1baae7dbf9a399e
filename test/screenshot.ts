// The README's picture of the dashboard: taken by the browser test, kept in docs/images/, and
// stamped with a hash of the page's files, so that a change to the page that leaves the picture
// behind fails the tests (test/unit/readme.test.ts) until a test run has refreshed it.
import { createHash } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PAGE = join(ROOT, 'public', 'dashboard');
export const SCREENSHOT = join(ROOT, 'docs', 'images', 'dashboard.png');
const STAMP = `${SCREENSHOT}.sha256`;

/** The hash of the dashboard's files, as they are now. */
export function pageHash (): string {
  const hash = createHash('sha256');
  for (const f of readdirSync(PAGE).sort()) hash.update(f).update(readFileSync(join(PAGE, f)));
  return hash.digest('hex');
}

/** The hash of the page the committed picture was taken of. */
export function stampedHash (): string {
  try {
    return readFileSync(STAMP, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Puts a fresh picture in docs/images/ when the page changed since the committed one was taken. */
export function refreshScreenshot (png: string): boolean {
  if (stampedHash() === pageHash()) return false;
  copyFileSync(png, SCREENSHOT);
  writeFileSync(STAMP, `${pageHash()}\n`);
  return true;
}
