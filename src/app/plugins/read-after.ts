// Read-your-writes with replicas, per request and without sticky sessions: a write's answer
// carries the WAL position of its commit (the X-Read-After header, and a cookie for browsers);
// a read that presents it is served only by a server that has replayed that far. Registered
// only with replicas: without them, no request pays for it.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { parseLsn } from '../../db/replica-watch.ts';
import { errorBody } from './errors.ts';

export const READ_AFTER_HEADER = 'x-read-after';
export const READ_AFTER_COOKIE = 'read_after';
/**
 * Long enough for any replica in rotation to have replayed it (REPLICA_MAX_LAG is at most an hour, most are seconds).
 */
const COOKIE_MAX_AGE_S = 300;

function fromCookie (cookie: string | undefined): string | undefined {
  if (!cookie) return undefined;
  for (const pair of cookie.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === READ_AFTER_COOKIE) {
      return decodeURIComponent(pair.slice(eq + 1).trim());
    }
  }
  return undefined;
}

export default fp(
  async (fastify: FastifyInstance) => {
    fastify.addHook('onRequest', (req, reply, done) => {
      const header = req.headers[READ_AFTER_HEADER];
      const raw = typeof header === 'string' ? header : fromCookie(req.headers.cookie);
      if (raw === undefined || raw === '') return done();
      const lsn = parseLsn(raw.trim());
      if (lsn === undefined) {
        const where = typeof header === 'string' ? 'X-Read-After' : `the ${READ_AFTER_COOKIE} cookie`;
        reply
          .code(400)
          .send(
            errorBody(
              400,
              `${where} must be a WAL position as a write's answer gives it, such as 0/16B3F28`,
              'BAD_INPUT',
              typeof header === 'string' ? 'X-Read-After' : READ_AFTER_COOKIE
            )
          );
        return;
      }
      req.dbContext.readAfter = lsn;
      done();
    });

    fastify.addHook('onSend', (req, reply, payload, done) => {
      const { wroteLsn, served } = req.dbContext ?? {};
      if (wroteLsn) {
        reply.header('X-Read-After', wroteLsn);
        reply.header(
          'Set-Cookie',
          `${READ_AFTER_COOKIE}=${wroteLsn}; Path=/; Max-Age=${COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax`
        );
      }
      if (served) reply.header('X-Served-By', served.server);
      done(null, payload);
    });
  },
  { name: 'read-after', dependencies: ['cancel-on-disconnect'] }
);
