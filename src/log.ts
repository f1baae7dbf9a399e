import pino, { type Logger } from 'pino';

/**
 * JSON lines when piped (for machines), readable lines on a terminal; pino-pretty is loaded
 * only then. NO_COLOR (https://no-color.org) turns the colours off.
 */
export async function createLogger (level: string, tag?: string): Promise<Logger> {
  const base = tag ? { worker: tag } : undefined;
  if (process.stdout.isTTY) {
    const { default: pretty } = await import('pino-pretty');
    const colorize = !process.env.NO_COLOR;
    return pino({ level, base }, pretty({ colorize, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }));
  }
  return pino({ level, base: { pid: process.pid, ...base } });
}

export type { Logger };
