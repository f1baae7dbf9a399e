// JSON schemas (TypeBox): they validate input, type the handlers and serialize output.
import { Type } from 'typebox';

export const MAX_SLEEP_SECONDS = 60;
const MAX_INT = 2_147_483_647;

export const Todo = Type.Object({
  id: Type.Integer(),
  title: Type.String(),
  done: Type.Boolean(),
  priority: Type.Integer(),
});

export const TodoList = Type.Object({ todos: Type.Array(Todo) });

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
  { additionalProperties: false }
);

export const TodoPatch = Type.Object(
  { title: Type.Optional(title), done: Type.Optional(Type.Boolean()), priority: Type.Optional(priority) },
  { additionalProperties: false }
);

export const TodoId = Type.Object({ id: Type.Integer({ minimum: 1, maximum: MAX_INT }) });

export const ListQuery = Type.Object({
  done: Type.Optional(Type.Boolean()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_INT })),
});

export const SleepQuery = Type.Object({
  seconds: Type.Optional(Type.Number({ minimum: 0, maximum: MAX_SLEEP_SECONDS })),
});

/** /work/postgres/: a million units take about 20 ms of one core; 100 million, about 2 s. */
export const WORK_DEFAULT_UNITS = 1_000_000;
export const WORK_MAX_UNITS = 100_000_000;

export const WorkQuery = Type.Object({
  units: Type.Optional(Type.Integer({ minimum: 1, maximum: WORK_MAX_UNITS })),
});

export const WorkResult = Type.Object({ units: Type.Integer(), counted: Type.Integer() });

const errorBodyOf = (description?: string) => Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.Optional(Type.String()),
  message: Type.String(),
  field: Type.Optional(Type.String()),
}, { description });

export const ErrorBody = errorBodyOf();

/** What each error status means, as the OpenAPI document tells it. */
const MEANING: Record<number, string> = {
  400: 'Bad input: the message says what, `field` names it',
  404: 'No todo with this id',
  413: 'The body is larger than 16 KiB',
  415: 'The body is not JSON (Content-Type: application/json)',
  421: 'The Host header names a host this service does not answer to (ALLOWED_HOSTS)',
  503: 'No database connection in time (POOL_TIMEOUT), too many waiting (POOL_QUEUE_FULL), or the database is unavailable (DB_UNAVAILABLE); see Retry-After',
  504: 'The query ran longer than STATEMENT_TIMEOUT and was cancelled',
};

/** The error answers a route may give, each with the JSON error body and what it means. */
export function errors<S extends number> (...statuses: S[]): Record<S | 421, typeof ErrorBody> {
  const answers = {} as Record<S | 421, typeof ErrorBody>;
  for (const status of [...statuses, 421 as const]) answers[status] = errorBodyOf(MEANING[status]);
  return answers;
}

/** The answers of a route that reads or writes the database. */
export const DB_ERRORS = [400, 503, 504] as const;

export const PoolStats = Type.Object({
  kind: Type.Union([Type.Literal('queue'), Type.Literal('null')], { description: 'queue: QueuePool; null: NullPool (POOL=none)' }),
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
  recycled: Type.Integer(),
});
