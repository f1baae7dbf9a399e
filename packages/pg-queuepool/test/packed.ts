// The package as a user installs it: `npm pack` of the built package, unpacked into a
// node_modules of its own, with pg (its peer) beside it. The drop-in tests import the Pool from
// there, so they test what the tarball holds, not the source.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));
/** The pg the tests and the consumers load: the packed package must load the same one. */
const PG = dirname(createRequire(import.meta.url).resolve('pg/package.json'));

export interface Packed {
  /** The folder whose node_modules holds pg-queuepool (unpacked) and pg: a process started here requires it by name. */
  dir: string;
  /** The files the tarball holds, as `npm pack --json` lists them. */
  files: string[];
  /** pg-queuepool's entry point, for import(). */
  entry: string;
}

let packed: Packed | undefined;

// At the top of the file's root: it runs once the file's tests are done.
after(() => {
  if (packed) rmSync(packed.dir, { recursive: true, force: true });
});

/** Packs the package once per test file (its dist must be built: npm test builds first). */
export function pack (): Packed {
  if (packed) return packed;
  const dir = mkdtempSync(join(tmpdir(), 'pgqp-packed-'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: PACKAGE,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  const target = join(dir, 'node_modules', 'pg-queuepool');
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', join(dir, info!.filename), '-C', target, '--strip-components=1']);
  // The peer dependency, as npm would have it installed beside the package: the same pg the consumers use.
  symlinkSync(PG, join(dir, 'node_modules', 'pg'), 'dir');
  packed = {
    dir,
    files: info!.files.map((f) => f.path).sort(),
    entry: pathToFileURL(join(target, 'dist', 'index.js')).href,
  };
  return packed;
}
