// Cancel on disconnect: every request gets its database context, whose signal aborts when the
// client goes away before its response is complete. The pool then takes the request out of its
// queue, or cancels its query in PostgreSQL. Others observe the end of each request here.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ClientGone } from '../../db/abort.ts';
import type { CallContext } from '../../db/todos.ts';

/** Told once per request, when its response's connection closes; `finished`: the whole response was handed over. */
export type RequestClosed = (req: FastifyRequest, reply: FastifyReply, finished: boolean) => void;

declare module 'fastify' {
  interface FastifyInstance {
    /** Calls `listener` as each request ends, answered or abandoned (one 'close' listener per request for all). */
    onRequestClosed(listener: RequestClosed): void;
  }
  interface FastifyRequest {
    /** This request's database context: its abort signal and route, then its pool timing. */
    dbContext: CallContext;
  }
}

export default fp(
  async (fastify: FastifyInstance) => {
    const listeners: RequestClosed[] = [];
    fastify.decorate('onRequestClosed', (listener: RequestClosed) => {
      listeners.push(listener);
    });
    // A plain object is not allowed as a decorator's initial value; each request sets its own.
    fastify.decorateRequest('dbContext', undefined as unknown as CallContext);

    // Not request.signal: that follows the request stream's 'close', which Node emits as soon as a
    // request body has been read, so it would abort every POST right after parsing.
    fastify.addHook('onRequest', (req, reply, done) => {
      const gone = new ClientGone();
      req.dbContext = { signal: gone, route: `${req.method} ${req.routeOptions.url ?? 'unmatched'}` };
      const res = reply.raw;
      res.once('close', () => {
        const finished = res.writableEnded;
        if (!finished) gone.abort();
        for (const listener of listeners) listener(req, reply, finished);
      });
      done();
    });
  },
  { name: 'cancel-on-disconnect' }
);
