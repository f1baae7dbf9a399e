// The original's routes: wait, then return the todos (the first page: every todo at the original's 50 rows).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { setTimeout as delay } from 'node:timers/promises';
import type { Mode } from '../../config.ts';
import { answer, DB_ERRORS, errors, HEADERS, PAGE_SIZE, SleepQuery, TodoListJson } from '../http-schemas.ts';
import { sendPage } from '../paging.ts';

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
  const response = {
    200: answer(TodoListJson, `The first ${PAGE_SIZE} todos, after the wait`, { Link: HEADERS.Link }),
    ...errors(...DB_ERRORS),
  };
  // The original answered the whole table; a bounded first page keeps its contract at its 50 rows and
  // keeps a large table from being parsed and written again on the event loop (PostgreSQL writes the body).
  const firstPage = { limit: PAGE_SIZE };
  const tags = ["the original's routes"];

  // /sleep/python/ is the same route under the original's name, so that a client written for it finds it.
  for (const path of ['/sleep/node/', '/sleep/python/']) {
    const schema = {
      operationId: path === '/sleep/node/' ? 'sleepNode' : 'sleepPython',
      summary:
        path === '/sleep/node/'
          ? 'Wait in the app runtime, then return the first page of todos'
          : "The same as /sleep/node/, under the original's name",
      description:
        'Waits SLEEP_SECONDS (or ?seconds=) in Node: with APP_MODE=blocking the whole event loop stalls, as ' +
        'time.sleep stalls a gunicorn sync worker; otherwise a timer. Then reads the first page of todos, as ' +
        'GET /todos/ answers it (the Link header names the next).',
      tags,
      querystring: SleepQuery,
      response,
    };
    fastify.get(path, { schema }, async (req, reply) => {
      await sleep(req.query.seconds ?? config.sleepSeconds);
      return sendPage(reply, firstPage, await store.listTodosJson(firstPage, req.dbContext));
    });
  }

  const schema = {
    operationId: 'sleepPostgres',
    summary: 'Wait in PostgreSQL (pg_sleep), then return the first page of todos',
    description:
      'SELECT pg_sleep(seconds), then the first page of todos, on one pooled connection: the request holds a ' +
      'connection for the whole sleep, so the pool (size + overflow) limits how many run at once.',
    tags,
    querystring: SleepQuery,
    response,
  };
  fastify.get('/sleep/postgres/', { schema }, async (req, reply) => {
    const seconds = req.query.seconds ?? config.sleepSeconds;
    return sendPage(reply, firstPage, await store.sleepThenList(seconds, firstPage, req.dbContext));
  });
};

export default sleepRoutes;
