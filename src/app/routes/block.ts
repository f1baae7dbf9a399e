// What blocks in Node.js: the work services really do on the event loop (/block/...), each
// beside its twin that does the same work without holding the loop (/offload/...). Five
// concurrent requests to a /block/ route come back one after another; to its /offload/ twin,
// together. The block detector (BLOCK_DETECTOR) names the function that held the loop.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '../../vendor/typebox.ts';
import { KINDS, type Kind } from '../../loop/catalog.ts';
import { Offload } from '../../loop/offload.ts';
import { spinInSlices } from '../../loop/partition.ts';
import { sampleText, SAMPLE_FILE_BYTES } from '../../loop/inputs.ts';
import { answer, errors } from '../http-schemas.ts';

const Result = Type.Object(
  {
    work: Type.String({ description: 'the kind of work' }),
    onLoop: Type.Boolean({
      description:
        "true: it ran on the event loop and held it; false: it ran elsewhere (a worker thread, libuv's pool) or " +
        'never needed the time',
    }),
    ms: Type.Number({ description: 'how long the work took, in milliseconds' }),
    result: Type.Union([Type.Number(), Type.Boolean()], {
      description:
        'what the work produced (bytes, turns, characters, or whether the expression matched), so that it cannot be ' +
        'skipped',
    }),
  },
  { title: 'WorkDone' }
);

const Sliced = Type.Object(
  {
    work: Type.Literal('cpu'),
    onLoop: Type.Literal(true, { description: 'it ran on the event loop, a slice at a time' }),
    ms: Type.Number({ description: 'how long the work took from start to end, gaps included, in milliseconds' }),
    result: Type.Number({ description: 'the turns the loop made' }),
    slices: Type.Integer({ description: 'how many slices it was cut into' }),
  },
  { title: 'WorkSliced' }
);

const blockRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // The fs routes read one 1 MiB file, written when the service starts and removed when it stops.
  const dir = await mkdtemp(join(tmpdir(), 'async-node-postgres-'));
  const file = join(dir, 'sample.txt');
  await writeFile(file, sampleText(SAMPLE_FILE_BYTES));
  const threads = new Offload();
  fastify.addHook('onClose', async () => {
    await threads.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const [name, kind] of Object.entries(KINDS) as [string, Kind][]) {
    const bounded = Type.Integer({
      minimum: kind.min,
      maximum: kind.max,
      description: `${kind.unit} (${kind.min} to ${kind.max}, default ${kind.fallback})`,
    });
    const querystring = Type.Object({ [kind.param]: Type.Optional(bounded) });
    const response = {
      200: answer(Result, 'The work done, how long it took, and whether it held the event loop'),
      ...errors(400),
    };
    const tags = ['what blocks'];
    const read = (query: unknown) => (query as Record<string, number | undefined>)[kind.param] ?? kind.fallback;

    fastify.get(
      `/block/${name}/`,
      {
        schema: {
          operationId: `block${name[0]!.toUpperCase()}${name.slice(1)}`,
          summary: `Stall the event loop with ${kind.what}`,
          description:
            `${kind.blocking} (${kind.fn}), ?${kind.param}= (default ${kind.fallback}). Nothing else this ` +
            'process serves moves meanwhile: concurrent requests come back one after another. Its twin is ' +
            `/offload/${name}/.`,
          tags,
          querystring,
          response,
        },
      },
      async (req) => {
        const start = performance.now();
        const result = kind.block(read(req.query), { file, threads, signal: req.dbContext.signal });
        return { work: name, onLoop: true, ms: performance.now() - start, result };
      }
    );

    fastify.get(
      `/offload/${name}/`,
      {
        schema: {
          operationId: `offload${name[0]!.toUpperCase()}${name.slice(1)}`,
          summary: `The same ${kind.what}, without holding the event loop`,
          description:
            `${kind.twin}, ?${kind.param}= (default ${kind.fallback}): the same work as /block/${name}/, ` +
            'while the event loop goes on serving.',
          tags,
          querystring,
          response,
        },
      },
      async (req) => {
        const start = performance.now();
        const result = await kind.offload(read(req.query), { file, threads, signal: req.dbContext.signal });
        return { work: name, onLoop: false, ms: performance.now() - start, result };
      }
    );
  }

  const cpu = KINDS.cpu;
  fastify.get(
    '/partition/cpu/',
    {
      schema: {
        operationId: 'partitionCpu',
        summary: 'The same CPU loop, in slices that give the event loop back between them',
        description:
          `The work of /block/cpu/ (?ms=, default ${cpu.fallback}) on the event loop, cut into slices of ?slice= ms ` +
          '(default 5) with a turn of the loop (scheduler.yield, or setImmediate) between them: other requests are ' +
          'served in the gaps, no thread is used, and the work itself ends later than in one piece.',
        tags: ['what blocks'],
        querystring: Type.Object({
          ms: Type.Optional(
            Type.Integer({
              minimum: cpu.min,
              maximum: cpu.max,
              description: `${cpu.unit} (${cpu.min} to ${cpu.max}, default ${cpu.fallback})`,
            })
          ),
          slice: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 100, description: 'milliseconds a slice (1 to 100, default 5)' })
          ),
        }),
        response: {
          200: answer(Sliced, 'The work done in slices, and how long it took, gaps included'),
          ...errors(400),
        },
      },
    },
    async (req) => {
      const start = performance.now();
      const { turns, slices } = await spinInSlices(req.query.ms ?? cpu.fallback, req.query.slice ?? 5);
      return { work: 'cpu' as const, onLoop: true as const, ms: performance.now() - start, result: turns, slices };
    }
  );
};

export default blockRoutes;
