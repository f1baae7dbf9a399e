// Every error answer is JSON with a status, a stable code and a message; a client never sees a
// stack trace or an internal detail (the log does).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import Router, { type HTTPMethod } from 'find-my-way';
import { STATUS_CODES } from 'node:http';
import { ServiceError } from '../../db/errors.ts';
import type { ErrorCode } from '../http-schemas.ts';

/** An error answer: the one error schema of the OpenAPI document (src/app/http-schemas.ts). */
export function errorBody (statusCode: number, message: string, code: ErrorCode, field?: string) {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...(field ? { field } : {}) };
}

/**
 * Fastify's own refusals (FST_ERR_VALIDATION, FST_ERR_CTP_INVALID_JSON_BODY, ...) in the
 * service's family: a client handles one set of codes, not two.
 */
function codeOf (status: number): ErrorCode {
  if (status === 404) return 'NOT_FOUND';
  if (status === 405) return 'METHOD_NOT_ALLOWED';
  if (status === 413) return 'BODY_TOO_LARGE';
  if (status === 415) return 'UNSUPPORTED_MEDIA_TYPE';
  return 'BAD_INPUT';
}

/** Input the schema cannot judge (the bytes of a body, the text in it): 400, naming the field. */
export class BadInputError extends ServiceError {
  constructor (
    message: string,
    readonly field?: string
  ) {
    super(message, 'BAD_INPUT', 400);
  }
}

function errorHandler (err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  if (err instanceof ServiceError) {
    // Bad input and shed load are the client's to see, not the operator's: one log line per
    // rejected request would also amplify a flood.
    const level = err.statusCode < 500 || err.code === 'POOL_QUEUE_FULL' ? 'debug' : 'warn';
    req.log[level](
      { code: err.code, url: req.url, ...('detail' in err ? { detail: err.detail } : {}) },
      err.message
    );
    if (err.retryAfter !== undefined) reply.header('Retry-After', String(err.retryAfter));
    return reply
      .code(err.statusCode)
      .send(errorBody(err.statusCode, err.message, err.code as ErrorCode, (err as Partial<BadInputError>).field));
  }
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
  // Fastify's own two body refusals, said in the service's words: the limit, the type it takes.
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const limit = req.server.initialConfig.bodyLimit ?? 0;
    return reply
      .code(413)
      .send(
        errorBody(
          413,
          `the body is larger than the limit of ${limit / 1024} KiB (${limit} bytes)`,
          'BODY_TOO_LARGE'
        )
      );
  }
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return reply
      .code(415)
      .send(
        errorBody(
          415,
          (
            'the body must be JSON, sent with Content-Type: application/json; ' +
            `got ${JSON.stringify(req.headers['content-type'] ?? '')}`
          ).slice(0, 200),
          'UNSUPPORTED_MEDIA_TYPE'
        )
      );
  }
  if (status === 500) {
    req.log.error({ err, url: req.url }, 'request failed');
    return reply.code(500).send(errorBody(500, 'Internal Server Error', 'INTERNAL_ERROR'));
  }
  return reply.code(status).send({ ...errorBody(status, err.message, codeOf(status)), ...invalidField(err) });
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

const METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export default fp(
  async (fastify: FastifyInstance) => {
    fastify.setErrorHandler(errorHandler);

    // Every route, as the router sees it, so that a known path asked with another method is told
    // which methods it has (RFC 9110: 405 with Allow), not that it does not exist.
    const known = Router({ ignoreTrailingSlash: true });
    fastify.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) known.on(method as HTTPMethod, route.url, () => {});
    });

    fastify.setNotFoundHandler((req, reply) => {
      const path = req.url.split('?')[0]!;
      const allowed = METHODS.filter((m) => known.find(m, path));
      // A path the request's own method has a route for (a static folder) lacks only the file: 404.
      if (allowed.length && !allowed.includes(req.method as HTTPMethod)) {
        return reply
          .code(405)
          .header('allow', allowed.join(', '))
          .send(
            errorBody(
              405,
              `${req.method} is not allowed on ${path}; it allows ${allowed.join(', ')}`,
              'METHOD_NOT_ALLOWED'
            )
          );
      }
      return reply.code(404).send(errorBody(404, `Route ${req.method} ${path} not found`, 'NOT_FOUND'));
    });
  },
  { name: 'errors' }
);
