// libuv's thread pool, from a request's side: the calls that wait on it, timed together, beside
// the probe's delay. While /offload/hash/ fills the pool, these wait in its queue and the event
// loop stays free (npm run demo -- --blocking shows it).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { lookup } from 'node:dns/promises';
import { stat } from 'node:fs/promises';
import { Type } from '../../vendor/typebox.ts';
import { byHostName, timeConnect } from '../../db/connect-probe.ts';
import { ROOT } from '../../paths.ts';
import { answer, errors } from '../http-schemas.ts';

const ThreadPoolTimes = Type.Object(
  {
    size: Type.Integer({ description: "libuv's threads (UV_THREADPOOL_SIZE when the process started; 4 without)" }),
    delayMs: Type.Number({ description: 'the delay a task that does no work met, as the service probes it' }),
    fsMs: Type.Number({ description: 'an fs call (stat of a directory), ms' }),
    lookupMs: Type.Number({ description: "dns.lookup('localhost'), ms" }),
    connectMs: Type.Number({ description: 'a connect to PostgreSQL by host name (lookup, TCP, authentication), ms' }),
  },
  { title: 'ThreadPoolTimes' }
);

const threadPoolRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { database, threadPool, config } = fastify;
  const url = byHostName(database.directUrl);
  const timed = async (work: () => Promise<unknown>) => {
    const start = performance.now();
    await work();
    return performance.now() - start;
  };

  fastify.get(
    '/threadpool/',
    {
      schema: {
        operationId: 'threadPool',
        summary: "How long the calls that need libuv's thread pool take now",
        description:
          'An fs call, a host-name lookup and a connect to PostgreSQL by host name, started together and timed, ' +
          "beside the service's probe of the pool's delay. They wait in the pool's queue while its threads are " +
          'busy (hashes, gzip, file reads), even though the event loop is free.',
        tags: ['what blocks'],
        response: { 200: answer(ThreadPoolTimes, 'The times, in milliseconds'), ...errors(503, 504) },
      },
    },
    async () => {
      const [fsMs, lookupMs, connectMs] = await Promise.all([
        timed(() => stat(ROOT)),
        timed(() => lookup('localhost')),
        timeConnect(url, config.connectTimeout * 1000),
      ]);
      return { size: threadPool.size, delayMs: threadPool.delayMs(), fsMs, lookupMs, connectMs };
    }
  );
};

export default threadPoolRoutes;
