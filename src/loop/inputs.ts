// What the stalling routes and their twins work on: the same inputs for both, so that the only
// difference between /block/... and /offload/... is where the work runs.

/** One password hash: PBKDF2-SHA512 at 100,000 iterations (about 50 ms of one core here). */
export const HASH = { salt: 'a salt of sixteen', iterations: 100_000, keyBytes: 64, digest: 'sha512' } as const;

/** gzip works through its input a chunk at a time: 256 KiB. */
export const CHUNK_BYTES = 256 * 1024;

/** The file the fs routes read, again and again: 1 MiB. */
export const SAMPLE_FILE_BYTES = 1024 * 1024;

/**
 * About `kb` KiB of JSON text: an array of todos of about 100 bytes each. Cheap to make (one repeat), so that the time
 * goes to parsing and stringifying it.
 */
export function jsonText (kb: number): string {
  const item = JSON.stringify({
    id: 12345,
    title: 'a todo in a long list of them',
    done: false,
    priority: 2,
    tags: ['work', 'home'],
  });
  return `[${`${item},`.repeat(Math.max(1, Math.round((kb * 1024) / (item.length + 1))) - 1)}${item}]`;
}

let text: Buffer | undefined;

/** `bytes` of text that compresses about as well as logs or JSON do (3 to 4 times), the same every call. */
export function sampleText (bytes: number): Buffer {
  if (!text || text.length < bytes) {
    const words = [
      'select',
      'todo',
      'pool',
      'wait',
      'overflow',
      'connection',
      'postgres',
      'loop',
      'event',
      'timeout',
    ];
    let seed = 42;
    const parts: string[] = [];
    let length = 0;
    while (length < bytes) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const word = `${words[seed % words.length]}${seed % 1000} `;
      parts.push(word);
      length += word.length;
    }
    text = Buffer.from(parts.join(''), 'latin1');
  }
  return text.subarray(0, bytes);
}
