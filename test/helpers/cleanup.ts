// What every test file shares: one cleanup hook for the whole file (the processes it started
// first, then the rest newest first: servers before their databases), temporary folders, polling.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stopProcess } from '../../src/os/processes.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const cleanups: (() => Promise<void>)[] = [];
const children = new Set<ChildProcess>();

after(async () => {
  await Promise.all([...children].map((c) => stopProcess(c, 'SIGKILL')));
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Registers work for the file's final cleanup (runs even when tests fail). */
export function onCleanup (fn: () => Promise<void>): void {
  cleanups.push(fn);
}

/** A process the file started: killed after the file at the latest, if it still runs. */
export function trackChild (child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** A temporary folder the postgres OS user can traverse (mkdtemp makes it 0700), removed after the file. */
export function tempDir (prefix = 'anp-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Polls `check` until it holds; fails naming `what` after `timeoutMs`. For states the service reaches on its own time
 * (a pool refilling, backends ending).
 */
export async function until (
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5000
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
