// JSON schemas: they validate input and serialize output (fast-json-stringify).
export const todo = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    title: { type: 'string' },
    done: { type: 'boolean' },
    priority: { type: 'integer' },
  },
  required: ['id', 'title', 'done', 'priority'],
} as const;

export const todoList = {
  type: 'object',
  properties: { todos: { type: 'array', items: todo } },
  required: ['todos'],
} as const;

export const MAX_SLEEP_SECONDS = 60;

export const sleepQuery = {
  type: 'object',
  properties: { seconds: { type: 'number', minimum: 0, maximum: MAX_SLEEP_SECONDS } },
} as const;

export const error = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    code: { type: 'string' },
    message: { type: 'string' },
  },
  required: ['statusCode', 'error', 'message'],
} as const;
