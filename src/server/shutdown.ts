// Shutdown on SIGTERM and Ctrl-C: close-with-grace runs the closers with a deadline (and on an
// uncaught error), and the process exits 0 once they are done. A second Ctrl-C (not npm's echo
// of the first: src/os/signals.ts) exits at once. Whatever way the process exits, the servers it
// started (PostgreSQL, PgBouncer, cluster workers) are told to stop: their `kill` runs on the
// process's 'exit' event, which process.exit() also emits.
import closeWithGrace from 'close-with-grace';
import type { Logger } from '../log.ts';
import { onInterrupt } from '../os/signals.ts';

export interface Shutdown {
  /**
   * Adds a resource to close on the way out. Closers run newest first; `kill`, the synchronous
   * last resort, runs on every exit, graceful or not.
   */
  add(close: () => Promise<void>, kill?: () => void): void;
  /** Starts the graceful shutdown as a signal would (the cluster primary's request to a worker). */
  begin(reason: string): void;
  /** The same, for a failure the service cannot recover from: the exit code is then 1. */
  fail(reason: string): void;
}

export function handleShutdown (log: Logger, deadlineMs: number): Shutdown {
  const closers: (() => Promise<void>)[] = [];
  const kills: (() => void)[] = [];
  let closing = false;
  let failed = false;

  process.on('exit', () => {
    for (const kill of kills.reverse()) kill();
  });

  const grace = closeWithGrace({
    delay: deadlineMs,
    // Signals are ours (src/os/signals.ts); close-with-grace keeps errors and the deadline.
    skip: ['SIGINT', 'SIGTERM'],
    logger: { error: (msg: unknown) => log.error(msg) },
    onTimeout: (ms) => log.error(`shutdown took longer than ${ms / 1000} s: exiting now`),
  }, async ({ err }) => {
    if (err) log.error({ err }, 'uncaught error: shutting down');
    for (const close of closers.reverse()) await close();
    if (failed) process.exit(1);
  });

  const begin = (reason: string) => {
    if (closing) return;
    closing = true;
    log.info(`${reason}: shutting down gracefully (again, to exit at once)`);
    grace.close();
  };

  onInterrupt(begin, (signal) => {
    log.warn(`${signal} again: exiting now`);
    process.exit(1);
  });

  return {
    add (close, kill) {
      closers.push(close);
      if (kill) kills.push(kill);
    },
    begin,
    fail (reason) {
      log.error(reason);
      failed = true;
      begin('a failure the service cannot recover from');
    },
  };
}
