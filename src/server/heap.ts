// One V8 setting for the service's heap, made before the server's modules load.
//
// V8 "pretenures" an allocation site (allocates its objects straight in the old generation)
// once most of the objects it made were seen to survive a young-generation collection. Start-up
// (plugins, schemas, routes, a pool filled at once) teaches it that about sites the request path
// later uses for objects that live a few milliseconds. Those land in the old generation, where
// they keep whatever young objects they point to alive through every scavenge until the next
// full collection: under load the old generation grew by ~1.5 MB per scavenge, to 100-120 MB
// between mark-compacts. Without pretenuring it stays flat (~36 MB) and peak RSS fell from
// 170-190 MB to ~135 MB at the same throughput (BENCHMARKS.md, suite 3).
import v8 from 'node:v8';

export function tuneHeap (): void {
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
}
