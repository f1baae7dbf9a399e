// The OpenAPI document, generated from the route schemas, and the docs UI, served locally.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { shareSchemas } from '../openapi.ts';

export default fp(
  async (fastify: FastifyInstance) => {
    // Registered before the routes: @fastify/swagger collects them as they are added.
    await fastify.register(swagger, {
      openapi: {
        info: {
          title: 'async-node-postgres',
          version: '0.2.0',
          description:
            'The Todo API and the sleep routes of the non-blocking Node.js + PostgreSQL example. ' +
            'Every error answer has the Error schema, with a code of one family (its enum). ' +
            'Any path asked with a method it does not take answers 405 with Allow ' +
            '(components/responses/MethodNotAllowed).',
        },
      },
      transformObject: (document) =>
        shareSchemas('openapiObject' in document ? document.openapiObject : document.swaggerObject),
    });
    await fastify.register(swaggerUi, { routePrefix: '/docs' });
    fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger());
  },
  { name: 'docs' }
);
