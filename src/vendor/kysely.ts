// Kysely as the service loads it (its ESM build is about 260 modules): bundled into one module by
// `npm run build`, as typebox.ts is. Only what the service uses.
export {
  DummyDriver,
  Kysely,
  Migrator,
  NO_MIGRATIONS,
  PostgresAdapter,
  PostgresDialect,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
} from 'kysely';
export type { CompiledQuery, Generated, Migration } from 'kysely';
