// The Todo API: list, read, create, update, delete.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorBody } from '../plugins/errors.ts';
import { errors, ListQuery, Todo, TodoCreate, TodoId, TodoList, TodoPatch } from '../schemas.ts';

const notFound = (id: number) => errorBody(404, `todo ${id} does not exist`, 'TODO_NOT_FOUND');

const todoRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store } = fastify;

  fastify.get('/todos/', { schema: { querystring: ListQuery, response: { 200: TodoList, ...errors } } }, async (req) => ({
    todos: await store.listTodos(req.query, req.db),
  }));

  fastify.get('/todos/:id', { schema: { params: TodoId, response: { 200: Todo, ...errors } } }, async (req, reply) => {
    const todo = await store.getTodo(req.params.id, req.db);
    return todo ?? reply.code(404).send(notFound(req.params.id));
  });

  fastify.post('/todos/', { schema: { body: TodoCreate, response: { 201: Todo, ...errors } } }, async (req, reply) => {
    const todo = await store.createTodo(req.body, req.db); // defaults filled in by the schema
    return reply.code(201).header('Location', `/todos/${todo.id}`).send(todo);
  });

  fastify.patch('/todos/:id', { schema: { params: TodoId, body: TodoPatch, response: { 200: Todo, ...errors } } }, async (req, reply) => {
    const todo = await store.updateTodo(req.params.id, req.body, req.db);
    return todo ?? reply.code(404).send(notFound(req.params.id));
  });

  fastify.delete('/todos/:id', { schema: { params: TodoId, response: { 204: Type.Null(), ...errors } } }, async (req, reply) => {
    const deleted = await store.deleteTodo(req.params.id, req.db);
    return deleted ? reply.code(204).send(null) : reply.code(404).send(notFound(req.params.id));
  });
};

export default todoRoutes;
