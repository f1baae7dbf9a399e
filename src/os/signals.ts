// Ctrl-C and SIGTERM for our commands: the first asks to stop cleanly, a later one to stop now.
//
// One Ctrl-C often arrives twice: the terminal sends SIGINT to its whole foreground process
// group, and `npm start` (or `npm run ...`) forwards the one it got to its child. A repeat within
// REPEAT_MS is taken as that echo, not as a second Ctrl-C.

/** Signals closer together than this are one signal, delivered twice. */
export const REPEAT_MS = 1000;

/**
 * Calls `first` on the first SIGINT or SIGTERM and `again` on a later one; returns a function that removes the
 * handlers.
 */
export function onInterrupt (
  first: (signal: NodeJS.Signals) => void,
  again: (signal: NodeJS.Signals) => void
): () => void {
  let firstAt: number | undefined;
  const handler = (signal: NodeJS.Signals) => {
    if (firstAt === undefined) {
      firstAt = performance.now();
      first(signal);
    } else if (performance.now() - firstAt >= REPEAT_MS) {
      again(signal);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
