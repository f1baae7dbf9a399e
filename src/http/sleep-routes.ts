// The original's routes: wait, then return every todo.
import type { FastifyRequest } from 'fastify';
import type { App } from './app.ts';
import { errors, SleepQuery, TodoList } from './schemas.ts';

export interface SleepDeps {
  sleep: (seconds: number) => Promise<void>;
  defaultSeconds: number;
}

export function sleepRoutes(app: App, { sleep, defaultSeconds }: SleepDeps): void {
  const schema = { querystring: SleepQuery, response: { 200: TodoList, ...errors } };

  const sleepInApp = async (req: FastifyRequest<{ Querystring: { seconds?: number } }>) => {
    await sleep(req.query.seconds ?? defaultSeconds);
    return { todos: await app.store.listTodos({}, req.db) };
  };
  app.get('/sleep/node/', { schema }, sleepInApp);
  // The same handler under the original's name, so a client written for it finds its route.
  app.get('/sleep/python/', { schema }, sleepInApp);

  app.get('/sleep/postgres/', { schema }, async (req) => ({
    todos: await app.store.sleepThenList(req.query.seconds ?? defaultSeconds, req.db),
  }));
}
