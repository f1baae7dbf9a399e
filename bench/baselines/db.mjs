// What the Node baselines share, so that (a), (a2), (c) and (c2) read the table the same way: a
// pg.Pool of 15 (as our pool's 5 + 10) and the two queries, rows or the JSON PostgreSQL builds.
// BASELINE_POOL=pinned: 15 connections opened at start and kept, so that no backend starts or
// ends while PostgreSQL's CPU is read.
import pg from 'pg';

const pinned = process.env.BASELINE_POOL === 'pinned';
export const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 15, min: pinned ? 15 : 5, idleTimeoutMillis: pinned ? 0 : 1000 });
pool.on('error', () => {});
if (pinned) await Promise.all(Array.from({ length: 15 }, () => pool.connect())).then((clients) => clients.forEach((c) => c.release()));

/** Named, so pg prepares each once per connection. */
export const SELECT = { name: 'all_todos', text: 'SELECT id, title, done, priority FROM todo ORDER BY id' };
export const AGG = { name: 'all_todos_agg', text: "SELECT json_build_object('todos', coalesce(json_agg(t ORDER BY t.id), '[]'::json))::text AS body FROM (SELECT id, title, done, priority FROM todo) t" };
