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

  const grace = closeWithGrace(
    {
      delay: deadlineMs,
      // SIGINT and SIGTERM are ours (src/os/signals.ts); close-with-grace keeps errors, the
      // deadline and the other signals that end a process (SIGHUP, SIGQUIT, SIGUSR2, ...), except
      // one node was told to answer with a heap snapshot or a report: that must not stop the service.
      skip: ['SIGINT', 'SIGTERM', ...(diagnosticSignals() as closeWithGrace.AllEvents[])],
      logger: { error: (msg: unknown) => log.error(msg) },
      onTimeout: (ms) => log.error(`shutdown took longer than ${ms / 1000} s: exiting now`),
    },
    async ({ err, signal }) => {
      if (err) log.error({ err }, 'uncaught error: shutting down');
      if (signal && !closing) {
        closing = true;
        log.info(`${signal}: shutting down gracefully`);
      }
      for (const close of closers.reverse()) await close();
      if (failed) process.exit(1);
    }
  );

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

/** The signals node itself answers because of its flags: --heapsnapshot-signal, --report-on-signal. */
export function diagnosticSignals (
  flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]
): string[] {
  const value = (name: string) => {
    const i = flags.findIndex((f) => f === name || f.startsWith(`${name}=`));
    if (i < 0) return undefined;
    return flags[i]!.includes('=') ? flags[i]!.slice(name.length + 1) : flags[i + 1];
  };
  const signals: string[] = [];
  const heap = value('--heapsnapshot-signal');
  if (heap) signals.push(heap);
  if (flags.includes('--report-on-signal')) signals.push(value('--report-signal') ?? 'SIGUSR2');
  return signals;
}
