// Entry of the blocking bridge's worker thread. On Node 20 a worker thread does not
// inherit tsx's loader, so register it here before loading the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./blocking-worker.ts');
