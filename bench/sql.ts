// Suite 10: the cheapest SQL for GET /todos/'s body, in PostgreSQL's own CPU per query.
// Each candidate builds the same document, {"todos":[...]} of the rows in id order; the suite
// checks that it parses to the same value as the service's query, and reads the CPU of the
// backends that ran it (their /proc/PID/schedstat: no other process's work is in the figure,
// the client's included).
import { deepStrictEqual } from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { listTodosJson } from '../src/db/queries.ts';
import { median, spreadOf as spread, table, us, whole } from './lib.ts';

const ROWS = '(SELECT id, title, done, priority FROM todo ORDER BY id) t';

/** [name, SQL that returns one row with a text column `body`]; the first is the service's own. */
export const CANDIDATES: [string, string][] = [
  ['the service: row_to_json per row, string_agg (rows sorted by the subquery)', listTodosJson().sql],
  [
    "json_agg, ORDER BY inside the aggregate (the bare server's)",
    "SELECT json_build_object('todos', coalesce(json_agg(t ORDER BY t.id), '[]'::json))::text AS body FROM (SELECT " +
      'id, title, done, priority FROM todo) t',
  ],
  [
    'json_agg (rows sorted by the subquery)',
    `SELECT json_build_object('todos', coalesce(json_agg(t), '[]'::json))::text AS body FROM ${ROWS}`,
  ],
  [
    'json_build_object per row, string_agg',
    "SELECT '{\"todos\":[' || coalesce(string_agg(json_build_object('id', id, 'title', title, 'done', done, " +
      `'priority', priority)::text, ','), '') || ']}' AS body FROM ${ROWS}`,
  ],
  [
    'text concatenation per row (to_json for the title), string_agg',
    'SELECT \'{"todos":[\' || coalesce(string_agg(\'{"id":\' || id || \',"title":\' || to_json(title)::text || ' +
      '\',"done":\' ' +
      `|| done || ',"priority":' || priority || '}', ','), '') || ']}' AS body FROM ${ROWS}`,
  ],
  [
    'jsonb_agg (rows sorted by the subquery)',
    `SELECT jsonb_build_object('todos', coalesce(jsonb_agg(t), '[]'::jsonb))::text AS body FROM ${ROWS}`,
  ],
];

/** A backend's CPU so far, ms (schedstat: nanoseconds, where stat counts 10 ms ticks). */
const backendCpuMs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;

interface Round {
  queries: number;
  pgUsPerQuery: number;
  qps: number;
}

/** `clients` connections run `sql` back to back for `seconds`; the backends' CPU over the window. */
async function run (
  clients: { client: pg.Client; pid: number }[],
  name: string,
  sql: string,
  seconds: number
): Promise<Round> {
  const cpu0 = clients.reduce((a, c) => a + backendCpuMs(c.pid), 0);
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  const counts = await Promise.all(
    clients.map(async ({ client }) => {
      let n = 0;
      while (performance.now() < until) {
        await client.query({ name, text: sql });
        n++;
      }
      return n;
    })
  );
  const elapsed = (performance.now() - t0) / 1000;
  const queries = counts.reduce((a, b) => a + b, 0);
  const used = clients.reduce((a, c) => a + backendCpuMs(c.pid), 0) - cpu0;
  return { queries, pgUsPerQuery: (used * 1000) / Math.max(1, queries), qps: queries / elapsed };
}

export async function sqlSuite (ctx: {
  url: string;
  quick: boolean;
  smoke: boolean;
  print(text: string): void;
}): Promise<unknown> {
  const seconds = ctx.smoke ? 0.5 : ctx.quick ? 2 : 5;
  const rounds = ctx.smoke ? 1 : ctx.quick ? 3 : 7;
  const clients = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const client = new pg.Client({ connectionString: ctx.url });
      await client.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      return { client, pid: rows[0]!.pid };
    })
  );
  try {
    // Same document from every candidate, or its figures mean nothing.
    const bodies: string[] = [];
    for (const [, sql] of CANDIDATES) {
      bodies.push((await clients[0]!.client.query<{ body: string }>(sql)).rows[0]!.body);
    }
    const expected = JSON.parse(bodies[0]!) as unknown;
    bodies.forEach((body, i) =>
      deepStrictEqual(JSON.parse(body), expected, `candidate ${i + 1} builds another document`)
    );
    const rows = (expected as { todos: unknown[] }).todos.length;
    const names = CANDIDATES.map((_, i) => `q${i + 1}`);
    // prepared, cached, warm
    for (const [i, [, sql]] of CANDIDATES.entries()) await run(clients, names[i]!, sql, Math.min(1, seconds));
    const results: Round[][] = CANDIDATES.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < CANDIDATES.length; k++) {
        const i = (round + k) % CANDIDATES.length;
        results[i]!.push(await run(clients, names[i]!, CANDIDATES[i]![1], seconds));
      }
    }
    const ours = median(results[0]!.map((r) => r.pgUsPerQuery));
    ctx.print(
      table(
        `Suite 10: GET /todos/'s body (${rows} rows) built by PostgreSQL, each candidate run back to back on 4 ` +
          `prepared connections, ${rounds} round(s) of ${seconds} s in a rotated order; PostgreSQL's CPU per query ` +
          "(the backends' schedstat), median (min-max)",
        ['SQL', 'PostgreSQL CPU / query', "against the service's", 'queries/s', 'body bytes'],
        CANDIDATES.map(([name], i) => {
          const per = results[i]!.map((r) => r.pgUsPerQuery);
          return [
            name,
            spread(per, us),
            (median(per) / ours).toFixed(3),
            spread(
              results[i]!.map((r) => r.qps),
              whole
            ),
            Buffer.byteLength(bodies[i]!),
          ];
        })
      )
    );
    return {
      seconds,
      rounds,
      rows,
      candidates: CANDIDATES.map(([name, sql], i) => ({
        name,
        sql,
        bodyBytes: Buffer.byteLength(bodies[i]!),
        rounds: results[i],
      })),
    };
  } finally {
    await Promise.all(clients.map(({ client }) => client.end()));
  }
}
