// The max_connections budget: the arithmetic and the refusals, without a database.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { BudgetError, budgetFor, checkBudget } from '../../src/db/budget.ts';

const limits = { maxConnections: 100, superuserReserved: 3, reserved: 0, versionNum: 170010 };
const config = (env: Record<string, string>) => loadConfig({}, { DATABASE_URL: 'postgresql://x@h/db', ...env });

describe('the max_connections budget', () => {
  test('WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) against max_connections - reserved', () => {
    const b = budgetFor(limits, config({ WORKERS: '4', POOL_SIZE: '5', POOL_MAX_OVERFLOW: '10' }));
    assert.equal(b.needed, 60);
    assert.equal(b.available, 97);
    assert.equal(
      b.summary,
      'WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) = 4 x (5 + 10) = 60 connections; PostgreSQL allows max_connections ' +
        '100 - superuser_reserved_connections 3 = 97'
    );
    assert.equal(budgetFor({ ...limits, reserved: 7 }, config({})).available, 90);
    assert.match(budgetFor({ ...limits, reserved: 7 }, config({})).summary, / - reserved_connections 7 = 90$/);
  });

  test('with replicas, each process also counts one connection per server for the lag checks', () => {
    const withReplicas = config({ WORKERS: '2', DATABASE_REPLICA_URLS: 'postgresql://x@r1/db' });
    const b = budgetFor(limits, withReplicas);
    assert.equal(b.needed, 32);
    assert.match(
      b.summary,
      /^WORKERS x \(POOL_SIZE \+ POOL_MAX_OVERFLOW \+ 1 lag check\) = 2 x \(5 \+ 10 \+ 1\) = 32 connections; /
    );
    const over = config({
      WORKERS: '1',
      POOL_SIZE: '90',
      POOL_MAX_OVERFLOW: '7',
      DATABASE_REPLICA_URLS: 'postgresql://x@r1/db',
    });
    assert.throws(() => checkBudget(budgetFor(limits, over), over), /= 98 connections; .* = 97, and 98 > 97/);
  });

  test('fits exactly: accepted; one more: refused with the arithmetic and what to change', () => {
    const fits = config({ WORKERS: '1', POOL_SIZE: '90', POOL_MAX_OVERFLOW: '7' });
    checkBudget(budgetFor(limits, fits), fits);
    const over = config({ WORKERS: '1', POOL_SIZE: '90', POOL_MAX_OVERFLOW: '8' });
    assert.throws(
      () => checkBudget(budgetFor(limits, over), over),
      (e: Error) => {
        assert.ok(e instanceof BudgetError);
        assert.match(
          e.message,
          /^Refusing to start: WORKERS x \(POOL_SIZE \+ POOL_MAX_OVERFLOW\) = 1 x \(90 \+ 8\) = 98 connections; .* = 97, and 98 > 97\. Lower WORKERS, POOL_SIZE or POOL_MAX_OVERFLOW, raise max_connections, or pool through PgBouncer \(PGBOUNCER=on\)\.$/
        );
        return true;
      }
    );
  });

  test(
    'HOSTS: the fleet counts, not one host: each host fits ' +
      'alone, together they are refused with the arithmetic',
    () => {
      const alone = config({ WORKERS: '2', POOL_SIZE: '5', POOL_MAX_OVERFLOW: '10' });
      checkBudget(budgetFor(limits, alone), alone);
      const fleet = config({ HOSTS: '4', WORKERS: '2', POOL_SIZE: '5', POOL_MAX_OVERFLOW: '10' });
      const b = budgetFor(limits, fleet);
      assert.equal(b.needed, 120);
      assert.throws(
        () => checkBudget(b, fleet),
        (e: Error) => {
          assert.match(
            e.message,
            /^Refusing to start: HOSTS x WORKERS x \(POOL_SIZE \+ POOL_MAX_OVERFLOW\) = 4 x 2 x \(5 \+ 10\) = 120 connections; .* = 97, and 120 > 97\. Lower HOSTS, WORKERS, POOL_SIZE or POOL_MAX_OVERFLOW/
          );
          return true;
        }
      );
      const three = config({ HOSTS: '3', WORKERS: '2', POOL_SIZE: '5', POOL_MAX_OVERFLOW: '10' });
      checkBudget(budgetFor(limits, three), three); // 90 <= 97
      // A PgBouncer per host: each brings its own server connections; one central PgBouncer is not checked here.
      const bouncers = config({ HOSTS: '5', PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '20' });
      assert.throws(
        () => checkBudget(budgetFor(limits, bouncers), bouncers),
        /HOSTS x PGBOUNCER_POOL_SIZE = 5 x 20 = 100 server connections, but PostgreSQL allows .* = 97\. Lower PGBOUNCER_POOL_SIZE, share one central PgBouncer \(PGBOUNCER_URL\)/
      );
      assert.throws(() => config({ HOSTS: '0' }), /Invalid HOSTS="0": expected an integer from 1 to 1000/);
    }
  );

  test('the embedded server: the refusal names PG_MAX_CONNECTIONS', () => {
    const embedded = loadConfig({}, { POOL_SIZE: '100' });
    assert.throws(
      () => checkBudget(budgetFor(limits, embedded), embedded),
      /PG_MAX_CONNECTIONS for the embedded server/
    );
  });

  test('through our PgBouncer only its server connections count, and the pools must fit its max_client_conn', () => {
    const ok = config({ PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '97', WORKERS: '10', POOL_SIZE: '50' });
    checkBudget(budgetFor(limits, ok), ok);
    const big = config({ PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '98' });
    assert.throws(
      () => checkBudget(budgetFor(limits, big), big),
      /PGBOUNCER_POOL_SIZE 98 server connections, but PostgreSQL allows .* = 97\. Lower PGBOUNCER_POOL_SIZE/
    );
    const clients = config({ PGBOUNCER: 'on', PGBOUNCER_MAX_CLIENTS: '10', WORKERS: '2' });
    assert.throws(
      () => checkBudget(budgetFor(limits, clients), clients),
      /= 30 connections, more than PGBOUNCER_MAX_CLIENTS 10/
    );
  });

  test('no check for POOL=null or an existing PgBouncer (PGBOUNCER_URL): their own limits apply', () => {
    const cases: Record<string, string>[] = [
      { POOL: 'null', WORKERS: '64' },
      { PGBOUNCER_URL: 'postgresql://x@h:6432/db', WORKERS: '64', POOL_SIZE: '1000' },
    ];
    for (const env of cases) {
      const c = config(env);
      checkBudget(budgetFor(limits, c), c);
    }
  });
});
