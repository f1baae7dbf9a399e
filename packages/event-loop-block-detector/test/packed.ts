// The package as a user installs it: `npm pack` of the built package, unpacked into a node_modules
// of its own beside the frameworks the fixtures use, and the fixtures (TypeScript) built into that
// folder by esbuild with source maps, as an application's build would be. A fixture runs there as
// an application of its own: its root is that folder, its source src/<name>.ts.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(PACKAGE, 'test', 'fixtures');
const require = createRequire(import.meta.url);

export interface Packed {
  /** The application's folder: node_modules/, src/ (the fixtures) and dist/ (their build). */
  dir: string;
  /** The files the tarball holds, as `npm pack --json` lists them. */
  files: string[];
}

let packed: Packed | undefined;

after(() => {
  if (packed) rmSync(packed.dir, { recursive: true, force: true });
});

/** Packs the package and builds the fixtures, once per test file (the package's dist must be built). */
export function pack (): Packed {
  if (packed) return packed;
  const dir = mkdtempSync(join(tmpdir(), 'elbd-packed-'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: PACKAGE,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  const target = join(dir, 'node_modules', 'event-loop-block-detector');
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', join(dir, info!.filename), '-C', target, '--strip-components=1']);
  for (const framework of ['express', 'fastify']) {
    symlinkSync(dirname(require.resolve(`${framework}/package.json`)), join(dir, 'node_modules', framework), 'dir');
  }
  mkdirSync(join(dir, 'src'));
  const sources = readdirSync(FIXTURES).filter((f) => f.endsWith('.ts'));
  for (const f of sources) copyFileSync(join(FIXTURES, f), join(dir, 'src', f));
  buildSync({
    entryPoints: sources.map((f) => join(dir, 'src', f)),
    outdir: join(dir, 'dist'),
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    logLevel: 'warning',
  });
  packed = { dir, files: info!.files.map((f) => f.path).sort() };
  return packed;
}
