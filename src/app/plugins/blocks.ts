// What blocks the event loop, named: the event-loop-block-detector package's Fastify plugin marks
// each handler's request, and each block it reports is logged in one warn line (the function and
// TypeScript line, the route, CPU or wait), counted in /metrics and shown on the dashboard.
// Registered only with BLOCK_DETECTOR on, before the routes, so that it sees each of them; off, no
// watcher thread runs and no inspector session is ever opened.
import type { Block as DetectedBlock, Frame } from 'event-loop-block-detector';
import { fastifyBlockDetector } from 'event-loop-block-detector/fastify';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Block } from '../../live/monitor.ts';
import { ROOT } from '../../paths.ts';

const at = (f: Frame) => `${f.fn} (${f.file}:${f.line})`;

/** The detector's block as the service shows it: with the route (`GET /block/cpu/`) its handler served. */
function asShown (detected: DetectedBlock): Block {
  const served = detected.context as { method?: string; route?: string } | undefined;
  return {
    at: detected.at,
    ms: detected.ms,
    sampledAfterMs: detected.sampledAfterMs,
    frames: detected.frames,
    culprit: detected.culprit,
    route: served?.route ? `${served.method} ${served.route}` : null,
    cpuShare: detected.cpuShare,
    runnableShare: detected.runnableShare,
  };
}

export default fp(
  async (fastify: FastifyInstance) => {
    const { config, live, metrics } = fastify;
    await fastify.register(fastifyBlockDetector, {
      thresholdMs: config.blockThreshold,
      root: ROOT,
      // Every block is the lesson here: none is held back.
      maxPerMinute: Number.MAX_SAFE_INTEGER,
      onBlock: (detected) => {
        const block = asShown(detected);
        const named = block.culprit ?? block.frames[0];
        fastify.log.warn(
          {
            blockedMs: Math.round(block.ms),
            route: block.route,
            culprit: block.culprit && at(block.culprit),
            frames: block.frames.map(at),
            stackAfterMs: block.frames.length ? Math.round(block.sampledAfterMs) : undefined,
            cpuShare: block.cpuShare,
            runnableShare: block.runnableShare,
          },
          `the event loop was blocked for ${Math.round(block.ms)} ms by ${
            named ? at(named) : 'code that let go before its stack could be taken'
          }${block.route ? `, serving ${block.route}` : ''}`
        );
        metrics.blocked(block.route, block.ms / 1000);
        live.block(block);
      },
    });
  },
  { name: 'blocks', dependencies: ['live', 'metrics'] }
);
