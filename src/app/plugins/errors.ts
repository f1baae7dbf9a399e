// Every error answer is JSON with a status, a stable code and a message; a client never sees a
// stack trace or an internal detail (the log does).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { STATUS_CODES } from 'node:http';
import { ServiceError } from '../../db/errors.ts';

export function errorBody (statusCode: number, message: string, code?: string) {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', ...(code ? { code } : {}), message };
}

function errorHandler (err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  if (err instanceof ServiceError) {
    // Shedding load must stay cheap: one log line per rejected request would amplify a flood.
    const level = err.code === 'CLIENT_GONE' || err.code === 'POOL_QUEUE_FULL' ? 'debug' : 'warn';
    req.log[level]({ code: err.code, url: req.url }, err.message);
    if (err.retryAfter !== undefined) reply.header('Retry-After', String(err.retryAfter));
    return reply.code(err.statusCode).send(errorBody(err.statusCode, err.message, err.code));
  }
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
  if (status === 500) {
    req.log.error({ err, url: req.url }, 'request failed');
    return reply.code(500).send(errorBody(500, 'Internal Server Error'));
  }
  return reply.code(status).send({ ...errorBody(status, err.message, err.code), ...invalidField(err) });
}

/** Names the offending field of a validation error: "title", "seconds", "id". */
function invalidField (err: FastifyError): { field?: string } {
  const first = err.validation?.[0];
  if (!first) return {};
  const params = first.params as { missingProperty?: string; additionalProperty?: string };
  const path = first.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const field = params.missingProperty ?? params.additionalProperty ?? path;
  return field ? { field } : {};
}

export default fp(async (fastify: FastifyInstance) => {
  fastify.setErrorHandler(errorHandler);
  fastify.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody(404, `Route ${req.method} ${req.url.split('?')[0]} not found`, 'NOT_FOUND'));
  });
}, { name: 'errors' });
