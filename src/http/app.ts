// The HTTP app: a factory that wires routes, validation and error handling, and does not listen.
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
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
import { LiveGauges, now } from '../live/gauges.ts';
import type { RequestRecord } from '../live/monitor.ts';
import { liveRoutes } from './live-routes.ts';
import type { Metrics } from './metrics.ts';
import { opsRoutes } from './ops-routes.ts';
import { sleepRoutes } from './sleep-routes.ts';
import { todoRoutes } from './todo-routes.ts';

export const BODY_LIMIT = 16 * 1024;

export interface AppDeps {
  store: TodoStore;
  sleep: (seconds: number) => Promise<void>;
  defaultSeconds: number;
  logger: FastifyBaseLogger & { isLevelEnabled(level: string): boolean };
  metrics: Metrics;
  gauges: LiveGauges;
  /** Where completed requests go for the live timeline (the monitor thread), once it runs. */
  record?: (r: RequestRecord) => void;
  monitorPort: () => number | undefined;
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
    // Per-request lines only at debug level (see track()): 10,000 requests would flood info.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: BODY_LIMIT,
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App;

  app.setValidatorCompiler(validatorCompiler());
  // JSON only: any other body is a 415, not a string for the schema to reject.
  app.removeContentTypeParser(['text/plain']);
  app.decorate('store', deps.store);
  app.decorateRequest('db', null as unknown as CallContext);
  // Hot path: one callback-style hook and one 'close' listener per request, nothing more.
  app.addHook('onRequest', (req, reply, done) => {
    track(req, reply, deps);
    done();
  });

  app.register(helmet, { global: true });
  app.register(swagger, {
    openapi: {
      info: { title: 'async-node-postgres', version: '0.1.0', description: 'The Todo API and the sleep routes of the non-blocking Node.js + PostgreSQL example.' },
    },
  });
  app.register(swaggerUi, { routePrefix: '/docs' });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody(404, `Route ${req.method} ${req.url.split('?')[0]} not found`, 'NOT_FOUND'));
  });

  // Routes go in a plugin registered after @fastify/swagger, which collects them as they are added.
  app.register(async (scope) => {
    const routes = scope as unknown as App;
    sleepRoutes(routes, deps);
    todoRoutes(routes);
    opsRoutes(routes);
    liveRoutes(routes, deps);
    routes.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  });
  return app;
}

/**
 * Gives the request its database context, counts it in the live gauges and metrics, and
 * when its connection closes: aborts its database work if the client left before the
 * response was complete, and records the request's phases.
 *
 * Not request.signal: that follows the request stream's 'close', which Node emits as soon
 * as a request body has been read, so it aborts every POST right after parsing.
 */
function track(req: FastifyRequest, reply: FastifyReply, deps: AppDeps): void {
  const start = now();
  const ac = new AbortController();
  req.db = { signal: ac.signal };
  const route = req.routeOptions.url ?? 'unmatched';
  const live = LiveGauges.routeOf(req.routeOptions.url);
  deps.gauges.requestStarted(live);
  deps.metrics.requestStarted(route);
  const res = reply.raw;
  res.once('close', () => {
    const finished = res.writableFinished;
    if (!finished) ac.abort();
    const end = now();
    const status = finished ? res.statusCode : 499;
    const lease = req.db.lease;
    deps.gauges.requestEnded(live);
    deps.metrics.requestEnded(route, req.method, status, (end - start) / 1000, lease);
    if (deps.logger.isLevelEnabled('debug')) {
      req.log.debug({
        method: req.method, url: req.url, statusCode: status, ms: round(end - start),
        ...(lease ? { poolWaitMs: round(lease.waitMs), poolHoldMs: round(lease.holdMs), overflow: lease.overflow } : {}),
      }, 'request');
    }
    if (live === 'other' || !deps.record) return;
    deps.record({
      route: live, status, start, end,
      ...(lease ? { poolStart: lease.startedAt, poolAcquired: lease.startedAt + lease.waitMs, poolReleased: lease.startedAt + lease.waitMs + lease.holdMs, overflow: lease.overflow } : {}),
    });
  });
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
