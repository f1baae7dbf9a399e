/** Wall-clock milliseconds with sub-millisecond precision, comparable across threads. */
export function now (): number {
  return performance.timeOrigin + performance.now();
}
