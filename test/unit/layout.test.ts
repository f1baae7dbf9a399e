// The module boundaries docs/architecture.md describes, checked on the import statements: data
// flows one way (cli -> server -> app -> db -> postgres -> os), and the service never imports the
// harness, the demo, the client, the benchmarks or the tests.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const SRC = join(ROOT, 'src');
const LEAVES = ['clock', 'config', 'paths', 'scenarios', 'log'];

/** What each part of src/ may import, besides itself and the leaf modules (which import only each other). */
const ALLOWED: Record<string, string[]> = {
  os: [],
  vendor: [],
  postgres: ['os'],
  db: ['postgres', 'os', 'vendor'],
  live: ['db', 'postgres', 'os'],
  loop: [],
  app: ['db', 'live', 'loop', 'postgres', 'os', 'vendor'],
  server: ['app', 'db', 'postgres', 'os'],
  client: ['os'],
  harness: ['os'],
  faults: [],
  demo: ['harness', 'client', 'faults', 'loop', 'db', 'postgres', 'os'],
  sizing: ['harness', 'client', 'db', 'postgres', 'os'],
};

const partOf = (file: string) => relative(SRC, file).split('/')[0]!.replace(/\.ts$/, '');

test('src/ imports flow one way; the service never imports the harness, demo, client, bench or tests', () => {
  const problems: string[] = [];
  for (const f of readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((x) => x.endsWith('.ts'))) {
    const file = join(SRC, f);
    const from = partOf(file);
    if (from === 'cli') continue; // the entry point chooses a command: it may load any of them
    const text = readFileSync(file, 'utf8');
    for (const [, spec] of text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = join(dirname(file), spec!);
      if (!target.startsWith(SRC + '/')) {
        problems.push(`${f} imports ${spec} (outside src/)`);
        continue;
      }
      const to = partOf(target);
      if (to === from || LEAVES.includes(to)) continue;
      if (LEAVES.includes(from) || !ALLOWED[from]?.includes(to)) {
        problems.push(`${f} imports ${relative(SRC, target)}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

/** The workspace's packages, and the entry points each exports. */
const PACKAGES: Record<string, string[]> = {
  'pg-queuepool': ['.', './package.json'],
  'event-loop-block-detector': ['.', './fastify', './package.json'],
};

test('the service uses each package through what it exports: by its name, never a path into it', () => {
  const problems: string[] = [];
  const uses = new Map<string, number>();
  for (const f of readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((x) => x.endsWith('.ts'))) {
    const text = readFileSync(join(SRC, f), 'utf8');
    for (const [, spec] of text.matchAll(/(?:from|import\()\s*'([^']+)'/g)) {
      if (spec!.includes('packages/')) problems.push(`${f} imports ${spec}`);
      for (const [name, entries] of Object.entries(PACKAGES)) {
        if (spec !== name && !spec!.startsWith(`${name}/`)) continue;
        uses.set(name, (uses.get(name) ?? 0) + 1);
        if (!entries.includes(`.${spec!.slice(name.length)}`)) problems.push(`${f} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  for (const [name, entries] of Object.entries(PACKAGES)) {
    assert.ok(uses.get(name)! > 0, `the service runs on ${name}`);
    const { exports } = JSON.parse(readFileSync(join(ROOT, 'packages', name, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(exports), entries, `${name}'s entry points`);
  }
});

test('the build imports only files of the build: every relative import in dist/ names a .js file that exists', () => {
  const DIST = join(ROOT, 'dist');
  const problems: string[] = [];
  for (const f of readdirSync(DIST, { recursive: true, encoding: 'utf8' }).filter((x) => x.endsWith('.js'))) {
    const file = join(DIST, f);
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      if (!spec!.endsWith('.js') || !existsSync(join(dirname(file), spec!))) {
        problems.push(`dist/${f} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test(
  'the build bundles src/vendor/: each of its modules imports ' +
    'no package, so the service loads one module for each',
  () => {
    const DIST = join(ROOT, 'dist', 'vendor');
    const sources = readdirSync(join(SRC, 'vendor')).filter((f) => f.endsWith('.ts'));
    assert.ok(sources.length > 0);
    for (const f of sources) {
      const text = readFileSync(join(DIST, f.replace(/\.ts$/, '.js')), 'utf8');
      assert.deepEqual(
        [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^;]*?from\s*["']([^"']+)["']/g)].map((m) => m[1]),
        [],
        `dist/vendor/${f} imports`
      );
    }
  }
);

test('each package stands alone: none of its files (source, tests, benchmarks) imports from outside it', () => {
  for (const name of Object.keys(PACKAGES)) standsAlone(join(ROOT, 'packages', name));
});

function standsAlone (PACKAGE: string): void {
  const problems: string[] = [];
  const files = readdirSync(PACKAGE, { recursive: true, encoding: 'utf8' }).filter(
    (f) => f.endsWith('.ts') && !f.startsWith('dist/') && !f.startsWith('node_modules/')
  );
  assert.ok(files.some((f) => f.startsWith('test/')));
  for (const f of files) {
    const file = join(PACKAGE, f);
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
      if (!join(dirname(file), spec!).startsWith(PACKAGE + '/')) problems.push(`${f} imports ${spec}`);
    }
  }
  assert.deepEqual(problems, [], PACKAGE);
}

test("examples/ import only published packages (each a dependency of the example) and Node's own modules", () => {
  const EXAMPLES = join(ROOT, 'examples');
  const problems: string[] = [];
  for (const example of readdirSync(EXAMPLES)) {
    const dir = join(EXAMPLES, example);
    const { dependencies = {} } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    const sources = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith('.ts') && !f.startsWith('dist/') && !f.startsWith('node_modules/')
    );
    for (const f of sources) {
      for (const [, spec] of readFileSync(join(dir, f), 'utf8').matchAll(/(?:from|import\()\s*'([^']+)'/g)) {
        if (spec!.startsWith('node:')) continue;
        const name = spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]!;
        if (spec!.startsWith('.') || !(name in dependencies)) {
          problems.push(`examples/${example}/${f} imports ${spec}`);
        }
      }
    }
  }
  assert.deepEqual(problems, []);
});

test("docs/architecture.md lists the app's plugins in the order app.ts registers them", () => {
  const app = readFileSync(join(SRC, 'app', 'app.ts'), 'utf8');
  const files = new Map(
    [...app.matchAll(/^import (\w+)(?:, \{[^}]*\})? from '\.\/(plugins\/[\w-]+\.ts)';$/gm)].map((m) => [
      m[1]!,
      m[2]!,
    ])
  );
  const registered = [...app.matchAll(/fastify\.register\((\w+)/g)].map((m) => files.get(m[1]!)).filter(Boolean);
  const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const listed = [...doc.matchAll(/^\| `(plugins\/[\w-]+\.ts)` \|/gm)].map((m) => m[1]);
  assert.ok(registered.length >= 10, registered.join(', '));
  assert.deepEqual(listed, registered);
});

test('the core store knows nothing of replicas: replicated.ts wraps it, and adds what a call carries with them', () => {
  const core = readFileSync(join(SRC, 'db', 'todos.ts'), 'utf8');
  const imports = [...core.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
  assert.deepEqual(
    imports.filter((spec) => /replica/.test(spec)),
    []
  );
  const code = core.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  assert.doesNotMatch(code, /replica|readAfter|wroteLsn|Lsn\b/i);
});

test(
  'the app knows nothing of workers: no file of src/app/ ' +
    'imports node:cluster (src/server/ gives it what it needs)',
  () => {
    const APP = join(SRC, 'app');
    const users = readdirSync(APP, { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith('.ts') && /from 'node:cluster'/.test(readFileSync(join(APP, f), 'utf8'))
    );
    assert.deepEqual(users, []);
  }
);

test(
  "settings reach the app's plugins one way: app.ts " + 'registers each of its plugins and routes without options',
  () => {
    const app = readFileSync(join(SRC, 'app', 'app.ts'), 'utf8');
    const registrations = [...app.matchAll(/fastify\.register\(([^)]*)\)/g)].map((m) => m[1]!);
    assert.ok(registrations.length >= 15, registrations.join(', '));
    assert.deepEqual(
      registrations.filter((args) => args.includes(',')),
      []
    );
  }
);

describe('docs/architecture.md, the page a newcomer reads first, says what the tree holds', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const rows = (heading: string) =>
    doc
      .split(`\n${heading}\n`)[1]!
      .split('\n\n')[0]!
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) => l.split(' | ').map((cell) => cell.replace(/^\| | \|$/g, '')));

  test('every path it names exists', () => {
    const paths = [...doc.matchAll(/`((?:src|test|packages|examples|public|docs|bench|scripts)\/[\w./-]*)`/g)];
    assert.ok(paths.length > 50, `${paths.length} paths`);
    assert.deepEqual(
      paths.map((m) => m[1]!).filter((p) => !existsSync(join(ROOT, p))),
      []
    );
  });

  test("each file a module's row names by its name alone is in that module's folder", () => {
    const missing: string[] = [];
    for (const [folders, job] of rows('| folder | its one job | may import |')) {
      const dirs = [...folders!.matchAll(/`(src\/[\w-]+)\/`/g)].map((m) => join(ROOT, m[1]!));
      if (!dirs.length) continue;
      const files = dirs.flatMap((d) => readdirSync(d, { recursive: true, encoding: 'utf8' }));
      for (const [, name] of job!.matchAll(/`([\w/-]+\.ts)`/g)) {
        if (!files.includes(name!)) missing.push(`${folders}: ${name}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  test('the import rules it states are the ones this test enforces', () => {
    const stated: Record<string, string[]> = {};
    for (const [folders, , may] of rows('| folder | its one job | may import |')) {
      const part = /^`src\/(\w+)\/`$/.exec(folders!)?.[1];
      if (part) stated[part] = may === 'nothing' ? [] : may!.split(', ').sort();
    }
    const enforced = Object.fromEntries(
      Object.entries(ALLOWED)
        .filter(([part]) => part in stated)
        .map(([part, to]) => [part, [...to].sort()])
    );
    assert.ok(Object.keys(enforced).length >= 12, Object.keys(enforced).join(', '));
    assert.deepEqual(stated, enforced);
  });

  test('each function it places in a file is defined there', () => {
    const sources = ['src', ...Object.keys(PACKAGES).map((p) => `packages/${p}/src`)].flatMap((dir) =>
      readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).map((f) => `${dir}/${f}`)
    );
    const only = (found: string[]) => (found.length === 1 ? found[0] : undefined);
    const missing: string[] = [];
    let checked = 0;
    for (const line of doc.split('\n')) {
      const paths = [...line.matchAll(/`((?:src|packages)\/[\w./-]+\.ts)`/g)].map((m) => m[1]!);
      // `a()`, `b()` and `c()` in `file`: a path, or a file's name that a path on the same line ends with.
      for (const [claim, file] of line.matchAll(/(?:`\w+\(\)`(?:, | and ))*`\w+\(\)` in `([\w./-]+\.ts)`/g)) {
        const path = existsSync(join(ROOT, file!))
          ? file!
          : (paths.find((p) => p.endsWith(`/${file}`)) ?? only(sources.filter((p) => p.endsWith(`/${file}`))));
        if (!path) {
          missing.push(`${file}: no such file, or more than one`);
          continue;
        }
        const text = readFileSync(join(ROOT, path), 'utf8');
        for (const [, name] of claim!.matchAll(/`(\w+)\(\)`/g)) {
          checked++;
          if (!new RegExp('(?:function |^\\s+(?:private ' + `|async )*)${name} ?[(<]`, 'm').test(text)) {
            missing.push(`${name}() in ${path}`);
          }
        }
      }
    }
    assert.ok(checked >= 10, `${checked} functions`);
    assert.deepEqual(missing, []);
  });

  test("what each plugin decorates, as its row says, is what the plugin's file decorates", () => {
    const problems: string[] = [];
    for (const [plugin, , decorates] of rows('| plugin | what it owns | decorates | closes |')) {
      const file = /^`(plugins\/[\w-]+\.ts)`$/.exec(plugin!)?.[1];
      if (!file) continue;
      const text = readFileSync(join(SRC, 'app', file), 'utf8');
      const stated = [...decorates!.matchAll(/`(?:request\.)?(\w+)`/g)].map((m) => m[1]!).sort();
      const actual = [...text.matchAll(/decorate(?:Request)?\(\s*'(\w+)'/g)].map((m) => m[1]!).sort();
      if (JSON.stringify(stated) !== JSON.stringify(actual)) {
        problems.push(`${file}: says ${stated}, decorates ${actual}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
