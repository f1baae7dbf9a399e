// The README's pictures of the dashboard (docs/images/dashboard.png, blocks.png), and the stamp beside them: a
// hash of the page's files when the picture was taken. A change to the page that leaves the
// picture behind fails test/unit/readme.test.ts until `npm run screenshot` has taken a new one.
// No test writes the picture: only that command does.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PAGE = join(ROOT, 'public', 'dashboard');
export const PICTURE = join(ROOT, 'docs', 'images', 'dashboard.png');
/** The second picture, taken by the same command: what blocked the event loop, named. */
export const BLOCKS_PICTURE = join(ROOT, 'docs', 'images', 'blocks.png');
export const STAMP = `${PICTURE}.sha256`;
/** The client's report: latency against offered rate across the pool's knee, and a percentile spectrum. */
export const KNEE_PICTURE = join(ROOT, 'docs', 'images', 'knee.png');
export const SPECTRUM_PICTURE = join(ROOT, 'docs', 'images', 'spectrum.png');

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
