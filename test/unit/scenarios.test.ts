// The original's predictions, in one module: what the banner, the demo, the bench and these tests expect.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  burstSeconds,
  combinationOf,
  COMBINATIONS,
  modeOfRoute,
  ORIGINAL,
  waveAt,
  waveCount,
  wavesSeconds,
} from '../../src/scenarios.ts';

describe("the original's scenarios", () => {
  test('its three combinations in order, with the commands it ran them by', () => {
    assert.deepEqual(
      COMBINATIONS.slice(0, 3).map((c) => [c.appMode, c.dbMode, c.original]),
      [
        ['blocking', 'blocking', 'gunicorn server:app'],
        ['nonblocking', 'blocking', 'gunicorn server:app -k gevent'],
        ['nonblocking', 'nonblocking', 'PSYCOGREEN=true gunicorn server:app -k gevent'],
      ]
    );
    assert.equal(combinationOf({ appMode: 'blocking', dbMode: 'nonblocking' }).original, '(not in the original)');
  });

  test("its README's totals: 5 requests of 5 s take 50, 30 and 10 s in the three setups", () => {
    const { n, seconds } = ORIGINAL;
    const sums = COMBINATIONS.slice(0, 3).map((c) =>
      ['/sleep/node/', '/sleep/postgres/'].reduce(
        (sum, route) => sum + burstSeconds(n, seconds, modeOfRoute(route, c)),
        0
      )
    );
    assert.deepEqual(sums, [50, 30, 10]);
  });

  test('its warning: 100 database sleeps against 5 + 10 connections come back in 7 waves, the k-th at k x S', () => {
    const capacity = ORIGINAL.poolSize + ORIGINAL.poolMaxOverflow;
    assert.equal(waveCount(ORIGINAL.warningN, capacity), 7);
    assert.equal(wavesSeconds(ORIGINAL.warningN, 5, capacity), 35);
    assert.equal(waveAt(7, 5), 35);
    assert.equal(waveCount(15, 15), 1);
    assert.equal(waveCount(16, 15), 2);
  });

  test('which setting decides how a route waits', () => {
    const modes = { appMode: 'blocking', dbMode: 'nonblocking' } as const;
    assert.equal(modeOfRoute('/sleep/node/', modes), 'blocking');
    assert.equal(modeOfRoute('/sleep/python/', modes), 'blocking');
    assert.equal(modeOfRoute('/sleep/postgres/?seconds=1', modes), 'nonblocking');
  });
});
