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

const title = Type.String({ minLength: 1, maxLength: 60 });
const priority = Type.Integer({ minimum: 0, maximum: 4 });

export const TodoCreate = Type.Object(
  {
    title,
    done: Type.Boolean({ default: false }),
    priority: Type.Integer({ minimum: 0, maximum: 4, default: 0 }),
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

export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.Optional(Type.String()),
  message: Type.String(),
  field: Type.Optional(Type.String()),
});

/** The error statuses every route may answer, serialized with the same schema. */
export const errors = { '4xx': ErrorBody, '5xx': ErrorBody };
