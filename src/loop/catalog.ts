// The kinds of work that block, as the routes, the demo and the tests know them: each with its
// one bounded parameter, the function that holds the loop, and how its twin avoids it.
import { setTimeout as sleep } from 'node:timers/promises';
import { compress, hashPasswords, matchLinear, readFiles, type Offload, type AbortSignalLike } from './offload.ts';
import {
  compressSync,
  hashPasswordsSync,
  jsonRoundTripSync,
  matchBacktracking,
  readFilesSync,
  spinFor,
  waitSync,
} from './stalls.ts';

/** What the work needs besides its parameter: the file to read, the worker threads, the request's abort. */
export interface Where {
  file: string;
  threads: Offload;
  signal?: AbortSignalLike;
}

export interface Kind {
  /** What it is, in a few words. */
  what: string;
  /** Its query parameter: an integer from `min` to `max`, `fallback` when absent. */
  param: string;
  min: number;
  max: number;
  fallback: number;
  /** What one unit of the parameter is. */
  unit: string;
  /** The function on the event loop that the detector names, and what it calls. */
  fn: string;
  blocking: string;
  twin: string;
  block: (n: number, at: Where) => number | boolean;
  offload: (n: number, at: Where) => Promise<number | boolean>;
}

export const KINDS = {
  cpu: {
    what: 'a CPU loop',
    param: 'ms',
    min: 1,
    max: 5000,
    fallback: 300,
    unit: 'milliseconds of computing',
    fn: spinFor.name,
    blocking: 'a JavaScript loop on the main thread',
    twin: 'the same loop in a worker thread (piscina)',
    block: (ms) => spinFor(ms),
    offload: (ms, at) => at.threads.spin(ms, at.signal),
  },
  hash: {
    what: 'password hashes',
    param: 'count',
    min: 1,
    max: 20,
    fallback: 6,
    unit: 'PBKDF2-SHA512 hashes of 100,000 iterations (about 50 ms each)',
    fn: hashPasswordsSync.name,
    blocking: 'crypto.pbkdf2Sync, one after another',
    twin: "crypto.pbkdf2 on libuv's thread pool",
    block: (n) => hashPasswordsSync(n),
    offload: (n) => hashPasswords(n),
  },
  json: {
    what: 'a JSON round trip',
    param: 'kb',
    min: 1,
    max: 32_768,
    fallback: 12_288,
    unit: 'KiB of JSON to parse and stringify',
    fn: jsonRoundTripSync.name,
    blocking: 'JSON.parse and JSON.stringify on the main thread',
    twin: 'the same in a worker thread (piscina)',
    block: (kb) => jsonRoundTripSync(kb),
    offload: (kb, at) => at.threads.jsonRoundTrip(kb, at.signal),
  },
  regex: {
    what: 'a regular expression that backtracks',
    param: 'n',
    min: 1,
    max: 27,
    fallback: 24,
    unit: "a's before the mismatch, each doubling the work of /^(a+)+$/",
    fn: matchBacktracking.name,
    blocking: '/^(a+)+$/ on n a\'s and a "!"',
    twin: 'the linear /^a+$/, which accepts the same strings',
    block: (n) => matchBacktracking(n),
    offload: async (n) => matchLinear(n),
  },
  gzip: {
    what: 'compression',
    param: 'kb',
    min: 1,
    max: 65_536,
    fallback: 8192,
    unit: 'KiB of text to gzip',
    fn: compressSync.name,
    blocking: 'zlib.gzipSync, 256 KiB at a time',
    twin: "zlib.gzip on libuv's thread pool",
    block: (kb) => compressSync(kb),
    offload: (kb) => compress(kb),
  },
  fs: {
    what: 'file reads',
    param: 'times',
    min: 1,
    max: 4096,
    fallback: 768,
    unit: 'reads of a 1 MiB file',
    fn: readFilesSync.name,
    blocking: 'fs.readFileSync',
    twin: 'fs.promises.readFile, four at a time',
    block: (n, at) => readFilesSync(at.file, n),
    offload: (n, at) => readFiles(at.file, n),
  },
  wait: {
    what: 'a synchronous wait',
    param: 'ms',
    min: 1,
    max: 5000,
    fallback: 300,
    unit: 'milliseconds of waiting',
    fn: waitSync.name,
    blocking: 'Atomics.wait on the main thread, as execSync or a read of a slow disk waits',
    twin: 'a timer (timers/promises setTimeout)',
    block: (ms) => waitSync(ms),
    offload: async (ms) => {
      await sleep(ms);
      return ms;
    },
  },
} satisfies Record<string, Kind>;

export type KindName = keyof typeof KINDS;
export const KIND_NAMES = Object.keys(KINDS) as KindName[];
