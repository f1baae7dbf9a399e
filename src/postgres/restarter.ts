// A server of ours (the embedded PostgreSQL, PgBouncer) that dies is started again, a bounded
// number of times: a service whose database is gone for good must not stay up answering 503.
import { setTimeout as delay } from 'node:timers/promises';

export interface RestartOptions {
  /** Restarts allowed within `windowMs`; one more death and we give up. */
  tries?: number;
  windowMs?: number;
  /** The pause before each attempt. */
  delayMs?: number;
}

/**
 * Returns the handler for `name`'s unexpected exit: it calls `start` again, up to `tries` times
 * within `windowMs`, and calls `giveUp` when that is not enough.
 */
export function restarter (
  name: string,
  start: () => Promise<void>,
  log: { error(msg: string): void; info(msg: string): void },
  giveUp: (reason: string) => void,
  { tries = 3, windowMs = 60_000, delayMs = 1000 }: RestartOptions = {}
): (why: string) => void {
  const restarts: number[] = [];
  const attempt = async (why: string): Promise<void> => {
    const now = Date.now();
    while (restarts.length && restarts[0]! < now - windowMs) restarts.shift();
    if (restarts.length >= tries) {
      return giveUp(`${name} ${why}, and ${tries} restarts within ${windowMs / 1000} s did not keep it up`);
    }
    restarts.push(now);
    await delay(delayMs);
    try {
      await start();
      log.info(
        `${name} is running again (restart ${restarts.length} of at most ${tries} within ${windowMs / 1000} s)`
      );
    } catch (err) {
      log.error(`restarting ${name} failed: ${(err as Error).message}`);
      return attempt('could not be restarted');
    }
  };
  return (why) => {
    log.error(`${name} ${why}: restarting it`);
    attempt(why);
  };
}
