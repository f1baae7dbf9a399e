// The build is what runs: compiled JavaScript only, which needs no devDependency at run time.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { stopProcess } from '../../src/os/processes.ts';
import { freshDatabase, onCleanup, request, ROOT, tempDir } from '../helper.ts';

/** Every .js file under `dir`. */
function jsFiles (dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js'))
    .map((f) => join(dir, f));
}

describe('the build', () => {
  test('npm run build compiles src/ to dist/, one .js per .ts', () => {
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'pipe' });
    const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.ts')
    );
    for (const f of sources) {
      assert.ok(existsSync(join(ROOT, 'dist', f.replace(/\.ts$/, '.js'))), `dist/${f.replace(/\.ts$/, '.js')}`);
    }
    assert.match(readFileSync(join(ROOT, 'dist', 'cli.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
    // The build imports .js files: no .ts specifier is left for node to fail on.
    for (const f of jsFiles(join(ROOT, 'dist'))) {
      assert.doesNotMatch(
        readFileSync(f, 'utf8'),
        /from '\.{1,2}\/[^']*\.ts'|import\('\.{1,2}\/[^']*\.ts'\)/,
        relative(ROOT, f)
      );
    }
  });

  test(
    'after npm prune --omit=dev, npm start serves, and the client and the demo still run',
    { timeout: 180_000 },
    async () => {
      const copy = tempDir('anp-pruned-');
      // packages/: the pool package, a workspace that node_modules links to, with its build.
      for (const f of ['package.json', 'package-lock.json', 'dist', 'public', 'packages']) {
        cpSync(join(ROOT, f), join(copy, f), { recursive: true });
      }
      // Hard links: a copy of node_modules in a moment, which npm prune then thins out by unlinking.
      // npm rewrites its hidden lockfile, so that one must be a file of the copy's own.
      execFileSync('cp', ['-al', join(ROOT, 'node_modules'), join(copy, 'node_modules')]);
      const hidden = join(copy, 'node_modules', '.package-lock.json');
      rmSync(hidden);
      copyFileSync(join(ROOT, 'node_modules', '.package-lock.json'), hidden);
      execFileSync('npm', ['prune', '--omit=dev', '--no-audit', '--no-fund'], { cwd: copy, stdio: 'pipe' });
      for (const dev of ['typescript', 'tsx', 'esbuild', 'playwright-core']) {
        assert.ok(!existsSync(join(copy, 'node_modules', dev)), `${dev} was pruned`);
      }

      // Every module of the build loads (the CLI and the worker threads' entries are run below instead).
      const modules = jsFiles(join(copy, 'dist')).filter((f) => !/(cli|-worker)\.js$/.test(f));
      const script = `for (const f of ${JSON.stringify(modules)}) await import(f);`;
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: copy, stdio: 'pipe' });

      for (const command of ['demo', 'client', 'serve']) {
        assert.equal(
          execFileSync(process.execPath, ['dist/cli.js', command, '--help'], { cwd: copy, encoding: 'utf8' }).split(
            '\n'
          )[0],
          `Usage: async-node-postgres ${command} [options]${command === 'client' ? ' [n]' : ''}`
        );
      }

      const db = await freshDatabase();
      // npm start, as the README says. DB_MODE=blocking loads the blocking bridge's worker thread;
      // the dashboard loads the monitor's.
      const server = spawn('npm', ['start'], {
        cwd: copy,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, DATABASE_URL: db, DB_MODE: 'blocking', LOG_LEVEL: 'warn', PORT: '0' },
      });
      onCleanup(async () => {
        await stopProcess(server, 'SIGKILL');
      });
      let out = '';
      server.stdout!.on('data', (d) => {
        out += d;
      });
      server.stderr!.on('data', (d) => {
        out += d;
      });
      for (let i = 0; i < 300 && !/Listening on [^\s"]+/.test(out); i++) await delay(50);
      const url = /Listening on ([^\s"]+)/.exec(out)?.[1];
      assert.ok(url, out);
      assert.equal((await request(url, 'GET', '/todos/')).status, 200);
      assert.equal((await request(url, 'GET', '/sleep/postgres/?seconds=0')).status, 200);
      assert.equal((await request(url, 'GET', '/')).status, 200);
      const client = execFileSync(
        process.execPath,
        ['dist/cli.js', 'client', '3', '--url', url, '--seconds', '0'],
        { cwd: copy, encoding: 'utf8' }
      );
      assert.match(client, /\/sleep\/postgres\/: 3 ok, 0 errors/);
      assert.equal(await stopProcess(server, 'SIGTERM'), 0);
    }
  );
});
