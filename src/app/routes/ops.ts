// Operational routes: liveness, readiness, the pool's state.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '../../vendor/typebox.ts';
import { answer, errors, PoolStatsBody, Servers } from '../http-schemas.ts';

/** Readiness must answer quickly even when the pool is saturated or the database is gone. */
const READY_TIMEOUT_MS = 1000;

const opsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store, replicas } = fastify;

  const tags = ['operations'];
  const Status = (description: string) =>
    answer(
      Type.Object(
        {
          status: Type.String(),
          reason: Type.Optional(Type.String({ description: 'why not, when not ready' })),
          reads: Type.Optional(
            Type.String({ description: 'with replicas, when none is in rotation: why reads go to the primary' })
          ),
        },
        { title: 'Status' }
      ),
      description
    );

  fastify.get(
    '/healthz',
    {
      schema: {
        operationId: 'liveness',
        summary: 'Liveness: 200 while the process runs',
        tags,
        response: { 200: Status('Alive'), ...errors() },
      },
    },
    async () => ({ status: 'ok' })
  );

  fastify.get(
    '/readyz',
    {
      schema: {
        operationId: 'readiness',
        summary:
          'Readiness: 200 when a query completed within the last second, or a pooled connection answers SELECT 1 ' +
          'within 1 s',
        description:
          'For load balancers: route traffic here only while it is 200. A busy pool is ready (its queries complete); ' +
          '503 while shutting down, or when the database path is broken.',
        tags,
        response: { 200: Status('Ready'), 503: Status('Not ready, with the reason'), ...errors() },
      },
    },
    async (req, reply) => {
      if (fastify.lifecycle.draining) return reply.code(503).send({ status: 'not ready', reason: 'shutting down' });
      // Still ready without replicas (the primary serves the reads), but it says so.
      const onPrimary = replicas?.readsOnPrimary();
      const ready = onPrimary ? { status: 'ready', reads: onPrimary } : { status: 'ready' };
      // A query that just completed proves the path works. Waiting for a connection instead would
      // fail every host of a saturated fleet at once, and a load balancer would take them all out.
      if (performance.now() - store.lastSuccessAt() < READY_TIMEOUT_MS) return ready;
      // Answered within READY_TIMEOUT_MS in every state: a ping that hangs (a partition) is given
      // up, and the pool ends it behind us (its cancel, then its connection destroyed).
      const ac = new AbortController();
      const onGone = () => ac.abort();
      req.dbContext.signal!.addEventListener('abort', onGone);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), READY_TIMEOUT_MS);
      });
      const ping = store.ping({ signal: ac.signal }).then(
        () => 'ok' as const,
        (err: Error) => err
      );
      const outcome = await Promise.race([ping, late]);
      clearTimeout(timer);
      req.dbContext.signal!.removeEventListener('abort', onGone);
      if (outcome === 'ok') return ready;
      ac.abort();
      const reason =
        outcome === 'late' || (outcome as { code?: string }).code === 'CLIENT_GONE'
          ? `no database connection or answer within ${READY_TIMEOUT_MS} ms`
          : outcome.message;
      return reply.code(503).send({ status: 'not ready', reason });
    }
  );

  fastify.get(
    '/pool',
    {
      schema: {
        operationId: 'poolStats',
        summary: "The pool's state and counters",
        tags,
        response: { 200: answer(PoolStatsBody, "The pool's state and counters"), ...errors() },
      },
    },
    async () => store.stats()
  );

  fastify.get(
    '/servers',
    {
      schema: {
        operationId: 'servers',
        summary:
          "Each PostgreSQL server's pool, each replica's lag and whether it serves reads, and how reads were routed",
        description: 'Without replicas, only the primary. Writes always go to the primary.',
        tags,
        response: { 200: answer(Servers, 'The servers and the routing of reads'), ...errors() },
      },
    },
    async () => {
      if (!replicas) return { servers: [{ name: 'primary', role: 'primary' as const, pool: store.stats() }] };
      return {
        servers: replicas.servers().map(({ name, role, stats, at, replica }) => ({
          name,
          role,
          ...(at ? { at } : {}),
          pool: stats,
          ...(replica
            ? {
                replica: {
                  up: replica.up,
                  inRotation: replica.usable,
                  ...(replica.reason ? { reason: replica.reason } : {}),
                  lagBytes: replica.lagBytes,
                  lagSeconds: replica.lagSeconds,
                },
              }
            : {}),
        })),
        reads: replicas.counts,
      };
    }
  );
};

export default opsRoutes;
