// The Fastify adapter: a plugin that starts a detector with the application (and stops it in
// onClose), and names the request a block happens in: method, URL and route pattern, for the
// synchronous part of every route's handler. Register it before the routes it should see.
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { RequestInfo } from './block.js';
import { startBlockDetector, type BlockDetector, type BlockDetectorOptions } from './detector.js';
import { servingEach } from './request.js';

/** Options of the Fastify plugin: the detector's, or a detector started already (which the plugin leaves running). */
export type FastifyBlockDetectorOptions = BlockDetectorOptions & { detector?: BlockDetector };

declare module 'fastify' {
  interface FastifyInstance {
    /** The detector the plugin started (or was given). */
    blockDetector: BlockDetector;
  }
}

const describe = (req: FastifyRequest): RequestInfo => ({
  method: req.method,
  url: req.url,
  ...(req.routeOptions.url === undefined ? {} : { route: req.routeOptions.url }),
});

const plugin: FastifyPluginAsync<FastifyBlockDetectorOptions> = async (fastify: FastifyInstance, options) => {
  const { detector: given, ...detectorOptions } = options;
  fastify.addHook('onRoute', (route) => {
    route.handler = servingEach(route.handler as RouteHandlerMethod, describe) as RouteHandlerMethod;
  });
  const detector = given ?? (await startBlockDetector(detectorOptions));
  fastify.decorate('blockDetector', detector);
  if (!given) fastify.addHook('onClose', async () => detector.stop());
};

// As fastify-plugin would mark it: not encapsulated, so it sees every route registered after it.
Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'event-loop-block-detector',
});

/** The Fastify plugin: `app.register(fastifyBlockDetector, { thresholdMs: 100, onBlock })`, before the routes. */
export const fastifyBlockDetector = plugin;
export default plugin;
