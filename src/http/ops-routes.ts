// Operational routes: liveness, readiness, the pool's state.
import type { App } from './app.ts';

/** Readiness must answer quickly even when the pool is saturated or the database is gone. */
const READY_TIMEOUT_MS = 1000;

export function opsRoutes(app: App): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (req, reply) => {
    try {
      await app.store.ping({ signal: AbortSignal.any([req.db.signal!, AbortSignal.timeout(READY_TIMEOUT_MS)]) });
      return { status: 'ready' };
    } catch (err) {
      const reason = (err as { code?: string }).code === 'CLIENT_GONE'
        ? `no database connection within ${READY_TIMEOUT_MS} ms`
        : (err as Error).message;
      return reply.code(503).send({ status: 'not ready', reason });
    }
  });

  app.get('/pool', async () => app.store.stats());
}
