// The same work as stalls.ts, without holding the event loop: on libuv's thread pool where Node
// has an asynchronous form (crypto.pbkdf2, zlib.gzip, fs.readFile), in a worker thread where it
// is JavaScript (a CPU loop, JSON), and with a linear regular expression where the slow one was
// only a mistake.
import { availableParallelism } from 'node:os';
import { pbkdf2 } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Piscina } from 'piscina';
import { builtFile } from '../paths.ts';
import { CHUNK_BYTES, HASH, sampleText } from './inputs.ts';

/**
 * An AbortSignal, or anything with its abort event (the service's ClientGone): an abort takes the task off the queue,
 * or ends its thread.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

const pbkdf2Async = promisify(pbkdf2);
const gzipAsync = promisify(gzip);

/** Worker threads for JavaScript work; started on first use, so that a service that never offloads pays nothing. */
export class Offload {
  private pool: Piscina | undefined;

  private threads (): Piscina {
    // One thread per core: more would only take turns on the same cores.
    this.pool ??= new Piscina({
      filename: builtFile('loop/offload-worker.js'),
      minThreads: 0,
      maxThreads: availableParallelism(),
      idleTimeout: 30_000,
    });
    return this.pool;
  }

  spin (ms: number, signal?: AbortSignalLike): Promise<number> {
    return this.threads().run({ ms }, { name: 'spin', signal: signal as AbortSignal | undefined });
  }

  jsonRoundTrip (kb: number, signal?: AbortSignalLike): Promise<number> {
    return this.threads().run({ kb }, { name: 'jsonRoundTrip', signal: signal as AbortSignal | undefined });
  }

  async close (): Promise<void> {
    await this.pool?.destroy();
    this.pool = undefined;
  }
}

/** The hashes of hashPasswordsSync, on libuv's thread pool (4 threads unless UV_THREADPOOL_SIZE), all at once. */
export async function hashPasswords (count: number): Promise<number> {
  const keys = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      pbkdf2Async(`password ${i}`, HASH.salt, HASH.iterations, HASH.keyBytes, HASH.digest)
    )
  );
  return keys.reduce((a, k) => a + k.length, 0);
}

/**
 * The same language as matchBacktracking's expression (one or more a's), without the nesting: one pass over the input.
 */
export function matchLinear (n: number): boolean {
  return /^a+$/.test(`${'a'.repeat(n)}!`);
}

/** compressSync's chunks, on libuv's thread pool. */
export async function compress (kb: number): Promise<number> {
  const sizes: number[] = [];
  for (let left = kb * 1024; left > 0; left -= CHUNK_BYTES) sizes.push(Math.min(left, CHUNK_BYTES));
  const out = await Promise.all(sizes.map((bytes) => gzipAsync(sampleText(bytes))));
  return out.reduce((a, b) => a + b.length, 0);
}

/** readFilesSync's reads, with fs.promises.readFile, four at a time. */
export async function readFiles (file: string, times: number): Promise<number> {
  let bytes = 0;
  let next = 0;
  const reader = async () => {
    while (next < times) {
      next++;
      const read = await readFile(file); // not `bytes += await ...`: that reads `bytes` before the wait
      bytes += read.length;
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, times) }, reader));
  return bytes;
}
