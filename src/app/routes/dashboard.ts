// The live dashboard: its page, its static files and Chart.js, all served locally.
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chartJsFile, dashboardDir } from '../../paths.ts';

const dashboardRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const template = readFileSync(join(dashboardDir, 'index.html'), 'utf8');
  const chartJs = readFileSync(chartJsFile);
  let page: Promise<{ html: string; csp: string }> | undefined;

  /** Built from the settings and the stream's port: nothing in it comes from a request. */
  const render = async () => {
    const stream = await fastify.live.stream();
    // LIVE_STREAM=port: the page reads MONITOR_PORT under whichever name it was opened by (CSP
    // cannot list IPv6 literals such as [::1], so the host is a wildcard); proxy: its own origin.
    const viaProxy = fastify.config.liveStream === 'proxy';
    return {
      html: template
        .replace('{{LIVE_PORT}}', viaProxy ? '' : String(stream.port))
        .replace('{{LIVE_WORKERS}}', stream.workers.join(','))
        .replace('{{REPLICAS}}', String(fastify.replicas?.replicas.length ?? 0)),
      csp:
        `default-src 'self'; connect-src 'self'${viaProxy ? '' : ` http://*:${stream.port}`}; img-src 'self' ` +
        "data:; style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'self'; base-uri " +
        "'self'",
    };
  };

  fastify.get('/', { schema: { hide: true } }, async (_req, reply) => {
    // With workers, built afresh each time: a worker that died was replaced by one with a new number.
    const { csp, html } = await (fastify.config.workers > 1 ? render() : (page ??= render()));
    return reply.header('content-security-policy', csp).type('text/html; charset=utf-8').send(html);
  });

  await fastify.register(fastifyStatic, {
    root: dashboardDir,
    prefix: '/dashboard/',
    schemaHide: true,
    index: false,
  });

  fastify.get('/assets/chart.umd.min.js', { schema: { hide: true } }, async (_req, reply) =>
    reply
      .type('application/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(chartJs)
  );
};

export default dashboardRoutes;
