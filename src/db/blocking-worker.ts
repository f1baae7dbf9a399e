// The far side of the blocking bridge: a worker thread that owns the pool and runs
// the async store. The main thread waits for each answer synchronously.
import { runAsWorker } from 'synckit';
import { serializeError } from './errors.ts';
import { SharedPoolState } from './pool-state.ts';
import { AsyncTodoStore, type CallContext } from './todos.ts';
import { CONTEXT_ARG, type BridgeRequest, type BridgeResponse } from './blocking.ts';

let store: AsyncTodoStore | undefined;
const sqlLog: [string, unknown[]][] = [];

async function handle (req: BridgeRequest, ctx: CallContext): Promise<unknown> {
  if (req.op === 'open') {
    const log = req.options.logSql
      ? (text: string, params: readonly unknown[]) => sqlLog.push([text, [...params]])
      : undefined;
    const state = req.poolState && new SharedPoolState(req.poolState);
    store = new AsyncTodoStore({ ...req.options, onError: () => {}, onChange: state?.write }, log);
    return null;
  }
  if (!store) throw new Error('blocking bridge used before open');
  const method = store[req.method] as (...args: unknown[]) => unknown;
  const at = CONTEXT_ARG[req.method];
  return method.apply(
    store,
    at === undefined ? req.args : [...Array.from({ length: at }, (_, i) => req.args[i]), ctx]
  );
}

runAsWorker(async (req: BridgeRequest): Promise<BridgeResponse> => {
  const ctx: CallContext = {};
  try {
    const value = await handle(req, ctx);
    return { ok: true, value, lease: ctx.lease, sql: sqlLog.splice(0) };
  } catch (err) {
    return { ok: false, error: serializeError(err), lease: ctx.lease, sql: sqlLog.splice(0) };
  }
});
