// Operational routes: liveness, readiness, the pool's state.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

/** Readiness must answer quickly even when the pool is saturated or the database is gone. */
const READY_TIMEOUT_MS = 1000;

const opsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store } = fastify;

  fastify.get('/healthz', async () => ({ status: 'ok' }));

  fastify.get('/readyz', async (req, reply) => {
    try {
      await store.ping({ signal: AbortSignal.any([req.db.signal!, AbortSignal.timeout(READY_TIMEOUT_MS)]) });
      return { status: 'ready' };
    } catch (err) {
      const reason = (err as { code?: string }).code === 'CLIENT_GONE'
        ? `no database connection within ${READY_TIMEOUT_MS} ms`
        : (err as Error).message;
      return reply.code(503).send({ status: 'not ready', reason });
    }
  });

  fastify.get('/pool', async () => store.stats());
};

export default opsRoutes;
