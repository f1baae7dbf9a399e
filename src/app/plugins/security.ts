// Who may talk to the service, and what the browser is told: only requests addressed to a host
// name the service answers to (DNS rebinding would otherwise let any web page drive a
// developer's local service through their browser), and security headers computed once.
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { allowedHosts } from '../../config.ts';
import { hostName } from '../../os/net.ts';
import { errorBody } from './errors.ts';

export default fp(async (fastify: FastifyInstance) => {
  const hosts = allowedHosts(fastify.config);
  const anyHost = hosts.includes('*');
  const refusal = errorBody(421, `this service does not answer to that host name; it answers to ${hosts.join(', ')} (ALLOWED_HOSTS)`, 'HOST_NOT_ALLOWED');
  fastify.addHook('onRequest', (req, reply, done) => {
    // No Host header (HTTP/1.0): no browser sends such a request, so no rebinding either.
    const host = req.headers.host;
    if (anyHost || host === undefined || hosts.includes(hostName(host))) return done();
    reply.code(421).send(refusal);
  });

  await fastify.register(helmet, {
    global: true,
    // Plain HTTP is how this service is reached. Upgrading the page's requests to https would
    // break /docs (and any page) opened by a host name; and browsers ignore, with an error in
    // the console, a Cross-Origin-Opener-Policy that does not come over https or from localhost.
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
    crossOriginOpenerPolicy: false,
  });
}, { name: 'security' });
