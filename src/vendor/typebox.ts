// TypeBox as the service loads it. Its ESM build is about 370 modules; `npm run build` bundles
// this file into one (esbuild), as kysely.ts, so the compiled service loads one module for each:
// with Kysely's, about 14 MB less RSS and 0.4 s less start-up (BENCHMARKS.md, section 11).
// Run from source (tsx, the in-process tests), it is the package itself. Types come from the
// package either way.
export { Type } from 'typebox';
