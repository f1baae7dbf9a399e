// The original's routes: wait, then return every todo.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { setTimeout as delay } from 'node:timers/promises';
import type { Mode } from '../../config.ts';
import { answer, DB_ERRORS, errors, SleepQuery, TodoList } from '../http-schemas.ts';

const cell = new Int32Array(new SharedArrayBuffer(4));

/**
 * APP_MODE=blocking stalls the whole event loop, like time.sleep in a gunicorn sync worker; nonblocking yields to it.
 */
export function appSleep (mode: Mode): (seconds: number) => Promise<void> {
  if (mode === 'nonblocking') return (seconds) => delay(seconds * 1000);
  return async (seconds) => blockingSleep(seconds);
}

/** Named, so that the block detector names it: the event loop waits on a futex, serving nothing. */
function blockingSleep (seconds: number): void {
  Atomics.wait(cell, 0, 0, seconds * 1000);
}

const sleepRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store, config } = fastify;
  const sleep = appSleep(config.appMode);
  const response = { 200: answer(TodoList, 'Every todo, after the wait'), ...errors(...DB_ERRORS) };
  const tags = ["the original's routes"];

  // /sleep/python/ is the same route under the original's name, so that a client written for it finds it.
  for (const path of ['/sleep/node/', '/sleep/python/']) {
    const schema = {
      operationId: path === '/sleep/node/' ? 'sleepNode' : 'sleepPython',
      summary:
        path === '/sleep/node/'
          ? 'Wait in the app runtime, then return every todo'
          : "The same as /sleep/node/, under the original's name",
      description:
        'Waits SLEEP_SECONDS (or ?seconds=) in Node: with APP_MODE=blocking the whole event loop stalls, as ' +
        'time.sleep stalls a gunicorn sync worker; otherwise a timer. Then reads the todos.',
      tags,
      querystring: SleepQuery,
      response,
    };
    fastify.get(path, { schema }, async (req) => {
      await sleep(req.query.seconds ?? config.sleepSeconds);
      return { todos: await store.listTodos({}, req.dbContext) };
    });
  }

  const schema = {
    operationId: 'sleepPostgres',
    summary: 'Wait in PostgreSQL (pg_sleep), then return every todo',
    description:
      'SELECT pg_sleep(seconds), then the todo query, on one pooled connection: the request holds a connection for ' +
      'the whole sleep, so the pool (size + overflow) limits how many run at once.',
    tags,
    querystring: SleepQuery,
    response,
  };
  fastify.get('/sleep/postgres/', { schema }, async (req) => ({
    todos: await store.sleepThenList(req.query.seconds ?? config.sleepSeconds, req.dbContext),
  }));
};

export default sleepRoutes;
