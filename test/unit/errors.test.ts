// Database errors to HTTP answers, without a database.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BouncerWaitTimeoutError,
  ClientGoneError,
  DatabaseReadOnlyError,
  DatabaseUnavailableError,
  isConnectionError,
  PoolExhaustedError,
  StatementTimeoutError,
  reviveError,
  serializeError,
  ServiceError,
  translate,
} from '../../src/db/errors.ts';
import * as pool from 'pg-queuepool';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('error translation', () => {
  test(
    "the pool's errors as HTTP answers: the timeout reads as SQLAlchemy's, 503 with Retry-After; a full queue " +
      '503; a client gone 499; a failed connect 503 DB_UNAVAILABLE',
    () => {
      const e = translate(new pool.PoolTimeoutError(5, 10, 30_000), false) as ServiceError;
      assert.ok(e instanceof PoolExhaustedError);
      assert.equal(e.message, 'QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00');
      assert.deepEqual([e.code, e.statusCode, e.retryAfter], ['POOL_TIMEOUT', 503, 1]);
      const full = translate(new pool.PoolQueueFullError(2), false) as ServiceError;
      assert.deepEqual([full.code, full.statusCode, full.retryAfter], ['POOL_QUEUE_FULL', 503, 1]);
      assert.match(full.message, /POOL_QUEUE_MAX 2/);
      assert.deepEqual([(translate(new pool.AbortedError(), false) as ServiceError).statusCode], [499]);
      const down = translate(
        new pool.ConnectError(
          Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
        ),
        false
      ) as DatabaseUnavailableError;
      assert.deepEqual(
        [down.code, down.statusCode, down.message],
        ['DB_UNAVAILABLE', 503, 'the database is unavailable; retry later']
      );
      assert.match(down.detail, /ECONNREFUSED/);
    }
  );

  test('57014 (query_canceled) is the client leaving when its signal aborted, STATEMENT_TIMEOUT otherwise', () => {
    const aborted = AbortSignal.abort();
    assert.ok(translate(pgError('57014'), false, aborted) instanceof ClientGoneError);
    const timeout = translate(pgError('57014'), false, new AbortController().signal);
    assert.ok(timeout instanceof StatementTimeoutError);
    assert.equal((timeout as ServiceError).statusCode, 504);
  });

  test('25006 (read_only_sql_transaction) is 503 DB_READ_ONLY, and its connection is not given back', () => {
    const e = translate(pgError('25006', 'cannot execute INSERT in a read-only transaction'), true);
    assert.ok(e instanceof DatabaseReadOnlyError);
    assert.deepEqual([(e as ServiceError).statusCode, (e as ServiceError).code], [503, 'DB_READ_ONLY']);
    assert.ok(isConnectionError(pgError('25006')));
  });

  test("PgBouncer's query_wait_timeout is a pool timeout one level down", () => {
    const e = translate(new Error('query_wait_timeout'), false);
    assert.ok(e instanceof BouncerWaitTimeoutError);
    assert.equal((e as ServiceError).code, 'POOL_TIMEOUT');
  });

  test(
    'a broken connection is 503 DB_UNAVAILABLE, its detail for the log only; a ServiceError passes through; ' +
      'anything else is left to be a 500',
    () => {
      const unavailable = translate(
        pgError('ECONNREFUSED', 'connect ECONNREFUSED 10.1.2.3:5432'),
        true
      ) as DatabaseUnavailableError;
      assert.ok(unavailable instanceof DatabaseUnavailableError);
      assert.equal(unavailable.message, 'the database is unavailable; retry later');
      assert.equal(unavailable.detail, 'connect ECONNREFUSED 10.1.2.3:5432');
      const own = new ClientGoneError();
      assert.equal(translate(own, false), own);
      const bug = new TypeError('boom');
      assert.equal(translate(bug, false), bug);
    }
  );

  test('which errors mean the connection must not go back to the pool', () => {
    for (const code of [
      '08006',
      '08003',
      '57P01',
      '57P02',
      '57P03',
      'ECONNRESET',
      'ECONNREFUSED',
      'EPIPE',
      'ETIMEDOUT',
    ]) {
      assert.ok(isConnectionError(pgError(code)), code);
    }
    assert.ok(isConnectionError(new Error('Connection terminated unexpectedly')));
    assert.ok(isConnectionError(new Error('Client has encountered a connection error and is not queryable')));
    for (const code of ['57014', '23505', '22P02', '42P01']) assert.ok(!isConnectionError(pgError(code)), code);
    assert.ok(
      !isConnectionError(
        new PoolExhaustedError('QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 1.00')
      )
    );
  });

  test('a ServiceError crosses a thread boundary as plain data and comes back the same', () => {
    const e = new PoolExhaustedError(
      'QueuePool limit of size 1 overflow 2 reached, connection timed out, timeout 3.00'
    );
    const back = reviveError(structuredClone(serializeError(e)));
    assert.ok(back instanceof ServiceError);
    assert.deepEqual(
      [
        back.message,
        (back as ServiceError).code,
        (back as ServiceError).statusCode,
        (back as ServiceError).retryAfter,
      ],
      [e.message, 'POOL_TIMEOUT', 503, 1]
    );
    const plain = reviveError(serializeError(new Error('boom')));
    assert.ok(!(plain instanceof ServiceError));
    assert.equal(plain.message, 'boom');
  });
});
