// Blocking database calls, on purpose: the way psycopg2 without psycogreen blocks a
// gevent worker. Every call waits synchronously (Atomics.wait inside synckit) while a
// worker thread does the real round trip, so the event loop is stalled for all of it.
// Nothing can react to a client that goes away meanwhile: that is the point.
import { createSyncFn } from 'synckit';
import { builtFile } from '../paths.ts';
import { reviveError, type serializeError } from './errors.ts';
import type { SharedPoolState } from './pool-state.ts';
import type { Todo } from './tables.ts';
import type {
  CallContext,
  LeaseTiming,
  ListFilter,
  PoolStats,
  SqlLogger,
  StoreOptions,
  TodoInput,
  TodoPage,
  TodoPatch,
  TodoStore,
} from './todos.ts';

export type StoreMethod = Exclude<keyof TodoStore, 'close'> | 'close';

export type BridgeRequest =
  | { op: 'open'; options: Omit<StoreOptions, 'onError' | 'onChange' | 'onLeak'>; poolState?: SharedArrayBuffer }
  | { op: 'call'; method: StoreMethod; args: unknown[] };

export interface BridgeResponse {
  ok: boolean;
  value?: unknown;
  error?: ReturnType<typeof serializeError>;
  lease?: LeaseTiming;
  sql: [string, unknown[]][];
}

/** Where each store method takes its CallContext (the worker fills in the lease timing). */
export const CONTEXT_ARG: Partial<Record<StoreMethod, number>> = {
  listTodosJson: 1,
  getTodo: 1,
  createTodo: 1,
  updateTodo: 2,
  deleteTodo: 1,
  sleepThenList: 2,
  work: 1,
  hold: 1,
  ping: 0,
};

const workerFile = builtFile('db/blocking-worker.js');

export class BlockingTodoStore implements TodoStore {
  private readonly bridge: (req: BridgeRequest) => BridgeResponse;
  private succeededAt = -Infinity;

  /** The pool lives in the worker thread: its state reaches `poolState` through shared memory. */
  constructor (
    options: StoreOptions,
    private readonly logSql?: SqlLogger,
    poolState?: SharedPoolState
  ) {
    this.bridge = createSyncFn<(req: BridgeRequest) => Promise<BridgeResponse>>(workerFile);
    // Functions cannot cross to the worker thread.
    const { onError: _onError, onChange: _onChange, onLeak: _onLeak, ...plain } = options;
    this.send({ op: 'open', options: { ...plain, logSql: Boolean(logSql) }, poolState: poolState?.buffer });
  }

  // async only to fit the interface: each body runs, and blocks, before the caller resumes.
  async listTodosJson (filter?: ListFilter, ctx?: CallContext): Promise<TodoPage> {
    return this.call('listTodosJson', [filter], ctx) as TodoPage;
  }

  async getTodo (id: number, ctx?: CallContext): Promise<Todo | undefined> {
    return this.call('getTodo', [id], ctx) as Todo | undefined;
  }

  async createTodo (input: TodoInput, ctx?: CallContext): Promise<Todo> {
    return this.call('createTodo', [input], ctx) as Todo;
  }

  async updateTodo (id: number, patch: TodoPatch, ctx?: CallContext): Promise<Todo | undefined> {
    return this.call('updateTodo', [id, patch], ctx) as Todo | undefined;
  }

  async deleteTodo (id: number, ctx?: CallContext): Promise<boolean> {
    return this.call('deleteTodo', [id], ctx) as boolean;
  }

  async sleepThenList (seconds: number, filter: ListFilter, ctx?: CallContext): Promise<TodoPage> {
    return this.call('sleepThenList', [seconds, filter], ctx) as TodoPage;
  }

  async work (units: number, ctx?: CallContext): Promise<number> {
    return this.call('work', [units], ctx) as number;
  }

  /** The worker's store keeps the connection: its timer gives it back while this thread goes on. */
  async hold (seconds: number, ctx?: CallContext): Promise<void> {
    this.call('hold', [seconds], ctx);
  }

  async ping (ctx?: CallContext): Promise<void> {
    this.call('ping', [], ctx);
  }

  async warm (): Promise<void> {
    this.call('warm', []);
  }

  stats (): PoolStats {
    return this.call('stats', []) as PoolStats;
  }

  lastSuccessAt (): number {
    return this.succeededAt;
  }

  async close (): Promise<void> {
    this.call('close', []);
  }

  private call (method: StoreMethod, args: unknown[], ctx?: CallContext): unknown {
    const res = this.send({ op: 'call', method, args });
    if (method !== 'stats') this.succeededAt = performance.now();
    if (ctx && res.lease) ctx.lease = res.lease;
    return res.value;
  }

  private send (req: BridgeRequest): BridgeResponse {
    const res = this.bridge(req);
    for (const [text, params] of res.sql) this.logSql?.(text, params);
    if (!res.ok) {
      const err = reviveError(res.error!);
      if ((err as { code?: string }).code === 'DB_UNAVAILABLE') this.succeededAt = -Infinity;
      throw err;
    }
    return res;
  }
}
