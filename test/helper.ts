// The tests' helpers, one module per job, gathered here so that a test imports them from one place:
// cleanup.ts (the file's cleanup hook, temporary folders, polling), postgres.ts (the cluster, a fresh
// database per test, statements, PgBouncer), app.ts (build(t): the app in the test process),
// http.ts (real requests), service.ts (the built service and CLI as processes), metrics.ts.
export * from './helpers/app.ts';
export * from './helpers/cleanup.ts';
export * from './helpers/http.ts';
export * from './helpers/metrics.ts';
export * from './helpers/postgres.ts';
export * from './helpers/service.ts';
