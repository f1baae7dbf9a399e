// The Todo API: list, read, create, update, delete.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '../../vendor/typebox.ts';
import { sendPage } from '../paging.ts';
import { errorBody } from '../plugins/errors.ts';
import {
  DB_ERRORS,
  errors,
  HEADERS,
  ListQuery,
  PAGE_MAX,
  PAGE_SIZE,
  Todo,
  TodoCreate,
  TodoId,
  TodoListJson,
  TodoPatch,
  answer,
} from '../http-schemas.ts';

const tags = ['todos'];

const notFound = (id: number) => errorBody(404, `todo ${id} does not exist`, 'TODO_NOT_FOUND');

const todoRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store } = fastify;

  // The hot path: PostgreSQL writes the response body, Node passes it through. The other routes keep
  // the typed path. A page is bounded: no answer grows with the table.
  fastify.get(
    '/todos/',
    {
      schema: {
        operationId: 'listTodos',
        summary: 'List todos, ordered by id, a page at a time',
        description:
          `A page of \`limit\` todos (${PAGE_SIZE} unless asked, ${PAGE_MAX} at most) in id order. When more ` +
          'pass the filter, the Link header names the next page: `?after=` the last id of this one (keyset ' +
          'paging: stable while todos are added and deleted, and as fast on the last page as on the first).',
        tags,
        querystring: ListQuery,
        response: {
          200: answer(TodoListJson, 'A page of todos, ordered by id', { Link: HEADERS.Link }),
          ...errors(...DB_ERRORS),
        },
      },
    },
    async (req, reply) => sendPage(reply, req.query, await store.listTodosJson(req.query, req.dbContext))
  );

  fastify.get(
    '/todos/:id',
    {
      schema: {
        operationId: 'getTodo',
        summary: 'Read one todo',
        tags,
        params: TodoId,
        response: { 200: answer(Todo, 'The todo'), ...errors(...DB_ERRORS, 404) },
      },
    },
    async (req, reply) => {
      const todo = await store.getTodo(req.params.id, req.dbContext);
      return todo ?? reply.code(404).send(notFound(req.params.id));
    }
  );

  fastify.post(
    '/todos/',
    {
      schema: {
        operationId: 'createTodo',
        summary: 'Create a todo (201, with Location)',
        tags,
        body: TodoCreate,
        response: {
          201: answer(Todo, 'Created: the todo, at Location', {
            Location: HEADERS.Location,
            'X-Read-After': HEADERS['X-Read-After'],
          }),
          ...errors(...DB_ERRORS, 413, 415),
        },
      },
    },
    async (req, reply) => {
      // The schema fills in the defaults; the fallbacks only tell the type checker so.
      const { title, done = false, priority = 0 } = req.body;
      const todo = await store.createTodo({ title, done, priority }, req.dbContext);
      return reply.code(201).header('Location', `/todos/${todo.id}`).send(todo);
    }
  );

  fastify.patch(
    '/todos/:id',
    {
      schema: {
        operationId: 'updateTodo',
        summary: "Change any of a todo's fields",
        tags,
        params: TodoId,
        body: TodoPatch,
        response: {
          200: answer(Todo, 'The todo, changed', { 'X-Read-After': HEADERS['X-Read-After'] }),
          ...errors(...DB_ERRORS, 404, 413, 415),
        },
      },
    },
    async (req, reply) => {
      const todo = await store.updateTodo(req.params.id, req.body, req.dbContext);
      return todo ?? reply.code(404).send(notFound(req.params.id));
    }
  );

  fastify.delete(
    '/todos/:id',
    {
      schema: {
        operationId: 'deleteTodo',
        summary: 'Delete a todo',
        tags,
        params: TodoId,
        response: { 204: Type.Null({ description: 'Deleted' }), ...errors(...DB_ERRORS, 404) },
      },
    },
    async (req, reply) => {
      const deleted = await store.deleteTodo(req.params.id, req.dbContext);
      return deleted ? reply.code(204).send(null) : reply.code(404).send(notFound(req.params.id));
    }
  );
};

export default todoRoutes;
