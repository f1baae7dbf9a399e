// The HTTP app: a factory that wires routes and error handling, and does not listen.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { ServiceError } from '../db/errors.ts';
import type { TodoStore } from '../db/todos.ts';
import { routes } from './routes.ts';

export interface AppDeps {
  store: TodoStore;
  sleep: (seconds: number) => Promise<void>;
  defaultSeconds: number;
  logger: FastifyBaseLogger;
}

export function createApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger,
    // Per-request lines only at debug level (onResponse below): 10,000 requests would flood info.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: 16 * 1024,
  });

  app.addHook('onResponse', async (req, reply) => {
    req.log.debug({ method: req.method, url: req.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof ServiceError) {
      req.log.warn({ code: err.code, url: req.url }, err.message);
      if (err.retryAfter !== undefined) reply.header('Retry-After', String(err.retryAfter));
      return reply.code(err.statusCode).send(body(err.statusCode, err.message, err.code));
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      req.log.error({ err, url: req.url }, 'request failed');
      return reply.code(500).send(body(500, 'Internal Server Error'));
    }
    return reply.code(status).send(body(status, err.message, err.code));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(body(404, `Route ${req.method} ${req.url.split('?')[0]} not found`, 'NOT_FOUND'));
  });

  routes(app, deps);
  return app;
}

function body(statusCode: number, message: string, code?: string) {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', ...(code ? { code } : {}), message };
}
