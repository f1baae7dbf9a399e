// Shutdown on SIGTERM and Ctrl-C: close-with-grace runs the closers with a deadline (and on an
// uncaught error), and the process exits 0 once they are done.
//
// One Ctrl-C often arrives twice: the terminal sends SIGINT to its whole foreground process
// group, and `npm start` forwards the one it got to its child. A repeat within REPEAT_MS is
// taken as that echo; a later one means "now": exit at once. Whatever way the process exits,
// the servers it started (PostgreSQL, PgBouncer, cluster workers) are told to stop: their
// `kill` runs on the process's 'exit' event, which process.exit() also emits.
import closeWithGrace from 'close-with-grace';
import type { Logger } from '../log.ts';

/** Signals closer together than this are one signal, delivered twice. */
export const REPEAT_MS = 1000;

export interface Shutdown {
  /**
   * Adds a resource to close on the way out. Closers run newest first; `kill`, the synchronous
   * last resort, runs on every exit, graceful or not.
   */
  add(close: () => Promise<void>, kill?: () => void): void;
  /** Starts the graceful shutdown as a signal would (the cluster primary's request to a worker). */
  begin(reason: string): void;
  /** Resolves when the graceful shutdown has begun. */
  readonly begun: Promise<void>;
}

export function handleShutdown (log: Logger, deadlineMs: number): Shutdown {
  const closers: (() => Promise<void>)[] = [];
  const kills: (() => void)[] = [];
  let begunAt: number | undefined;
  let onBegun!: () => void;
  const begun = new Promise<void>((resolve) => { onBegun = resolve; });

  process.on('exit', () => {
    for (const kill of kills.reverse()) kill();
  });

  const grace = closeWithGrace({
    delay: deadlineMs,
    // Signals are ours (the echo rule above); close-with-grace keeps errors and the deadline.
    skip: ['SIGINT', 'SIGTERM'],
    logger: { error: (msg: unknown) => log.error(msg) },
    onTimeout: (ms) => log.error(`shutdown took longer than ${ms / 1000} s: exiting now`),
  }, async ({ err }) => {
    if (err) log.error({ err }, 'uncaught error: shutting down');
    for (const close of closers.reverse()) await close();
  });

  const begin = (reason: string) => {
    if (begunAt !== undefined) return;
    begunAt = performance.now();
    log.info(`${reason}: shutting down gracefully (again, to exit at once)`);
    onBegun();
    grace.close();
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (begunAt === undefined) return begin(signal);
    if (performance.now() - begunAt < REPEAT_MS) return; // the same Ctrl-C, forwarded by npm
    log.warn(`${signal} again: exiting now`);
    process.exit(1);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  return {
    add (close, kill) {
      closers.push(close);
      if (kill) kills.push(kill);
    },
    begin,
    begun,
  };
}
