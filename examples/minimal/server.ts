// The lesson in one file: a Fastify service whose every wait is non-blocking, on a pool with a
// ceiling (size + overflow) and one timeout, that cancels the database's work when the client
// leaves, says why it cannot serve, and drains on shutdown. It uses only published packages.
import closeWithGrace from 'close-with-grace';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, PoolError } from 'pg-queuepool';

/** Stops the start with a message that says why (2: a setting, 1: the database). */
function refuse (message: string, code = 2): never {
  console.error(message);
  process.exit(code);
}

/** A whole number from the environment, or its default. */
function setting (name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    refuse(`${name} must be a whole number of 0 or more, not ${JSON.stringify(text)}`);
  }
  return value;
}

const connectionString =
  process.env.DATABASE_URL ||
  refuse('DATABASE_URL is required: the PostgreSQL server to use (postgres://user:password@host:5432/db)');

const pool = new Pool({
  connectionString,
  // SQLAlchemy's QueuePool: 5 kept open, up to 10 more under load, 30 s to get one.
  size: setting('POOL_SIZE', 5),
  maxOverflow: setting('POOL_OVERFLOW', 10),
  timeout: setting('POOL_TIMEOUT', 30) * 1000,
  // A query with no answer (a partitioned network) fails instead of holding its connection.
  queryTimeout: 75_000,
  application_name: 'minimal',
});

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  // At most the longest sleep plus the pool's wait: a slow client cannot hold a socket for ever.
  requestTimeout: 120_000,
  // Idle keep-alive sockets are closed at shutdown; busy ones finish their response first.
  forceCloseConnections: 'idle',
});

// An idle connection that breaks (the server restarted) is dropped by the pool, which tells us.
pool.on('error', (err) => app.log.warn({ err }, 'an idle database connection failed; the pool replaces it'));

declare module 'fastify' {
  interface FastifyRequest {
    /** Aborts when the client goes away before its response is complete. */
    gone: AbortSignal;
  }
}

// Cancel on disconnect. Not request.signal: it follows the request stream, which closes as soon
// as a body has been read, so it would abort every POST. The response's 'close' before its end
// is the client leaving; the pool then leaves the queue, or cancels the query in PostgreSQL.
app.decorateRequest('gone', undefined as unknown as AbortSignal);
app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
  const controller = new AbortController();
  request.gone = controller.signal;
  reply.raw.once('close', () => {
    if (!reply.raw.writableEnded) controller.abort();
  });
});

// Every error as JSON with a code; the pool's say why (503 SQLAlchemy's message past the timeout).
const STATUS: Record<string, number> = {
  POOL_TIMEOUT: 503,
  POOL_QUEUE_FULL: 503,
  CONNECT_FAILED: 503,
  POOL_ENDED: 503,
  QUERY_TIMEOUT: 504,
};
app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
  // The client left and its work was stopped: nobody reads this answer; 499 is for the log.
  if (request.gone?.aborted) return reply.code(499).send({ error: 'CLIENT_GONE', message: 'the client went away' });
  if (err instanceof PoolError) {
    return reply.code(STATUS[err.code] ?? 503).send({ error: err.code, message: err.message });
  }
  if (err.statusCode && err.statusCode < 500) {
    return reply.code(err.statusCode).send({ error: err.code ?? 'BAD_REQUEST', message: err.message });
  }
  request.log.error({ err }, 'request failed');
  return reply.code(500).send({ error: 'INTERNAL', message: 'internal error' });
});

const seconds = {
  querystring: {
    type: 'object',
    properties: { seconds: { type: 'number', minimum: 0, maximum: 60, default: 1 } },
    additionalProperties: false,
  },
} as const;

// The wait in the runtime: a timer, so the event loop serves everyone else meanwhile.
app.get('/sleep/runtime/', { schema: seconds }, async (request) => {
  const { seconds: s } = request.query as { seconds: number };
  await sleep(s * 1000, undefined, { signal: request.gone });
  return { slept: s, in: 'runtime' };
});

// The wait in the database: it holds one of the pool's connections for the whole sleep.
app.get('/sleep/postgres/', { schema: seconds }, async (request) => {
  const { seconds: s } = request.query as { seconds: number };
  await pool.query({ text: 'SELECT pg_sleep($1)', values: [s], signal: request.gone });
  return { slept: s, in: 'postgres' };
});

app.get('/todos/', async (request) => {
  const { rows } = await pool.query({
    text: 'SELECT id, title, done FROM todo ORDER BY id LIMIT 100',
    signal: request.gone,
  });
  return rows;
});

app.post(
  '/todos/',
  {
    schema: {
      body: {
        type: 'object',
        required: ['title'],
        properties: { title: { type: 'string', minLength: 1, maxLength: 200 } },
        additionalProperties: false,
      },
    },
  },
  async (request, reply) => {
    const { title } = request.body as { title: string };
    const { rows } = await pool.query({
      text: 'INSERT INTO todo (title) VALUES ($1) RETURNING id, title, done',
      values: [title],
      signal: request.gone,
    });
    return reply.code(201).send(rows[0]);
  }
);

// Alive: the process answers. Ready: it can reach PostgreSQL within a second, and is not draining.
app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/readyz', async (request, reply) => {
  try {
    await pool.query({ text: 'SELECT 1', signal: AbortSignal.timeout(1000) });
    return { status: 'ready', pool: pool.stats() };
  } catch (err) {
    return reply.code(503).send({ status: 'not ready', error: (err as PoolError).code ?? 'DATABASE' });
  }
});

// Shutdown that drains: stop taking connections (Fastify answers 503 to new requests meanwhile),
// let the running requests finish, then close the pool. A second signal, or 10 s, ends it at once.
closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'stopping after an error');
  else app.log.info({ signal }, 'stopping: draining the running requests');
  await app.close();
  await pool.end();
});

await pool
  .query(
    `CREATE TABLE IF NOT EXISTS todo (
  id serial PRIMARY KEY,
  title text NOT NULL,
  done boolean NOT NULL DEFAULT false
)`
  )
  .catch((err: Error) => refuse(`cannot prepare the database: ${err.message}`, 1));
// The kept connections open now, so the first requests pay no connect.
await pool.warm();
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: setting('PORT', 3000) });
