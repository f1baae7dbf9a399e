// A page of todos on the wire: PostgreSQL's body as it is, and a Link header to the next page (RFC 8288,
// as GitHub's API pages), relative to this host so that it holds behind any proxy.
import type { FastifyReply } from 'fastify';
import type { ListFilter, TodoPage } from '../db/todos.ts';

/** The next page of GET /todos/ under the same filter and size; `offset` is not carried, the cursor replaces it. */
export function nextLink (filter: ListFilter, after: number): string {
  const query = new URLSearchParams();
  if (filter.done !== undefined) query.set('done', String(filter.done));
  query.set('after', String(after));
  if (filter.limit !== undefined) query.set('limit', String(filter.limit));
  return `</todos/?${query.toString()}>; rel="next"`;
}

export function sendPage (reply: FastifyReply, filter: ListFilter, page: TodoPage): FastifyReply {
  if (page.next !== undefined) reply.header('Link', nextLink(filter, page.next));
  // A string is sent as it is: the response schema documents it, nothing serializes it again.
  return reply.type('application/json; charset=utf-8').send(page.body);
}
