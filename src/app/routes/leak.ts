// A leak on purpose, bounded: the route answers at once and keeps its connection checked out for
// ?seconds=, as a handler that forgot to release it would. Past LEAK_DETECTION the pool reports it,
// and the report names this file and line (the checkout's stack, through source maps) and the route.
// Meanwhile the pool has one connection less for everyone: GET /pool shows it in use.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  answer,
  DB_ERRORS,
  errors,
  LEAK_DEFAULT_SECONDS,
  LEAK_MAX_SECONDS,
  LeakQuery,
  LeakResult,
} from '../http-schemas.ts';

const leakRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store, config } = fastify;
  // The blocking bridge's pool lives in a worker thread: it holds the connection, unwatched.
  const leakDetectionSeconds = config.dbMode === 'blocking' ? 0 : config.leakDetection;
  const schema = {
    operationId: 'leakConnection',
    summary: 'Keep a database connection checked out after answering, as a leak would',
    description:
      'Checks a pooled connection out, answers, and keeps the connection unused for ?seconds= ' +
      `(default ${LEAK_DEFAULT_SECONDS}, at most ${LEAK_MAX_SECONDS}) before giving it back. ` +
      'Held past LEAK_DETECTION, it is reported: a warn log line naming this route and the code that checked it out, ' +
      '/metrics (db_pool_leaks_total) and the dashboard.',
    tags: ['connection pool'],
    querystring: LeakQuery,
    response: { 200: answer(LeakResult, 'The connection is held'), ...errors(...DB_ERRORS) },
  };
  // Named, so that the leak report names it.
  fastify.get('/leak/', { schema }, async function leakConnection (req) {
    const seconds = req.query.seconds ?? LEAK_DEFAULT_SECONDS;
    await store.hold(seconds, req.dbContext);
    return { heldSeconds: seconds, waitMs: req.dbContext.lease?.waitMs ?? 0, leakDetectionSeconds };
  });
};

export default leakRoutes;
