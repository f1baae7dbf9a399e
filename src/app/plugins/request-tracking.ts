// Every request is counted: in the live gauges and metrics while it runs, on the dashboard's
// timeline and in the debug log once its connection closes. It only observes: the request's
// database context and its end come from cancel-on-disconnect.ts.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { now } from '../../clock.ts';
import { LiveGauges, ROUTES } from '../../live/gauges.ts';

interface Tracked {
  /** When the request arrived (clock.ts's now()). */
  start: number;
  /** Its row in the live gauges. */
  slot: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    tracked: Tracked;
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;

export default fp(
  async (fastify: FastifyInstance) => {
    const { live, metrics, log } = fastify;
    const debug = log.level === 'debug' || log.level === 'trace';

    // A plain object is not allowed as a decorator's initial value; each request sets its own.
    fastify.decorateRequest('tracked', undefined as unknown as Tracked);
    fastify.addHook('onRequest', (req, _reply, done) => {
      const slot = LiveGauges.slotOf(req.routeOptions.url);
      req.tracked = { start: now(), slot };
      live.gauges.requestStarted(slot);
      done();
    });

    fastify.onRequestClosed((req, reply, finished) => {
      const { start, slot } = req.tracked;
      const end = now();
      const status = finished ? reply.raw.statusCode : 499;
      const route = req.routeOptions.url ?? 'unmatched';
      const lease = req.dbContext.lease;
      live.gauges.requestEnded(slot);
      metrics.requestEnded(route, req.method, status, (end - start) / 1000, lease);
      if (debug) {
        req.log.debug(
          {
            reqId: req.id,
            method: req.method,
            url: req.url,
            statusCode: status,
            ms: round(end - start),
            ...(lease
              ? { poolWaitMs: round(lease.waitMs), poolHoldMs: round(lease.holdMs), overflow: lease.overflow }
              : {}),
          },
          'request'
        );
      }
      if (slot === ROUTES.length - 1 || !live.watched) return; // not a route the timeline shows, or nobody watches
      const pool = lease && {
        poolStart: lease.startedAt,
        poolAcquired: lease.startedAt + lease.waitMs,
        poolReleased: lease.startedAt + lease.waitMs + lease.holdMs,
        overflow: lease.overflow,
      };
      live.record({ route: ROUTES[slot]!, status, start, end, ...pool });
    });
  },
  { name: 'request-tracking', dependencies: ['cancel-on-disconnect', 'live', 'metrics'] }
);
