// The far side of the blocking bridge: a worker thread that owns the pool and runs
// the async store. The main thread waits for each answer synchronously.
import { runAsWorker } from 'synckit';
import { serializeError } from './errors.ts';
import { AsyncTodoStore, type StoreOptions } from './todos.ts';
import type { BridgeRequest, BridgeResponse } from './blocking.ts';

let store: AsyncTodoStore | undefined;
const sqlLog: [string, unknown[]][] = [];

async function handle(req: BridgeRequest): Promise<unknown> {
  if (req.op === 'open') {
    const options: StoreOptions = { ...req.options, onError: () => {} };
    store = new AsyncTodoStore(options, options.logSql ? (text, params) => sqlLog.push([text, [...params]]) : undefined);
    return null;
  }
  if (!store) throw new Error('blocking bridge used before open');
  switch (req.op) {
    case 'listTodos': return store.listTodos();
    case 'sleepThenList': return store.sleepThenList(req.seconds);
    case 'ping': return store.ping();
    case 'stats': return store.stats();
    case 'close': return store.close();
  }
}

runAsWorker(async (req: BridgeRequest): Promise<BridgeResponse> => {
  try {
    const value = await handle(req);
    return { ok: true, value, sql: sqlLog.splice(0) };
  } catch (err) {
    return { ok: false, error: serializeError(err), sql: sqlLog.splice(0) };
  }
});
