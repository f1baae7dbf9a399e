// The pool's gate without a database: places, FIFO order, the timeout, abort, the queue bound.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { ClientGoneError } from '../../src/db/errors.ts';
import { Gate } from '../../src/db/gate.ts';

class TimedOut extends Error {}
class Full extends Error {}

function gate (capacity: number, timeoutMs = 60_000, queueMax?: number) {
  let changes = 0;
  const g = new Gate({ capacity, timeoutMs, queueMax, timedOut: () => new TimedOut(), full: () => new Full(), onChange: () => { changes++; } });
  return { g, changes: () => changes };
}

/** Enters, and records the order in which entries were granted. */
function enterAll (g: Gate, n: number, granted: number[], signals: AbortSignal[] = []) {
  return Array.from({ length: n }, (_, i) => g.enter(signals[i]).then(() => { granted.push(i); }));
}

describe('Gate', () => {
  test('up to capacity enter at once; the rest wait', async () => {
    const { g } = gate(3);
    const granted: number[] = [];
    const entries = enterAll(g, 5, granted);
    await delay(0);
    assert.deepEqual(granted, [0, 1, 2]);
    assert.equal(g.active, 3);
    assert.equal(g.waiting, 2);
    g.leave();
    g.leave();
    await Promise.all(entries);
    assert.deepEqual(granted, [0, 1, 2, 3, 4]);
    assert.equal(g.active, 3, 'each leave handed its place to a waiter');
    assert.equal(g.waiting, 0);
  });

  test('waiters get places in arrival order, and a newcomer never overtakes them', async () => {
    const { g } = gate(1);
    const granted: number[] = [];
    await g.enter();
    const waiting = enterAll(g, 50, granted);
    for (let i = 0; i < 50; i++) {
      g.leave();
      // A newcomer arriving just as a place is freed must queue behind the 50.
      if (i === 10) waiting.push(g.enter().then(() => { granted.push(100); }));
      await delay(0);
    }
    g.leave();
    await Promise.all(waiting);
    assert.deepEqual(granted, [...Array.from({ length: 50 }, (_, i) => i), 100]);
  });

  test('a waiter past its timeout gets the timeout error; the others keep their turn', async () => {
    const { g } = gate(1, 200);
    await g.enter();
    const t0 = performance.now();
    const first = g.enter().then(() => 'granted', (e: Error) => e);
    await delay(100);
    const second = g.enter().then(() => 'granted', (e: Error) => e);
    const firstResult = await first;
    assert.ok(firstResult instanceof TimedOut);
    assert.ok(performance.now() - t0 >= 190, `timed out after ${performance.now() - t0} ms`);
    assert.equal(g.waiting, 1);
    g.leave();
    assert.equal(await second, 'granted', 'the second waiter, still within its time, got the place');
    assert.equal(g.active, 1);
  });

  test('many waiters time out in order, each after the timeout, with one timer', async () => {
    const { g } = gate(1, 300);
    await g.enter();
    const results: number[] = [];
    const waits = [];
    for (let i = 0; i < 20; i++) {
      const at = performance.now();
      waits.push(g.enter().catch(() => results.push(performance.now() - at)));
      await delay(5);
    }
    await Promise.all(waits);
    assert.equal(results.length, 20);
    for (const ms of results) assert.ok(ms >= 295, `a waiter timed out after ${ms} ms`);
    assert.equal(g.waiting, 0);
    assert.equal(g.active, 1);
  });

  test('a waiter whose client leaves drops out at once; the place goes to the next one', async () => {
    const { g } = gate(1);
    await g.enter();
    const ac = new AbortController();
    const granted: number[] = [];
    const entries = enterAll(g, 3, granted, [new AbortController().signal, ac.signal]);
    ac.abort();
    const gone = await entries[1]!.then(() => 'granted', (e: Error) => e);
    assert.ok(gone instanceof ClientGoneError);
    assert.equal(g.waiting, 2);
    g.leave();
    g.leave();
    await Promise.all([entries[0], entries[2]]);
    assert.deepEqual(granted, [0, 2]);
  });

  test('an already aborted signal is refused without taking a place', async () => {
    const { g } = gate(5);
    await assert.rejects(g.enter(AbortSignal.abort()), ClientGoneError);
    assert.equal(g.active, 0);
  });

  test('beyond queueMax waiters, a caller is refused at once', async () => {
    const { g } = gate(1, 60_000, 2);
    await g.enter();
    const waiting = [g.enter(), g.enter()];
    await assert.rejects(g.enter(), Full);
    assert.equal(g.waiting, 2);
    g.leave();
    g.leave();
    await Promise.all(waiting);
    g.leave();
    assert.equal(g.active, 0);
  });

  test('onChange follows every change of active and waiting', async () => {
    const { g, changes } = gate(1);
    await g.enter(); // active 1
    const w = g.enter(); // waiting 1
    g.leave(); // handed over: waiting 0
    await w;
    g.leave(); // active 0
    assert.equal(changes(), 4);
  });
});
