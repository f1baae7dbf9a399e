// neostandard (the style of the Fastify world), with semicolons, as this code has always had them.
import neostandard from 'neostandard';

export default [
  ...neostandard({ ts: true, semi: true, ignores: ['**/dist/**', 'coverage/**', 'bench/results/**', 'test-results/**', 'bench/scratch/**'] }),
  {
    // Lines a reader takes in at a glance: code, comments, strings and templates wrap at 120 (a long
    // message is a concatenation). Only a regular expression, which cannot be split, and a URL stay whole.
    files: ['**/*.ts'],
    rules: {
      '@stylistic/max-len': ['error', {
        code: 120,
        ignoreUrls: true,
        ignoreRegExpLiterals: true,
      }],
    },
  },
  {
    // The compiled service loads these two through src/vendor/, bundled (their ESM builds are
    // hundreds of modules); a value imported from the package itself would load them all again.
    files: ['src/**/*.ts'],
    ignores: ['src/vendor/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: ['typebox', 'kysely'].map((name) => ({ name, allowTypeImports: true, message: `import ${name}'s values from src/vendor/${name}.ts (bundled at build)` })),
      }],
    },
  },
  {
    files: ['public/**/*.js'],
    languageOptions: { globals: { EventSource: 'readonly', location: 'readonly', document: 'readonly', window: 'readonly', Chart: 'readonly' } },
  },
];
