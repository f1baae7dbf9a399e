// Who may talk to the service, and what the browser is told: only requests addressed to a host
// name the service answers to (DNS rebinding would otherwise let any web page drive a
// developer's local service through their browser), and security headers, computed once: they
// depend on nothing in the request. Pages (the dashboard, the docs) get helmet's full set; the
// JSON answers get the few that matter for data a browser must never render or frame (as OWASP
// advises for APIs), a sixth of the bytes on every response of the hot path.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { allowedHosts } from '../../config.ts';
import { hostName } from '../../os/net.ts';
import { errorBody } from './errors.ts';

/** The headers a helmet middleware sets, captured once from a run against a stand-in response. */
function securityHeaders (): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: string) => {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
    getHeader: (name: string) => headers[name.toLowerCase()],
  };
  helmet({
    // Plain HTTP is how this service is reached. Upgrading the page's requests to https would
    // break /docs (and any page) opened by a host name; and browsers ignore, with an error in
    // the console, a Cross-Origin-Opener-Policy that does not come over https or from localhost.
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
    crossOriginOpenerPolicy: false,
  })({} as IncomingMessage, res as unknown as ServerResponse, () => {});
  return headers;
}

/** For JSON: never sniffed into something else, never rendered, framed or read by another origin. */
const API_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cross-origin-resource-policy': 'same-origin',
  'referrer-policy': 'no-referrer',
};

/**
 * Read by infrastructure that addresses the service by IP (a Kubernetes or load balancer probe
 * sends Host: 10.244.1.7:8000, a Prometheus scrape the target's address): answered whatever the
 * Host header. None of them changes anything or says more than how the service is doing, which
 * is all a rebinding page could read from them.
 */
const ANY_HOST_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/** The routes that serve pages and what they load: everything else answers JSON. */
const isPage = (route: string | undefined) =>
  route !== undefined && (route === '/' || /^\/(docs|dashboard|assets)(\/|$)/.test(route));

export default fp(
  async (fastify: FastifyInstance) => {
    const hosts = allowedHosts(fastify.config);
    const anyHost = hosts.includes('*');
    const refusal = errorBody(
      421,
      `this service does not answer to that host name; it answers to ${hosts.join(', ')} (ALLOWED_HOSTS)`,
      'HOST_NOT_ALLOWED'
    );
    const pageHeaders = securityHeaders();
    const headersFor = new Map<string | undefined, Record<string, string>>();
    const headersOf = (route: string | undefined) => {
      let headers = headersFor.get(route);
      if (headers === undefined) headersFor.set(route, (headers = isPage(route) ? pageHeaders : API_HEADERS));
      return headers;
    };
    // The verdict on each Host header seen: nearly every request repeats one of a handful.
    const verdicts = new Map<string, boolean>();
    const allowed = (host: string) => {
      let ok = verdicts.get(host);
      if (ok === undefined) {
        if (verdicts.size > 1000) verdicts.clear(); // a flood of made-up names must not grow it
        verdicts.set(host, (ok = hosts.includes(hostName(host))));
      }
      return ok;
    };
    fastify.addHook('onRequest', (req, reply, done) => {
      reply.headers(headersOf(req.routeOptions.url));
      // No Host header (HTTP/1.0): no browser sends such a request, so no rebinding either.
      const host = req.headers.host;
      if (anyHost || host === undefined || allowed(host) || ANY_HOST_ROUTES.has(req.routeOptions.url ?? '')) {
        return done();
      }
      reply.code(421).send(refusal);
    });
  },
  { name: 'security' }
);
