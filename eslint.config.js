// neostandard (the style of the Fastify world), with semicolons, as this code has always had them.
import neostandard from 'neostandard';

export default [
  ...neostandard({ ts: true, semi: true, ignores: ['**/dist/**', 'coverage/**', 'bench/results/**', 'test-results/**', 'bench/scratch/**'] }),
  {
    files: ['public/**/*.js'],
    languageOptions: { globals: { EventSource: 'readonly', location: 'readonly', document: 'readonly', window: 'readonly', Chart: 'readonly' } },
  },
];
