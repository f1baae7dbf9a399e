// The original's routes, and the todo list with no wait.
import type { FastifyInstance } from 'fastify';
import type { TodoStore } from '../db/todos.ts';
import { sleepQuery, todoList, error } from './schemas.ts';

export interface RouteDeps {
  store: TodoStore;
  sleep: (seconds: number) => Promise<void>;
  defaultSeconds: number;
}

interface SleepRequest {
  Querystring: { seconds?: number };
}

export function routes(app: FastifyInstance, deps: RouteDeps): void {
  const { store, sleep, defaultSeconds } = deps;
  const responses = { 200: todoList, '4xx': error, '5xx': error };
  const sleepSchema = { querystring: sleepQuery, response: responses };

  const sleepInNode = async (req: { query: { seconds?: number } }) => {
    await sleep(req.query.seconds ?? defaultSeconds);
    return { todos: await store.listTodos() };
  };
  app.get<SleepRequest>('/sleep/node/', { schema: sleepSchema }, sleepInNode);
  // Same handler under the original's name, so its client.py works unchanged.
  app.get<SleepRequest>('/sleep/python/', { schema: sleepSchema }, sleepInNode);

  app.get<SleepRequest>('/sleep/postgres/', { schema: sleepSchema }, async (req) => ({
    todos: await store.sleepThenList(req.query.seconds ?? defaultSeconds),
  }));

  app.get('/todos/', { schema: { response: responses } }, async () => ({ todos: await store.listTodos() }));

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await store.ping();
      return { status: 'ready' };
    } catch (err) {
      return reply.code(503).send({ status: 'not ready', reason: (err as Error).message });
    }
  });
}
