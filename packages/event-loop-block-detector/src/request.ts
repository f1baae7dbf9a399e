// Which request the thread is serving, for a block's `context`: the adapters for node:http and
// Express set it around the synchronous part of each request's handling, and the detector reads it
// on the stalled thread when it takes the stack. A plain variable, not AsyncLocalStorage: on Node
// 20 and 22 the latter turns on promise hooks for the whole process, a cost paid by every await,
// blocked or not. The price: work that continues after an `await` is not tied to its request unless
// the application passes a `context` of its own (an AsyncLocalStorage store, say).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestInfo } from './block.js';

// What is being served: an object and the function that describes it, read only when a block is
// seen, so that marking a request costs two assignments and no allocation.
let target: unknown;
let describe: ((target: never) => RequestInfo) | undefined;

/** The request being served now, as an adapter set it; undefined outside any. */
export function currentRequest (): RequestInfo | undefined {
  return describe?.(target as never);
}

/**
 * Runs `fn` as the serving of a request: a block inside it (its synchronous part) names the
 * request, as `info(of)` describes it. `info` runs only when a block is seen, so that what is
 * known later (Express's route) is read then.
 */
export function servingRequest<T, O> (of: O, info: (of: O) => RequestInfo, fn: () => T): T {
  const previousTarget = target;
  const previousDescribe = describe;
  target = of;
  describe = info;
  try {
    return fn();
  } finally {
    target = previousTarget;
    describe = previousDescribe;
  }
}

/**
 * Wraps a `(request, response)` function so that each call serves its request, as `info` describes
 * it, with no allocation per call: the adapters' hot path.
 */
export function servingEach<This, Req, Res, R> (
  fn: (this: This, req: Req, res: Res) => R,
  info: (req: Req) => RequestInfo
): (this: This, req: Req, res: Res) => R {
  return function served (this: This, req: Req, res: Res): R {
    const previousTarget = target;
    const previousDescribe = describe;
    target = req;
    describe = info as (target: never) => RequestInfo;
    try {
      return fn.call(this, req, res);
    } finally {
      target = previousTarget;
      describe = previousDescribe;
    }
  };
}

type Listener<Req extends IncomingMessage, Res extends ServerResponse> = (req: Req, res: Res) => void;

const describeHttp = (req: IncomingMessage): RequestInfo => ({ method: req.method ?? 'GET', url: req.url ?? '/' });

/**
 * For `node:http`: wraps a request listener so that a block in it names the request's method and URL.
 *
 * @example http.createServer(trackRequests((req, res) => { ... }))
 */
export function trackRequests<
  Req extends IncomingMessage = IncomingMessage,
  Res extends ServerResponse = ServerResponse
> (
  listener: Listener<Req, Res>
): Listener<Req, Res> {
  return servingEach(listener, describeHttp);
}

/** What an Express (or Connect) request carries that the middleware reads. */
interface ExpressRequest extends IncomingMessage {
  originalUrl?: string;
  route?: { path?: unknown };
}

const describeExpress = (req: ExpressRequest): RequestInfo => ({
  method: req.method ?? 'GET',
  url: req.originalUrl ?? req.url ?? '/',
  ...(typeof req.route?.path === 'string' ? { route: req.route.path } : {}),
});

/**
 * For Express and Connect: a middleware, mounted first, after which a block in any later middleware
 * or handler (their synchronous part) names the request's method, URL and Express's route pattern.
 *
 * @example app.use(requestTracker())
 */
export function requestTracker (): (req: ExpressRequest, res: ServerResponse, next: (err?: unknown) => void) => void {
  return function blockDetectorRequest (req, _res, next) {
    servingRequest(req, describeExpress, () => next());
  };
}
