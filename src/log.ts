import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/** JSON lines when piped (for machines), readable lines on a terminal. */
export function createLogger(level: string, tag?: string): Logger {
  const base = tag ? { worker: tag } : undefined;
  if (process.stdout.isTTY) {
    return pino({ level, base }, pretty({ colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }));
  }
  return pino({ level, base: { pid: process.pid, ...base } });
}

export type { Logger };
