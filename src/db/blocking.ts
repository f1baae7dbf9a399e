// Blocking database calls, on purpose: the way psycopg2 without psycogreen blocks a
// gevent worker. Every call waits synchronously (Atomics.wait inside synckit) while a
// worker thread does the real round trip, so the event loop is stalled for all of it.
import { createSyncFn } from 'synckit';
import { reviveError, type serializeError } from './errors.ts';
import type { PoolStats } from './pool.ts';
import type { Todo } from './schema.ts';
import type { SqlLogger, StoreOptions, TodoStore } from './todos.ts';

export type BridgeRequest =
  | { op: 'open'; options: Omit<StoreOptions, 'onError'> }
  | { op: 'listTodos' }
  | { op: 'sleepThenList'; seconds: number }
  | { op: 'ping' }
  | { op: 'stats' }
  | { op: 'close' };

export type BridgeResponse =
  | { ok: true; value: unknown; sql: [string, unknown[]][] }
  | { ok: false; error: ReturnType<typeof serializeError>; sql: [string, unknown[]][] };

const workerFile = new URL('./blocking-worker.mjs', import.meta.url);

export class BlockingTodoStore implements TodoStore {
  private readonly call: (req: BridgeRequest) => BridgeResponse;

  constructor(options: StoreOptions, private readonly logSql?: SqlLogger) {
    this.call = createSyncFn<(req: BridgeRequest) => Promise<BridgeResponse>>(workerFile);
    const { onError: _ignored, ...plain } = options;
    this.send({ op: 'open', options: { ...plain, logSql: Boolean(logSql) } });
  }

  // async only to fit the interface: the body runs, and blocks, before the caller resumes.
  async listTodos(): Promise<Todo[]> {
    return this.send({ op: 'listTodos' }) as Todo[];
  }

  async sleepThenList(seconds: number): Promise<Todo[]> {
    return this.send({ op: 'sleepThenList', seconds }) as Todo[];
  }

  async ping(): Promise<void> {
    this.send({ op: 'ping' });
  }

  stats(): PoolStats {
    return this.send({ op: 'stats' }) as PoolStats;
  }

  async close(): Promise<void> {
    this.send({ op: 'close' });
  }

  private send(req: BridgeRequest): unknown {
    const res = this.call(req);
    for (const [text, params] of res.sql) this.logSql?.(text, params);
    if (!res.ok) throw reviveError(res.error);
    return res.value;
  }

}
