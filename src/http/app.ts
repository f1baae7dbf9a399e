// The HTTP app: a factory that wires routes, validation and error handling, and does not listen.
import helmet from '@fastify/helmet';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv, type Options as AjvOptions } from 'ajv';
import Fastify, {
  LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply,
  type FastifyRequest, type RawServerDefault,
} from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { ServiceError } from '../db/errors.ts';
import type { CallContext, TodoStore } from '../db/todos.ts';
import { opsRoutes } from './ops-routes.ts';
import { sleepRoutes } from './sleep-routes.ts';
import { todoRoutes } from './todo-routes.ts';

export const BODY_LIMIT = 16 * 1024;

export interface AppDeps {
  store: TodoStore;
  sleep: (seconds: number) => Promise<void>;
  defaultSeconds: number;
  logger: FastifyBaseLogger;
}

export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

declare module 'fastify' {
  interface FastifyInstance {
    store: TodoStore;
  }
  interface FastifyRequest {
    /** This request's database context: its abort signal, and afterwards its pool timing. */
    db: CallContext;
  }
}

export function createApp(deps: AppDeps): App {
  const app = Fastify({
    loggerInstance: deps.logger,
    // Per-request lines only at debug level (onResponse below): 10,000 requests would flood info.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: BODY_LIMIT,
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App;

  app.setValidatorCompiler(validatorCompiler());
  // JSON only: any other body is a 415, not a string for the schema to reject.
  app.removeContentTypeParser(['text/plain']);
  app.decorate('store', deps.store);
  app.decorateRequest('db', null as unknown as CallContext);
  app.addHook('onRequest', async (req, reply) => {
    req.db = { signal: clientGone(reply.raw) };
  });
  app.addHook('onResponse', async (req, reply) => {
    const lease = req.db.lease;
    req.log.debug({
      method: req.method, url: req.url, statusCode: reply.statusCode, ms: round(reply.elapsedTime),
      ...(lease ? { poolWaitMs: round(lease.waitMs), poolHoldMs: round(lease.holdMs), overflow: lease.overflow } : {}),
    }, 'request');
  });

  app.register(helmet, { global: true });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody(404, `Route ${req.method} ${req.url.split('?')[0]} not found`, 'NOT_FOUND'));
  });

  sleepRoutes(app, deps);
  todoRoutes(app);
  opsRoutes(app);
  return app;
}

/**
 * Aborts when the client goes away before its response is complete. Not request.signal:
 * that follows the request stream's 'close', which Node emits as soon as a request body
 * has been read, so it aborts every POST right after parsing.
 */
function clientGone(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}

/**
 * Bodies are validated strictly (JSON has types: "5" is not a number); query strings and
 * path parameters are text, so they are coerced ("?limit=5" is the number 5).
 */
function validatorCompiler() {
  const common: AjvOptions = { useDefaults: true, removeAdditional: false, allErrors: false, strict: false };
  const strictAjv = new Ajv({ ...common, coerceTypes: false });
  const textAjv = new Ajv({ ...common, coerceTypes: 'array' });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? strictAjv : textAjv).compile(schema);
}

function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  if (err instanceof ServiceError) {
    // Shedding load must stay cheap: one log line per rejected request would amplify a flood.
    const level = err.code === 'CLIENT_GONE' || err.code === 'POOL_QUEUE_FULL' ? 'debug' : 'warn';
    req.log[level]({ code: err.code, url: req.url }, err.message);
    if (err.retryAfter !== undefined) reply.header('Retry-After', String(err.retryAfter));
    return reply.code(err.statusCode).send(errorBody(err.statusCode, err.message, err.code));
  }
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
  if (status === 500) {
    // The details go to the log only; the client gets no stack trace and no internals.
    req.log.error({ err, url: req.url }, 'request failed');
    return reply.code(500).send(errorBody(500, 'Internal Server Error'));
  }
  return reply.code(status).send({ ...errorBody(status, err.message, err.code), ...invalidField(err) });
}

/** Names the offending field of a validation error: "title", "seconds", "id". */
function invalidField(err: FastifyError): { field?: string } {
  const first = err.validation?.[0];
  if (!first) return {};
  const params = first.params as { missingProperty?: string; additionalProperty?: string };
  const path = first.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const field = params.missingProperty ?? params.additionalProperty ?? path;
  return field ? { field } : {};
}

export function errorBody(statusCode: number, message: string, code?: string) {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', ...(code ? { code } : {}), message };
}

const round = (ms: number) => Math.round(ms * 10) / 10;
