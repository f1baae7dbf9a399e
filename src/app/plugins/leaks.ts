// Leaked connections, named: the pool reports a connection held past LEAK_DETECTION with the stack
// of the code that checked it out. Here that stack is mapped to the TypeScript source, the route
// and the function to look at are picked out, one warn line is logged (and one when it is given
// back at last), and the record goes to /metrics, the dashboard and whoever else listens.
// Registered only with LEAK_DETECTION on: it plugs into the store, the live view and the metrics.
import { SourceFrames, type Frame } from 'event-loop-block-detector';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { LeakReport } from '../../db/todos.ts';
import type { Leak } from '../../live/monitor.ts';
import { ROOT } from '../../paths.ts';

export interface Leaks {
  /** Calls `listener` with each leak, mapped to the source, after the log line, /metrics and the dashboard. */
  on(listener: (leak: Leak) => void): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    leaks: Leaks;
  }
}

const MAX_FRAMES = 8;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export type { Leak };

export default fp(
  async (fastify: FastifyInstance) => {
    const frames = new SourceFrames(ROOT);
    const listeners: ((leak: Leak) => void)[] = [];
    // Both reports of one checkout carry one id: a connection is checked out by one holder at a time.
    const held = new Map<unknown, number>();
    let ids = 0;
    fastify.onPoolLeak((report: LeakReport) => {
      const id = held.get(report.client) ?? ++ids;
      if (report.released) held.delete(report.client);
      else held.set(report.client, id);
      const mapped = SourceFrames.parse(report.stack)
        .slice(0, MAX_FRAMES)
        .map((f) => frames.frameOf(f));
      // The store checks the connection out for its caller: the code to look at is the caller's.
      const culprit = mapped.find((f) => frames.ours(f) && !f.file.startsWith('src/db/'));
      const leak: Leak = {
        id,
        at: Date.now(),
        heldMs: report.heldMs,
        thresholdMs: report.thresholdMs,
        released: report.released,
        route: report.label ?? null,
        culprit,
        frames: mapped,
      };
      const at = (f: Frame) => `${f.fn} (${f.file}:${f.line})`;
      const by = culprit ? at(culprit) : 'code outside the project';
      const serving = leak.route ? `, serving ${leak.route}` : '';
      const heldMs = Math.round(leak.heldMs);
      if (leak.released) {
        const given = `the database connection held too long by ${by} was given back after ${s(heldMs)}${serving}`;
        fastify.log.info({ heldMs, route: leak.route }, given);
      } else {
        const line = `a database connection has been held for ${s(heldMs)} (LEAK_DETECTION ${s(leak.thresholdMs)})`;
        fastify.log.warn(
          {
            heldMs,
            route: leak.route,
            culprit: culprit && at(culprit),
            frames: mapped.map(at),
          },
          `${line}: checked out by ${by}${serving}`
        );
      }
      if (!leak.released) fastify.metrics.leaked(leak.route);
      fastify.live.leak(leak);
      for (const listener of listeners) listener(leak);
    });
    fastify.decorate('leaks', {
      on (listener: (leak: Leak) => void) {
        listeners.push(listener);
      },
    });
  },
  { name: 'leaks', dependencies: ['store', 'live', 'metrics'] }
);
