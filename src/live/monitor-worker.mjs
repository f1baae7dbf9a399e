// Entry of the monitor thread. On Node 20 a worker thread does not inherit tsx's loader,
// so register it here before loading the TypeScript module.
import { register } from 'tsx/esm/api';

register();
await import('./monitor-worker.ts');
