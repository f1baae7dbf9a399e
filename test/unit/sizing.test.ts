// The pool-sizing lab's model and the demo claims' arithmetic: Little's law, the recommendation,
// the budget, the straight line through memory figures.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionSteps, linearFit } from '../../src/demo/claims.ts';
import { budgetPerProcess, predictedRps, recommend, ruleOfThumb, type Point } from '../../src/sizing/model.ts';

const point = (size: number, rps: number, errors = 0): Point => ({
  size,
  rps,
  p50: 1,
  p99: 1,
  errors,
  activeMean: 0,
  activeMax: 0,
  predicted: 0,
});

test("Little's law: waits scale with the pool up to the clients; work stops at the cores", () => {
  assert.equal(predictedRps('wait', 8, 100, 100), 80);
  assert.equal(predictedRps('wait', 200, 100, 100), 1000); // no more in service than clients
  assert.equal(predictedRps('work', 8, 100, 20, 2), 100); // 2 cores / 20 ms
  assert.equal(predictedRps('work', 1, 100, 20, 2), 50);
  assert.equal(predictedRps('work', 8, 100, 20), 400); // cores unknown: the pool is the only bound
});

test('the recommendation: the smallest pool within 15 % of the best; failed and skipped points do not count', () => {
  const points = [point(1, 50), point(2, 90), point(4, 105), point(8, 111), point(16, 120)];
  assert.deepEqual(recommend('work', points), {
    workload: 'work',
    size: 4,
    rps: 105,
    best: { size: 16, rps: 120 },
  });
  assert.equal(recommend('wait', [point(1, 10), point(2, 500, 3)])!.size, 1);
  assert.equal(recommend('wait', [{ ...point(1, 0), skipped: 'over the budget' }]), undefined);
  // Judged on the whole req/s the table prints: 67.6 shows as 68, which is 85 % of 80 (CI once picked 8 here from 67.9
  // < 68).
  assert.equal(
    recommend('work', [point(1, 42), point(2, 67.6), point(4, 66), point(8, 78), point(16, 80.2)])!.size,
    2
  );
});

test('the rules beside it: 2 x cores + spindles; the budget shared by every worker on every host', () => {
  assert.equal(ruleOfThumb(2), 4);
  assert.equal(ruleOfThumb(8, 1), 17);
  assert.equal(budgetPerProcess(97, 2, 3), 16);
  assert.equal(budgetPerProcess(97, 1, 1), 97);
});

test('memory per connection: the steps up to the limit, and a least-squares line with its R²', () => {
  assert.deepEqual(connectionSteps(50), [1, 10, 25, 50]);
  assert.deepEqual(connectionSteps(87), [1, 10, 25, 50, 75, 87]);
  assert.deepEqual(connectionSteps(10), [1, 10]);
  const exact = linearFit([1, 10, 25, 50], [2.7, 11.7, 26.7, 51.7]);
  assert.ok(
    Math.abs(exact.slope - 1) < 1e-9 && Math.abs(exact.intercept - 1.7) < 1e-9 && Math.abs(exact.r2 - 1) < 1e-9
  );
  assert.ok(linearFit([1, 2, 3, 4], [1, 9, 2, 8]).r2 < 0.5);
});
