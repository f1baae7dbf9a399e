// JSON schemas (TypeBox): they validate input, type the handlers and serialize output.
import { MAX_SLEEP_SECONDS } from '../config.ts';
import { Type } from '../vendor/typebox.ts';

export { MAX_SLEEP_SECONDS };
const MAX_INT = 2_147_483_647;

// A schema with a `title` is shared: the OpenAPI document names it once, under
// components/schemas, and refers to it from every route (src/app/openapi.ts).

export const Todo = Type.Object(
  {
    id: Type.Integer(),
    title: Type.String(),
    done: Type.Boolean(),
    priority: Type.Integer(),
  },
  { title: 'Todo' }
);

export const TodoList = Type.Object({ todos: Type.Array(Todo) }, { title: 'TodoList' });

/** TodoList, already serialized (by PostgreSQL): documented as TodoList, sent as the string it is. */
export const TodoListJson = Type.Unsafe<string>(TodoList);

const title = Type.String({ minLength: 1, maxLength: 60 });
const priority = Type.Integer({ minimum: 0, maximum: 4 });

export const TodoCreate = Type.Object(
  {
    title,
    // Optional, as the server enforces them: absent, the default is filled in.
    done: Type.Optional(Type.Boolean({ default: false })),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 4, default: 0 })),
  },
  { additionalProperties: false, title: 'TodoCreate' }
);

export const TodoPatch = Type.Object(
  { title: Type.Optional(title), done: Type.Optional(Type.Boolean()), priority: Type.Optional(priority) },
  { additionalProperties: false, title: 'TodoPatch' }
);

export const TodoId = Type.Object({ id: Type.Integer({ minimum: 1, maximum: MAX_INT }) });

/** A page of todos when the request names no `limit`: the original's routes answer this first page. */
export const PAGE_SIZE = 100;
export const PAGE_MAX = 500;

export const ListQuery = Type.Object({
  done: Type.Optional(Type.Boolean()),
  after: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: MAX_INT,
      description: "Only todos with a larger id: the next page starts after this one's last id (the Link header's)",
    })
  ),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: PAGE_MAX, default: PAGE_SIZE, description: 'Page size' })),
  offset: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: MAX_INT,
      description: 'Todos skipped (after `after`): the slow way, PostgreSQL reads each one it skips; use `after`',
    })
  ),
});

export const SleepQuery = Type.Object({
  seconds: Type.Optional(Type.Number({ minimum: 0, maximum: MAX_SLEEP_SECONDS })),
});

/** /leak/: how long the lab's leaked connection is kept before it is given back. */
export const LEAK_DEFAULT_SECONDS = 3;
export const LEAK_MAX_SECONDS = 60;

export const LeakQuery = Type.Object({
  seconds: Type.Optional(Type.Number({ minimum: 0, maximum: LEAK_MAX_SECONDS })),
});

export const LeakResult = Type.Object(
  {
    heldSeconds: Type.Number({ description: 'how long the connection is kept, from now' }),
    waitMs: Type.Number({ description: 'how long the checkout waited for the connection, in milliseconds' }),
    leakDetectionSeconds: Type.Number({
      description: 'LEAK_DETECTION: held longer, the connection is reported (0: off)',
    }),
  },
  { title: 'LeakResult' }
);

/** /work/postgres/: a million units take about 20 ms of one core; 100 million, about 2 s. */
export const WORK_DEFAULT_UNITS = 1_000_000;
export const WORK_MAX_UNITS = 100_000_000;

export const WorkQuery = Type.Object({
  units: Type.Optional(Type.Integer({ minimum: 1, maximum: WORK_MAX_UNITS })),
});

export const WorkResult = Type.Object({ units: Type.Integer(), counted: Type.Integer() }, { title: 'WorkResult' });

/** Every code an error answer carries, and what it means: one family, the service's own. */
export const ERROR_CODES = {
  BAD_INPUT:
    'The input is not what the route takes (its schema, JSON syntax, text that is not valid UTF-8): the message says ' +
    'why, `field` names it',
  NOT_FOUND: 'No route has this path',
  TODO_NOT_FOUND: 'No todo has this id',
  METHOD_NOT_ALLOWED: 'The path takes other methods, which `Allow` lists',
  BODY_TOO_LARGE: 'The body is larger than 16 KiB',
  UNSUPPORTED_MEDIA_TYPE: 'The body is not sent as JSON (Content-Type: application/json)',
  HOST_NOT_ALLOWED: 'The Host header names a host this service does not answer to (ALLOWED_HOSTS)',
  POOL_TIMEOUT: 'No database connection came within POOL_TIMEOUT (in the pool, or in PgBouncer)',
  POOL_QUEUE_FULL: 'POOL_QUEUE_MAX requests were waiting for a connection already',
  DB_UNAVAILABLE: 'The database could not be reached, or went away',
  DB_READ_ONLY: 'The server a write reached takes no writes now (a standby, or a failover in progress)',
  STATEMENT_TIMEOUT: 'The query ran longer than STATEMENT_TIMEOUT and was cancelled',
  QUERY_TIMEOUT:
    'The database did not answer within QUERY_TIMEOUT (the network, or a server that cannot be reached): the query ' +
    'was cancelled and its connection closed',
  INTERNAL_ERROR: 'A failure the service did not expect; the log has the detail',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error schema: every error answer of the service has this body. */
export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
    error: Type.String({ description: "the status's reason phrase" }),
    code: Type.Unsafe<ErrorCode>({
      type: 'string',
      enum: Object.keys(ERROR_CODES),
      description: Object.entries(ERROR_CODES)
        .map(([code, meaning]) => `${code}: ${meaning}.`)
        .join(' '),
    }),
    message: Type.String({ description: 'what went wrong, for a person' }),
    field: Type.Optional(Type.String({ description: 'the input field at fault (BAD_INPUT)' })),
  },
  { title: 'Error' }
);

/** Response headers, as the OpenAPI document describes them. */
export const HEADERS = {
  'Retry-After': { type: 'integer', description: 'Seconds to wait before trying again' },
  Location: { type: 'string', description: 'The path of the todo just created: /todos/{id}' },
  Allow: { type: 'string', description: 'The methods the path takes, comma-separated' },
  Link: {
    type: 'string',
    description:
      'When more todos pass the filter: `</todos/?after={last id}&limit={limit}>; rel="next"` (RFC 8288), the ' +
      'next page; absent on the last page',
  },
  'X-Read-After': {
    type: 'string',
    description:
      "With replicas: the WAL position of this write's commit (also set as the read_after cookie). A read that sends " +
      'it back (header or cookie) sees this write',
  },
} as const;

/** What each error status means, as the OpenAPI document tells it. */
const MEANING: Record<number, string> = {
  400: 'Bad input (BAD_INPUT): the message says what, `field` names it',
  404: 'No todo with this id (TODO_NOT_FOUND)',
  413: 'The body is larger than 16 KiB (BODY_TOO_LARGE)',
  415: 'The body is not JSON (UNSUPPORTED_MEDIA_TYPE)',
  421: 'The Host header names a host this service does not answer to (HOST_NOT_ALLOWED)',
  503:
    'No database connection in time (POOL_TIMEOUT), too many waiting (POOL_QUEUE_FULL), the database is ' +
    'unavailable (DB_UNAVAILABLE), or read-only for now, during a failover (DB_READ_ONLY)',
  504:
    'The query ran longer than STATEMENT_TIMEOUT (STATEMENT_TIMEOUT), or the database did not answer within ' +
    'QUERY_TIMEOUT (QUERY_TIMEOUT); either way it was cancelled',
};

/** The error answers a route may give, each with the error schema, what it means, and its headers. */
export function errors<S extends number> (...statuses: S[]): Record<S | 421, typeof ErrorBody> {
  const answers = {} as Record<S | 421, typeof ErrorBody>;
  for (const status of [...statuses, 421 as const]) {
    answers[status] = answer(
      ErrorBody,
      MEANING[status]!,
      status === 503 ? { 'Retry-After': HEADERS['Retry-After'] } : {}
    );
  }
  return answers;
}

/** An answer's schema with what it means and the headers it carries (201's Location, 503's Retry-After). */
export function answer<T extends object> (schema: T, description: string, headers: Partial<typeof HEADERS> = {}): T {
  return { ...schema, description, ...(Object.keys(headers).length ? { headers } : {}) };
}

/** The answers of a route that reads or writes the database. */
export const DB_ERRORS = [400, 503, 504] as const;

export const PoolStatsBody = Type.Object(
  {
    kind: Type.Union([Type.Literal('queue'), Type.Literal('null')], {
      description: 'queue: QueuePool; null: NullPool (POOL=null)',
    }),
    size: Type.Integer(),
    maxOverflow: Type.Integer(),
    total: Type.Integer({ description: 'connections open' }),
    idle: Type.Integer(),
    inUse: Type.Integer({ description: 'checked out, or being opened for a request' }),
    overflowInUse: Type.Integer(),
    waiting: Type.Integer({ description: 'requests waiting for a connection' }),
    expired: Type.Integer({ description: 'checked-out connections past their lifetime' }),
    acquired: Type.Integer({ description: 'connections handed out since start' }),
    queued: Type.Integer({ description: 'checkouts that waited for a place' }),
    timeouts: Type.Integer(),
    rejected: Type.Integer({ description: 'refused at once: POOL_QUEUE_MAX were waiting' }),
    aborted: Type.Integer({ description: 'requests whose client went away while they waited' }),
    connectErrors: Type.Integer(),
    cancels: Type.Integer({ description: 'CancelRequests sent for queries whose client went away' }),
    recycled: Type.Integer({ description: 'connections closed after their lifetime or their number of uses' }),
    resets: Type.Integer({
      description: 'connections given back inside a transaction and rolled back before reuse',
    }),
    queryTimeouts: Type.Integer({ description: 'queries with no answer within QUERY_TIMEOUT' }),
    healthChecks: Type.Integer({
      description: 'idle connections checked in the background (POOL_HEALTH_CHECK, and suspects after one broke)',
    }),
    closed: Type.Object(
      {
        broken: Type.Integer({ description: 'the connection errored, or came back with a connection error' }),
        reset: Type.Integer({ description: 'given back in a transaction; the rollback failed or took over 2 s' }),
        busy: Type.Integer({ description: 'given back with a query still running' }),
        deadline: Type.Integer({ description: 'its query had no answer within QUERY_TIMEOUT' }),
        cancel: Type.Integer({
          description: 'the query of a request whose client went away did not end within 2 s of its cancel',
        }),
        healthCheck: Type.Integer({ description: 'idle, it failed its background check' }),
        invalidated: Type.Integer({ description: 'after another connection broke, it failed its check' }),
        prePing: Type.Integer({ description: 'it failed its pre-ping' }),
      },
      { description: 'connections the pool closed because it could not trust them, by cause' }
    ),
    refillBackoffMs: Type.Number({
      description:
        'after failed connects: the pause before the pool tries to reopen its POOL_SIZE connections (0: not backing ' +
        'off)',
    }),
    waitMsTotal: Type.Number({
      description:
        'time requests waited for their connections, in all, in ms: with acquired, the mean wait over any window',
    }),
    useMsTotal: Type.Number({ description: 'time requests held their connections, in all, in ms' }),
  },
  { title: 'PoolStats' }
);

export const Servers = Type.Object(
  {
    servers: Type.Array(
      Type.Object({
        name: Type.String({ description: 'primary, or replica-1 ...' }),
        role: Type.Union([Type.Literal('primary'), Type.Literal('replica')]),
        at: Type.Optional(
          Type.String({
            description:
              'the server that answered the last check, by the address PostgreSQL reports (host:port): behind a ' +
              'proxy that routes by role, such as HAProxy in front of Patroni, the member it reached; absent when ' +
              'it did not answer (with replicas only)',
          })
        ),
        pool: PoolStatsBody,
        replica: Type.Optional(
          Type.Object({
            up: Type.Boolean({ description: 'answered the last check (a few times a second)' }),
            inRotation: Type.Boolean({ description: 'serves reads: up, a standby, within REPLICA_MAX_LAG' }),
            reason: Type.Optional(Type.String({ description: 'why not in rotation' })),
            lagBytes: Type.Number({ description: 'WAL not yet replayed, in bytes' }),
            lagSeconds: Type.Number({
              description:
                'seconds since the primary was first seen with WAL this replica has not replayed (0 when caught up)',
            }),
          })
        ),
      })
    ),
    reads: Type.Optional(
      Type.Object({
        served: Type.Record(Type.String(), Type.Integer(), { description: 'reads served, by server' }),
        fallbacks: Type.Object({
          noReplica: Type.Integer({ description: 'to the primary: no replica in rotation' }),
          broken: Type.Integer({ description: 'to the primary: the replica failed under the read' }),
          behind: Type.Integer({
            description: 'to the primary: no replica replayed X-Read-After within READ_AFTER_TIMEOUT',
          }),
        }),
        spilled: Type.Integer({ description: "to the primary: every replica's pool was full" }),
        replayChecks: Type.Integer({
          description:
            'reads with X-Read-After: each looked on its replica connection for its position',
        }),
        replayWaits: Type.Integer({ description: 'those that found it not replayed yet, and waited' }),
        replayWaitMs: Type.Number({ description: 'the time they waited, in all' }),
        replayWaitMaxMs: Type.Number({ description: 'the longest of those waits' }),
      })
    ),
  },
  { title: 'Servers' }
);
