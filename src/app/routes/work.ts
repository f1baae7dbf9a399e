// A route whose database time is CPU, not waiting: the other half of "how big should the pool
// be?" (npm run sizing). A pool wider than PostgreSQL's cores adds no throughput here; it only
// moves the queue from the pool (visible, bounded) into PostgreSQL (contending for its CPUs).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { answer, DB_ERRORS, errors, WORK_DEFAULT_UNITS, WorkQuery, WorkResult } from '../http-schemas.ts';

const workRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store } = fastify;
  const schema = {
    operationId: 'workPostgres',
    summary: 'Run a fixed amount of CPU work in PostgreSQL',
    description:
      `Counts ?units= values (default ${WORK_DEFAULT_UNITS.toLocaleString('en')}) in one query on one pooled ` +
      'connection: about 20 ms of one core per million. ' +
      'The connection is held for the time PostgreSQL computes, so throughput stops growing with the pool at about ' +
      "PostgreSQL's number of cores.",
    tags: ['sizing'],
    querystring: WorkQuery,
    response: {
      200: answer(WorkResult, 'The units asked for, and how many PostgreSQL counted'),
      ...errors(...DB_ERRORS),
    },
  };
  fastify.get('/work/postgres/', { schema }, async (req) => {
    const units = req.query.units ?? WORK_DEFAULT_UNITS;
    return { units, counted: await store.work(units, req.dbContext) };
  });
};

export default workRoutes;
