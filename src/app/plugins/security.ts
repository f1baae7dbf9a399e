// Security headers (helmet's defaults). CORS stays off: the API is not for other sites' pages.
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export default fp(async (fastify: FastifyInstance) => {
  await fastify.register(helmet, { global: true });
}, { name: 'security' });
