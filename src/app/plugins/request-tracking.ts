// Every request gets its database context (an abort signal, then its pool timing) and is counted:
// in the live gauges and metrics while it runs, on the dashboard's timeline and in the debug log
// once its connection closes.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { now } from '../../clock.ts';
import { ClientGone } from '../../db/abort.ts';
import type { CallContext } from '../../db/todos.ts';
import { LiveGauges, ROUTES } from '../../live/gauges.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's database context: its abort signal, and afterwards its pool timing. */
    db: CallContext;
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;

export default fp(async (fastify: FastifyInstance) => {
  const { live, metrics, log } = fastify;
  const debug = log.level === 'debug' || log.level === 'trace';

  /**
   * When the response's connection closes: abort the request's database work if the client
   * left before the response was complete, and record the request.
   *
   * Not request.signal: that follows the request stream's 'close', which Node emits as soon as
   * a request body has been read, so it aborts every POST right after parsing.
   */
  function track (req: FastifyRequest, reply: FastifyReply): void {
    const start = now();
    const gone = new ClientGone();
    const route = req.routeOptions.url ?? 'unmatched';
    req.db = { signal: gone, route: `${req.method} ${route}` };
    const slot = LiveGauges.slotOf(req.routeOptions.url);
    live.gauges.requestStarted(slot);
    const res = reply.raw;
    res.once('close', () => {
      // Ended: the whole response was handed over; otherwise the client left first.
      const finished = res.writableEnded;
      if (!finished) gone.abort();
      const end = now();
      const status = finished ? res.statusCode : 499;
      const lease = req.db.lease;
      live.gauges.requestEnded(slot);
      metrics.requestEnded(route, req.method, status, (end - start) / 1000, lease);
      if (debug) {
        req.log.debug({
          reqId: req.id,
          method: req.method,
          url: req.url,
          statusCode: status,
          ms: round(end - start),
          ...(lease ? { poolWaitMs: round(lease.waitMs), poolHoldMs: round(lease.holdMs), overflow: lease.overflow } : {}),
        }, 'request');
      }
      if (slot === ROUTES.length - 1 || !live.watched) return; // not a route the timeline shows, or nobody watches
      live.record({
        route: ROUTES[slot]!,
        status,
        start,
        end,
        ...(lease ? { poolStart: lease.startedAt, poolAcquired: lease.startedAt + lease.waitMs, poolReleased: lease.startedAt + lease.waitMs + lease.holdMs, overflow: lease.overflow } : {}),
      });
    });
  }

  // A plain object is not allowed as a decorator's initial value; each request sets its own.
  fastify.decorateRequest('db', undefined as unknown as CallContext);
  // Hot path: one callback-style hook and one 'close' listener per request, nothing more.
  fastify.addHook('onRequest', (req, reply, done) => {
    track(req, reply);
    done();
  });
}, { name: 'request-tracking', dependencies: ['live', 'metrics'] });
