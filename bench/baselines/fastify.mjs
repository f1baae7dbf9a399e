// Baseline (c): what a Node.js user would write with Fastify: plain Fastify 5, a pg.Pool of 15
// (as our pool's 5 + 10), a named prepared statement and a response schema. No plugins.
import Fastify from 'fastify';
import pg from 'pg';

// BASELINE_POOL=pinned: 15 connections opened at start and kept (see bare.mjs).
const pinned = process.env.BASELINE_POOL === 'pinned';
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 15, min: pinned ? 15 : 5, idleTimeoutMillis: pinned ? 0 : 1000 });
pool.on('error', () => {});
if (pinned) await Promise.all(Array.from({ length: 15 }, () => pool.connect())).then((clients) => clients.forEach((c) => c.release()));
const SELECT = { name: 'all_todos', text: 'SELECT id, title, done, priority FROM todo ORDER BY id' };

const Todo = {
  type: 'object',
  properties: { id: { type: 'integer' }, title: { type: 'string' }, done: { type: 'boolean' }, priority: { type: 'integer' } },
};
const app = Fastify();
app.get('/todos/', { schema: { response: { 200: { type: 'object', properties: { todos: { type: 'array', items: Todo } } } } } }, async () => ({
  todos: (await pool.query(SELECT)).rows,
}));

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1', backlog: 2048 });
console.log(`Listening on http://127.0.0.1:${process.env.PORT}`);
process.on('SIGTERM', () => app.close().then(() => pool.end()).then(() => process.exit(0)));
