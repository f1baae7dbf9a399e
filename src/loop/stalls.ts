// Work that services really do on the event loop, done the way that stalls it: while one of
// these runs, no other request, timer or socket of this process is served. Each is a named
// function so that the block detector (event-loop-block-detector) names it; offload.ts does
// the same work without holding the loop.
import { pbkdf2Sync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { CHUNK_BYTES, HASH, jsonText, sampleText } from './inputs.ts';

/** A CPU loop: JavaScript that computes for `ms` milliseconds. Returns the turns it made. */
export function spinFor (ms: number): number {
  const end = performance.now() + ms;
  let turns = 0;
  while (performance.now() < end) turns++;
  return turns;
}

/** `count` password hashes with pbkdf2Sync, one after another. Returns the bytes of key made. */
export function hashPasswordsSync (count: number): number {
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    bytes += pbkdf2Sync(`password ${i}`, HASH.salt, HASH.iterations, HASH.keyBytes, HASH.digest).length;
  }
  return bytes;
}

/**
 * About `kb` KiB of JSON parsed and stringified back, as a big body or an upstream answer is. Returns the characters
 * written.
 */
export function jsonRoundTripSync (kb: number): number {
  return JSON.stringify(JSON.parse(jsonText(kb))).length;
}

/** A regular expression with nested quantifiers, on `n` a's and a mismatch: 2^n ways to try. */
export function matchBacktracking (n: number): boolean {
  return /^(a+)+$/.test(`${'a'.repeat(n)}!`);
}

/** `kb` KiB of text compressed with gzipSync, a chunk at a time. Returns the compressed bytes. */
export function compressSync (kb: number): number {
  let out = 0;
  for (let left = kb * 1024; left > 0; left -= CHUNK_BYTES) {
    out += gzipSync(sampleText(Math.min(left, CHUNK_BYTES))).length;
  }
  return out;
}

/** `times` reads of a file with readFileSync. Returns the bytes read. */
export function readFilesSync (file: string, times: number): number {
  let bytes = 0;
  for (let i = 0; i < times; i++) bytes += readFileSync(file).length;
  return bytes;
}

const waitCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * A synchronous wait of `ms`: the thread sleeps on a futex (Atomics.wait), as it would in execSync,
 * a synchronous read of a slow disk or a lock, holding the loop while using no CPU. Returns `ms`.
 */
export function waitSync (ms: number): number {
  Atomics.wait(waitCell, 0, 0, ms);
  return ms;
}
