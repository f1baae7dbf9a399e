// The original's scenarios and the totals they predict: the one place the banner, the demo, the
// benchmarks and the tests take their expectations from.
import type { Mode } from './config.ts';

export interface Modes {
  appMode: Mode;
  dbMode: Mode;
}

export interface Combination extends Modes {
  /** How the original ran it. */
  original: string;
  title: string;
}

/** The original's three server/driver combinations, in its order, and the one it lacks. */
export const COMBINATIONS: readonly Combination[] = [
  {
    appMode: 'blocking',
    dbMode: 'blocking',
    original: 'gunicorn server:app',
    title: 'Blocking server, blocking database',
  },
  {
    appMode: 'nonblocking',
    dbMode: 'blocking',
    original: 'gunicorn server:app -k gevent',
    title: 'Non-blocking server, blocking database',
  },
  {
    appMode: 'nonblocking',
    dbMode: 'nonblocking',
    original: 'PSYCOGREEN=true gunicorn server:app -k gevent',
    title: 'Non-blocking server, non-blocking database',
  },
  {
    appMode: 'blocking',
    dbMode: 'nonblocking',
    original: '(not in the original)',
    title: 'Blocking server, non-blocking database',
  },
];

export const combinationOf = (modes: Modes): Combination =>
  COMBINATIONS.find((c) => c.appMode === modes.appMode && c.dbMode === modes.dbMode)!;

/** The original's figures: 5 requests per route, 5 s sleeps, SQLAlchemy's default QueuePool. */
export const ORIGINAL = {
  n: 5,
  seconds: 5,
  poolSize: 5,
  poolMaxOverflow: 10,
  poolTimeout: 30,
  warningN: 100,
} as const;

/** Which mode decides how a sleep route waits: the app's for /sleep/node/, the database's for /sleep/postgres/. */
export const modeOfRoute = (route: string, modes: Modes): Mode =>
  route.startsWith('/sleep/postgres') ? modes.dbMode : modes.appMode;

/**
 * N concurrent sleeps of S seconds, on a route that blocks the event loop or not: one after the
 * other (N x S), or all together (S), as long as the pool is not what limits them.
 */
export function burstSeconds (n: number, seconds: number, mode: Mode): number {
  return mode === 'blocking' ? n * seconds : seconds;
}

/** How many waves N concurrent database sleeps take when at most `capacity` connections serve them. */
export const waveCount = (n: number, capacity: number) => Math.ceil(n / capacity);

/** N concurrent database sleeps of S seconds against `capacity` connections: ceil(N / capacity) x S. */
export const wavesSeconds = (n: number, seconds: number, capacity: number) => waveCount(n, capacity) * seconds;

/** The k-th of those waves (from 1) comes back at k x S. */
export const waveAt = (k: number, seconds: number) => k * seconds;
