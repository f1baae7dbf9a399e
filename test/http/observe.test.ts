// What the labs read of PostgreSQL from outside: its own core count, where it lets us read it.
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { test } from 'node:test';
import pg from 'pg';
import { serverCores } from '../../src/postgres/observe.ts';
import { freshDatabase } from '../helper.ts';

test(
  "the server's cores from its own /proc/cpuinfo (a " + 'superuser may read it), and undefined where it may not',
  async (t) => {
    const client = new pg.Client({ connectionString: await freshDatabase() });
    await client.connect();
    // Roles belong to the whole cluster, which other test files share: a name of its own.
    const role = `plain_reader_${process.pid}`;
    t.after(async () => {
      await client.query(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
      await client.end();
    });
    // The run's PostgreSQL runs on this machine: the same processors as os.cpus() counts.
    assert.equal(await serverCores(client), cpus().length);
    await client.query(`CREATE ROLE ${role} LOGIN`);
    await client.query(`SET ROLE ${role}`);
    assert.equal(
      await serverCores(client),
      undefined,
      'a role that may not read server files gets no figure, not an error'
    );
    await client.query('RESET ROLE');
  }
);
