// WAL positions as PostgreSQL writes them ("16/B374D848"), and back: the arithmetic of the
// replicas' lag and of X-Read-After.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatLsn, parseLsn } from '../../src/db/replica-watch.ts';

describe('WAL positions', () => {
  test('parsed to bytes and written back the way PostgreSQL writes them', () => {
    assert.equal(parseLsn('0/0'), 0);
    assert.equal(parseLsn('0/16B3F28'), 0x16b3f28);
    assert.equal(parseLsn('16/B374D848'), 0x16 * 2 ** 32 + 0xb374d848);
    // Exact up to 2^53 bytes: 8 PiB of WAL, far beyond any server's.
    assert.equal(parseLsn('1fffff/ffffffff'), Number.MAX_SAFE_INTEGER);
    for (const text of ['0/16B3F28', '16/B374D848', '1FFFFF/FFFFFFFF', '0/0']) {
      assert.equal(formatLsn(parseLsn(text)!), text);
    }
    assert.ok(parseLsn('1/0')! > parseLsn('0/FFFFFFFF')!);
  });

  test('anything else is not one', () => {
    for (const bad of ['', '0', '0/', '/0', '0/16B3F28 ', 'x/1', '1/2/3', '123456789/0', '-1/0', '0x1/0']) {
      assert.equal(parseLsn(bad), undefined, bad);
    }
  });
});
