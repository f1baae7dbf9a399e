// Baseline (c): what a Node.js user would write with Fastify: plain Fastify 5, a pg.Pool of 15
// (as our pool's 5 + 10), a named prepared statement and a response schema. No plugins.
// FASTIFY_BODY=json_agg, (c2): PostgreSQL builds the body and the string is sent as it is, the
// technique of our service and of the bare (a2): the framework alone, without our features.
import Fastify from 'fastify';
import { AGG, pool, SELECT } from './db.mjs';

const Todo = {
  type: 'object',
  properties: { id: { type: 'integer' }, title: { type: 'string' }, done: { type: 'boolean' }, priority: { type: 'integer' } },
};
const app = Fastify();
const schema = { response: { 200: { type: 'object', properties: { todos: { type: 'array', items: Todo } } } } };
if (process.env.FASTIFY_BODY === 'json_agg') {
  // A string with a JSON content type skips the serializer: the schema only documents it.
  app.get('/todos/', { schema }, async (req, reply) => reply.type('application/json; charset=utf-8').send((await pool.query(AGG)).rows[0].body));
} else {
  app.get('/todos/', { schema }, async () => ({ todos: (await pool.query(SELECT)).rows }));
}

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1', backlog: 2048 });
console.log(`Listening on http://127.0.0.1:${process.env.PORT}`);
process.on('SIGTERM', () => app.close().then(() => pool.end()).then(() => process.exit(0)));
