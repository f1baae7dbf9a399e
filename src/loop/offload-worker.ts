// A thread of the offload pool (piscina): the JavaScript-only work, which has no asynchronous
// form, runs here, on a V8 of its own, while the main event loop goes on serving.
import { jsonRoundTripSync, spinFor } from './stalls.ts';

export function spin ({ ms }: { ms: number }): number {
  return spinFor(ms);
}

export function jsonRoundTrip ({ kb }: { kb: number }): number {
  return jsonRoundTripSync(kb);
}
