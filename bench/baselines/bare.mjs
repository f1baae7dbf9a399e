// Baseline (a): the least a Node.js server can do for the same routes, with node:http and
// pg and nothing else: the floor of framework overhead in the benchmarks. Plain JavaScript,
// run by node as it is, as our service runs its build.
// BARE_BODY=json_agg: PostgreSQL builds the body (json_agg) and it is passed through, the same
// technique as our service's. The pool and the queries: db.mjs.
import http from 'node:http';
import { AGG, pool, SELECT } from './db.mjs';

const todos = process.env.BARE_BODY === 'json_agg'
  ? async () => (await pool.query(AGG)).rows[0].body
  : async () => JSON.stringify({ todos: (await pool.query(SELECT)).rows });

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/sleep/node/') {
      await new Promise((resolve) => setTimeout(resolve, Number(url.searchParams.get('seconds') ?? 0) * 1000));
    } else if (url.pathname !== '/todos/') {
      res.writeHead(404).end();
      return;
    }
    const body = await todos();
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  } catch {
    res.writeHead(503).end();
  }
});

server.listen({ port: Number(process.env.PORT), host: '127.0.0.1', backlog: 2048 }, () => {
  console.log(`Listening on http://127.0.0.1:${process.env.PORT}`);
});
process.on('SIGTERM', () => server.close(() => pool.end().then(() => process.exit(0))));
