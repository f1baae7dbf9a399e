// What people and tools watch: the dashboard page and its assets, /metrics.
import fastifyStatic from '@fastify/static';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chartJsFile } from '../assets.ts';
import type { App } from './app.ts';
import type { Metrics } from './metrics.ts';

const dashboardDir = fileURLToPath(new URL('../dashboard/', import.meta.url));

export interface LiveDeps {
  metrics: Metrics;
  /** The monitor thread's port, once it listens. */
  monitorPort: () => number | undefined;
}

export function liveRoutes(app: App, { metrics, monitorPort }: LiveDeps): void {
  const page = readFileSync(join(dashboardDir, 'index.html'), 'utf8');
  const chartJs = readFileSync(chartJsFile);

  app.get('/', { schema: { hide: true } }, async (req, reply) => {
    const port = monitorPort();
    if (!port) return reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: 'the monitor is starting' });
    const host = (req.headers.host ?? '127.0.0.1').replace(/:\d+$/, '');
    // The live stream comes from the monitor thread's own port: allow exactly that.
    reply.header('content-security-policy',
      `default-src 'self'; connect-src 'self' http://${host}:${port}; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'self'; base-uri 'self'`);
    return reply.type('text/html; charset=utf-8').send(page.replace('{{MONITOR_PORT}}', String(port)));
  });

  app.register(fastifyStatic, { root: dashboardDir, prefix: '/dashboard/', schemaHide: true, index: false });

  app.get('/assets/chart.umd.min.js', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('application/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(chartJs));

  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    const { contentType, body } = await metrics.text();
    return reply.type(contentType).send(body);
  });
}
