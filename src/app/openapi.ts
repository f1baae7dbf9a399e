// The OpenAPI document as @fastify/swagger generates it, with its shared parts named once: a
// schema with a title (src/app/http-schemas.ts) moves to components/schemas, and every route refers
// to it, so that a generated client has one Todo type and one Error type, not one per route.
import { isDeepStrictEqual } from 'node:util';
import { HEADERS } from './http-schemas.ts';

type Json = { [key: string]: unknown };

/** Every titled object schema under `paths`, moved to components/schemas and replaced by a $ref. */
export function shareSchemas<T extends object> (document: T): T {
  const doc = document as Json;
  const shared: Record<string, Json> = {};
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(visit);
    if (node === null || typeof node !== 'object') return node;
    const out: Json = {};
    for (const [key, value] of Object.entries(node)) out[key] = visit(value);
    if (typeof out.title !== 'string' || out.type !== 'object') return out;
    // What a schema means where it is used (a response's description) stays there.
    const { description: _, ...schema } = out;
    const known = shared[out.title];
    if (known && !isDeepStrictEqual(known, schema)) {
      throw new Error(`two different schemas are titled ${out.title}`);
    }
    shared[out.title] = schema;
    return { $ref: `#/components/schemas/${out.title}` };
  };
  const paths = visit(doc.paths);
  const components = (doc.components ?? {}) as Json;
  return {
    ...doc,
    paths,
    components: {
      ...components,
      schemas: { ...(components.schemas as Json | undefined), ...shared },
      headers: Object.fromEntries(
        Object.entries(HEADERS).map(([name, { description, ...schema }]) => [name, { description, schema }])
      ),
      // Not an operation's: any path asked with a method it does not take answers this.
      responses: {
        MethodNotAllowed: {
          description:
            'The path exists, but not for this method (METHOD_NOT_ALLOWED); Allow lists the methods it takes',
          headers: { Allow: { $ref: '#/components/headers/Allow' } },
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
  } as T;
}
