// The detector in this process: a block is named by its function and file, with the request being
// served, the tags and its share of CPU; pause, ignore and the rate limit hold back what they
// should and count it; the channel hears every block; bad options are refused by name. The tests
// run the build (npm test builds first): the watcher thread is a file of it.
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  BLOCK_CHANNEL,
  servingRequest,
  startBlockDetector,
  WATCHER_THREAD_NAME,
  type Block,
  type BlockDetector,
  type BlockDetectorOptions,
} from '../../dist/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const THIS_FILE = 'test/unit/detector.test.ts';

function spinFor (ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

function waitFor (ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Starts a detector that collects its blocks, and stops it when the test ends. */
async function detecting (t: { after: (fn: () => Promise<void>) => void }, options: BlockDetectorOptions = {}) {
  const blocks: Block[] = [];
  const detector = await startBlockDetector({ root: ROOT, ...options, onBlock: (b) => blocks.push(b) });
  t.after(() => detector.stop());
  // The watcher's first look, so that a block right away is seen whole.
  await delay(50);
  return { detector, blocks };
}

/** Waits (on a free loop) until `n` blocks were reported, or fails after `ms`. */
async function until (what: () => boolean, label: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${label}`);
    await delay(20);
  }
}

const threads = () =>
  existsSync(`/proc/${process.pid}/task`)
    ? readdirSync(`/proc/${process.pid}/task`).map((tid) =>
      readFileSync(`/proc/${process.pid}/task/${tid}/comm`, 'utf8').trim()
    )
    : undefined;

describe('event-loop-block-detector', () => {
  test('a CPU loop is named by its function and file, with the request, the tags and its CPU', async (t) => {
    const { blocks } = await detecting(t, { tags: { service: 'unit' } });
    servingRequest({ year: 2026 }, (q) => ({ method: 'GET', url: `/report?year=${q.year}`, route: '/report' }), () =>
      spinFor(400)
    );
    await until(() => blocks.length > 0, 'the block');
    const [block] = blocks;
    assert.equal(block!.culprit?.fn, 'spinFor', JSON.stringify(block));
    assert.equal(block!.culprit?.file, THIS_FILE);
    assert.deepEqual(block!.context, { method: 'GET', url: '/report?year=2026', route: '/report' });
    assert.deepEqual(block!.tags, { service: 'unit' });
    assert.equal(block!.pid, process.pid);
    assert.ok(block!.ms >= 300 && block!.ms < 2000, `${block!.ms} ms`);
    assert.ok(block!.sampledAfterMs >= 100 && block!.sampledAfterMs < block!.ms, `${block!.sampledAfterMs} ms`);
    if (process.platform === 'linux') {
      // On a CPU, or ready for one while the machine is busy: the thread wanted a CPU.
      const wanted = block!.cpuShare! + block!.runnableShare!;
      assert.ok(wanted > 0.7, `on a CPU ${block!.cpuShare}, waiting for one ${block!.runnableShare}`);
    }
    assert.ok(block!.frames.some((f) => f.fn === 'spinFor'));
  });

  test('a thread that waits reads as wait; outside a request the context is undefined', async (t) => {
    const { blocks } = await detecting(t);
    waitFor(400);
    await until(() => blocks.length > 0, 'the block');
    assert.equal(blocks[0]!.culprit?.fn, 'waitFor');
    assert.equal(blocks[0]!.context, undefined);
    if (process.platform === 'linux') {
      const { cpuShare, runnableShare } = blocks[0]!;
      assert.ok(cpuShare! + runnableShare! < 0.2, `on a CPU ${cpuShare}, waiting for one ${runnableShare}`);
    }
  });

  test('the application\'s own context: an AsyncLocalStorage store, read in the stall, after an await', async (t) => {
    const als = new AsyncLocalStorage<{ traceId: string }>();
    const { blocks } = await detecting(t, { context: () => als.getStore() });
    await als.run({ traceId: 'abc123' }, async () => {
      await delay(1); // the adapters' marking covers a handler's synchronous part; a store carries past it
      spinFor(300);
    });
    await until(() => blocks.length > 0, 'the block');
    assert.deepEqual(blocks[0]!.context, { traceId: 'abc123' });
  });

  test('short stalls are not blocks: below the threshold nothing is reported', async (t) => {
    const { blocks, detector } = await detecting(t, { thresholdMs: 300 });
    spinFor(120);
    await delay(400);
    assert.deepEqual(blocks, []);
    assert.deepEqual(detector.stats(), { reported: 0, suppressed: 0, ignored: 0, paused: 0 });
  });

  test('paused, ignored and over the rate: counted, not reported', async (t) => {
    const { blocks, detector } = await detecting(t, { ignore: ['knownSlowStartup', /^zlib/], maxPerMinute: 1 });
    detector.ignoring(() => spinFor(300));
    await delay(150);
    assert.equal(detector.stats().paused, 1);
    function knownSlowStartup (): void {
      spinFor(300);
    }
    knownSlowStartup();
    await until(() => detector.stats().ignored === 1, 'the ignored block');
    spinFor(300);
    await until(() => blocks.length === 1, 'the reported block');
    spinFor(300);
    await until(() => detector.stats().suppressed === 1, 'the suppressed block');
    assert.deepEqual(detector.stats(), { reported: 1, suppressed: 1, ignored: 1, paused: 1 });
    assert.equal(blocks.length, 1);
  });

  test('every block is published on the diagnostics channel', async (t) => {
    const heard: unknown[] = [];
    const listener = (message: unknown) => heard.push(message);
    subscribe(BLOCK_CHANNEL, listener);
    t.after(() => unsubscribe(BLOCK_CHANNEL, listener));
    const { blocks } = await detecting(t);
    spinFor(300);
    await until(() => heard.length === 1, 'the published block');
    assert.deepEqual(heard, blocks);
  });

  test('bad options are refused by name; one detector per process; stopped, its thread is gone', async (t) => {
    await assert.rejects(startBlockDetector({ thresholdMs: 0 }), /thresholdMs must be a number >= 1, got 0/);
    await assert.rejects(startBlockDetector({ heartbeatMs: Number.NaN }), /heartbeatMs must be a number >= 1/);
    await assert.rejects(startBlockDetector({ maxPerMinute: -1 }), /maxPerMinute must be a number >= 0/);
    const detector: BlockDetector = await startBlockDetector();
    t.after(() => detector.stop());
    await assert.rejects(startBlockDetector(), /running already: one detector per process/);
    if (threads()) {
      await until(() => threads()!.includes(WATCHER_THREAD_NAME), 'the named thread');
    }
    await detector.stop();
    if (threads()) await until(() => !threads()!.includes(WATCHER_THREAD_NAME), 'the thread to end');
    // Stopped, another may start.
    const again = await startBlockDetector();
    await again.stop();
  });
});
