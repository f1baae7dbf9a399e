// The tarball a user installs: only what they need, and loadable both ways, import and require
// (Node 20.19+ and 22.12+ load an ES module by require; CI runs this file on 20, 22 and 24).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pack } from '../packed.ts';

test(
  'npm pack holds the built code, its types, the README, the changelog and the licence: no source, tests, maps or ' +
    'benches',
  () => {
    const { files } = pack();
    const others = files.filter((f) => !/^dist\/[\w-]+\.(js|d\.ts)$/.test(f));
    assert.deepEqual(others, ['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']);
    for (const module of [
      'index',
      'pool',
      'lease',
      'queue',
      'options',
      'errors',
      'cancel',
      'deadline',
      'client-state',
      'tracing',
    ]) {
      assert.ok(files.includes(`dist/${module}.js`), `dist/${module}.js`);
      assert.ok(files.includes(`dist/${module}.d.ts`), `dist/${module}.d.ts`);
    }
  }
);

test(
  `require('pg-queuepool') and import on Node ${process.versions.node}: the same Pool, that connects nothing ` +
    'until asked',
  () => {
    const { dir } = pack();
    const script = `
    const { Pool, PoolError } = require('pg-queuepool');
    const pool = new Pool({ connectionString: 'postgresql://nobody@127.0.0.1:1/none', size: 1 });
    import('pg-queuepool').then((m) => {
      console.log(JSON.stringify({
        same: m.Pool === Pool,
        pool: typeof Pool,
        error: typeof PoolError,
        total: pool.totalCount,
        options: 'idleTimeoutMillis' in pool.options,
      }));
      return pool.end();
    });
  `;
    const out = execFileSync(process.execPath, ['-e', script], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.deepEqual(JSON.parse(out), { same: true, pool: 'function', error: 'function', total: 0, options: true });
  }
);

test('the unpacked package declares what it runs on: Node 20.19+, pg 8.11+ as a peer', () => {
  const pkg = JSON.parse(
    readFileSync(join(pack().dir, 'node_modules', 'pg-queuepool', 'package.json'), 'utf8')
  ) as {
    engines: { node: string };
    peerDependencies: Record<string, string>;
    dependencies?: Record<string, string>;
  };
  assert.equal(pkg.engines.node, '>=20.19');
  assert.deepEqual(pkg.peerDependencies, { pg: '^8.11.0' });
  assert.equal(pkg.dependencies, undefined, 'nothing else installed with it');
});
