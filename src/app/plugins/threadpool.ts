// libuv's thread pool, watched. Four threads by default (UV_THREADPOOL_SIZE) run every fs call,
// dns.lookup (so every connect to a host name), zlib, and crypto's asynchronous forms; when they
// are busy, those wait in its queue while the event loop looks healthy. Twice a second a probe
// task that does no work (crypto.randomFill of one byte) is timed from submission to its callback:
// that is the queue's delay, plus the loop's own lag when the loop is blocked too. One probe at a
// time, so a saturated pool holds one probe, not a growing pile. The live view reads it from
// shared memory (it climbs while the probe is out); /metrics has it as a histogram.
import { randomFill } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import client from 'prom-client';
import { now } from '../../clock.ts';

const PROBE_EVERY_MS = 500;

export interface ThreadPool {
  /** Its threads, as libuv reads them: UV_THREADPOOL_SIZE when the process starts, 4 without. */
  readonly size: number;
  /** The delay a task meets now, in ms (the last probe's, or the one out, if longer). */
  delayMs(): number;
}

declare module 'fastify' {
  interface FastifyInstance {
    threadPool: ThreadPool;
  }
}

export default fp(
  async (fastify: FastifyInstance) => {
    const { live, metrics } = fastify;
    const delay = new client.Histogram({
      name: 'uv_threadpool_delay_seconds',
      help:
        "Time a task that does no work waited for libuv's thread pool (fs, dns.lookup, zlib, crypto), probed " +
        'twice a second; it includes the event loop lag when the loop is blocked',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [metrics.registry],
    });
    const cell = Buffer.alloc(1);
    let out = false;
    const probe = () => {
      if (out) return;
      out = true;
      const sent = now();
      live.gauges.threadPoolProbeSent(sent);
      randomFill(cell, () => {
        out = false;
        const ms = now() - sent;
        live.gauges.threadPoolProbeBack(ms);
        delay.observe(ms / 1000);
      });
    };
    const timer = setInterval(probe, PROBE_EVERY_MS);
    timer.unref();
    probe();
    fastify.decorate('threadPool', {
      // As libuv reads it (a setting of libuv's, not the service's): 4 unless set, at most 1024.
      size: Math.min(1024, Math.max(1, Number(process.env.UV_THREADPOOL_SIZE) || 4)),
      delayMs: () => live.gauges.threadPoolDelayMs(),
    });
    fastify.addHook('onClose', async () => {
      clearInterval(timer);
    });
  },
  { name: 'threadpool', dependencies: ['live', 'metrics'] }
);
