// PostgreSQL's guards on our sessions, derived from the deadlines: which settings each server
// version gets, and how they are sent (libpq's startup options, a pooler's connect_query).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { serverGuards, sessionGuards, setStatements, startupOptions } from '../../src/postgres/guards.ts';

const defaults = loadConfig({}, {});

test('the session guards follow QUERY_TIMEOUT and DB_KEEPALIVE, and only the settings the server has', () => {
  const base = {
    idle_in_transaction_session_timeout: 15_000,
    tcp_keepalives_idle: 10,
    tcp_keepalives_interval: 1,
    tcp_keepalives_count: 10,
  };
  assert.deepEqual(sessionGuards(defaults, 130_000), base);
  assert.deepEqual(sessionGuards(defaults, undefined), base, 'an unknown version gets what every version has');
  assert.deepEqual(sessionGuards(defaults, 160_004), { ...base, client_connection_check_interval: 2000 });
  // transaction_timeout (17+): the query's deadline plus the longest sleep a request may ask for.
  assert.deepEqual(sessionGuards(defaults, 170_010), {
    ...base,
    client_connection_check_interval: 2000,
    transaction_timeout: 75_000,
  });
  const tuned = loadConfig({}, { QUERY_TIMEOUT: '2.5', DB_KEEPALIVE: '0' });
  assert.deepEqual(sessionGuards(tuned, 170_010), {
    idle_in_transaction_session_timeout: 2500,
    client_connection_check_interval: 2000,
    transaction_timeout: 62_500,
  });
});

test('the embedded server gets only the guards that find a vanished client, not those that end a slow session', () => {
  assert.deepEqual(serverGuards(defaults), {
    tcp_keepalives_idle: 10,
    tcp_keepalives_interval: 1,
    tcp_keepalives_count: 10,
    client_connection_check_interval: 2000,
  });
});

test('sent as startup options, or as SET statements for PgBouncer', () => {
  const guards = { idle_in_transaction_session_timeout: 15_000, transaction_timeout: 75_000 };
  assert.equal(startupOptions(guards), '-c idle_in_transaction_session_timeout=15000 -c transaction_timeout=75000');
  assert.equal(
    setStatements(guards),
    'SET idle_in_transaction_session_timeout = 15000; SET transaction_timeout = 75000'
  );
});
