// Reads to the replicas, writes to the primary, one pool per server. A read goes to a replica in
// rotation with a free connection (round robin); when every replica's pool is full, to the
// primary if it has one free; otherwise it queues where the fewest wait. A read that carries
// X-Read-After is served by a replica only once it has replayed that position, waiting up to
// READ_AFTER_TIMEOUT, and otherwise by the primary. A replica that breaks under a read is taken
// out at once and the read is served by the primary: no read fails for a replica's death.
import { setTimeout as delay } from 'node:timers/promises';
import type { MaxLag } from '../config.ts';
import { ClientGoneError, DatabaseUnavailableError, ReplicaBehindError } from './errors.ts';
import * as q from './queries.ts';
import { formatLsn, parseLsn, ReplicaWatch, type ReplicaState } from './replica-watch.ts';
import {
  AsyncTodoStore,
  type CallContext,
  type ListFilter,
  type PoolStats,
  type RunQuery,
  type SqlLogger,
  type StoreOptions,
  type TodoInput,
  type TodoPage,
  type TodoPatch,
  type TodoStore,
} from './todos.ts';
import type { Todo } from './tables.ts';

// What a call carries with replicas, beside what every call carries (the core store knows none of it).
declare module './todos.ts' {
  interface CallContext {
    /** X-Read-After: the WAL position (bytes) this read must see. */
    readAfter?: number;
    /** After a write: the WAL position that holds it, for the answer's X-Read-After. */
    wroteLsn?: string;
    /** The server that served the read, and how long it waited for that server to replay `readAfter`. */
    served?: { server: string; replayWaitMs?: number; fallback?: string };
  }
}

/** After a write on the primary: its WAL position (at or past its commit: autocommit has committed it). */
async function reportLsn (run: RunQuery, ctx: CallContext): Promise<void> {
  ctx.wroteLsn = (await run(q.walPosition()))[0]!.lsn;
}

/**
 * A replica's read that must see a write: polls its replay position on the leased connection,
 * at 1, 2, 4 ... 16 ms intervals, up to `timeoutMs`; past it, ReplicaBehindError (the read goes
 * to the primary). `replayed` is told each position seen.
 */
async function awaitReplay (
  run: RunQuery,
  ctx: CallContext,
  target: { lsn: number; timeoutMs: number; replayed: (lsn: number) => void }
): Promise<void> {
  const started = performance.now();
  for (let pause = 1; ; pause = Math.min(pause * 2, 16)) {
    const text = (await run(q.replayPosition()))[0]!.lsn;
    const lsn = text === null ? 0 : parseLsn(text)!;
    target.replayed(lsn);
    const waited = performance.now() - started;
    if (lsn >= target.lsn) {
      // Zero when the first look found it replayed: the read checked, but did not wait.
      ctx.served = { ...ctx.served!, replayWaitMs: pause === 1 ? 0 : waited };
      return;
    }
    if (ctx.signal?.aborted) throw new ClientGoneError();
    const left = target.timeoutMs - waited;
    if (left <= 0) throw new ReplicaBehindError(formatLsn(target.lsn), text ?? 'none', target.timeoutMs);
    await delay(Math.min(pause, left));
  }
}

export interface ReplicaOptions {
  /** Each standby, named for logs and metrics. */
  replicas: { name: string; url: string }[];
  maxLag: MaxLag;
  readAfterTimeoutMs: number;
  /** A replica left or re-entered the rotation, or none is left. */
  onChange?: (message: string, replica: ReplicaState) => void;
  watchIntervalMs?: number;
}

/** How reads were served: the figures /servers and /metrics show. */
export interface ReadCounts {
  /** Reads served, by server name. */
  served: Record<string, number>;
  /**
   * Reads that went to the primary: no replica in rotation, a replica broke under them, or it had not replayed their
   * X-Read-After in time.
   */
  fallbacks: { noReplica: number; broken: number; behind: number };
  /** Reads sent to the primary because every replica's pool was full. */
  spilled: number;
  /** Reads with X-Read-After served by a replica: each looked on its own connection for its position. */
  replayChecks: number;
  /** Those of them that found it not replayed yet and waited, and how long in all. */
  replayWaits: number;
  replayWaitMs: number;
  replayWaitMaxMs: number;
}

export interface ServerView {
  name: string;
  role: 'primary' | 'replica';
  stats: PoolStats;
  /** The server the last check reached (host:port); undefined when it did not answer. */
  at?: string;
  replica?: ReplicaState;
}

export const PRIMARY = 'primary';

export class ReplicatedTodoStore implements TodoStore {
  readonly primary: AsyncTodoStore;
  readonly replicas: AsyncTodoStore[];
  readonly watch: ReplicaWatch;
  readonly counts: ReadCounts;
  private next = 0;
  private allDown = false;

  constructor (
    options: StoreOptions,
    private readonly replicaOptions: ReplicaOptions,
    logSql?: SqlLogger
  ) {
    this.primary = new AsyncTodoStore({ ...options, afterWrite: reportLsn }, logSql);
    this.replicas = replicaOptions.replicas.map(
      ({ url }) => new AsyncTodoStore({ ...options, connectionString: url, onChange: undefined }, logSql)
    );
    this.counts = {
      served: Object.fromEntries([PRIMARY, ...replicaOptions.replicas.map((r) => r.name)].map((n) => [n, 0])),
      fallbacks: { noReplica: 0, broken: 0, behind: 0 },
      spilled: 0,
      replayChecks: 0,
      replayWaits: 0,
      replayWaitMs: 0,
      replayWaitMaxMs: 0,
    };
    this.watch = new ReplicaWatch(options.connectionString, replicaOptions.replicas, {
      maxLag: replicaOptions.maxLag,
      intervalMs: replicaOptions.watchIntervalMs,
      connectTimeoutMs: Math.min(options.timeoutMs, 2000),
      onChange: (r, all) => this.changed(r, all),
    });
  }

  listTodosJson (filter?: ListFilter, ctx?: CallContext): Promise<TodoPage> {
    return this.read(ctx, (s, c) => s.listTodosJson(filter, c));
  }

  getTodo (id: number, ctx?: CallContext): Promise<Todo | undefined> {
    return this.read(ctx, (s, c) => s.getTodo(id, c));
  }

  sleepThenList (seconds: number, filter: ListFilter, ctx?: CallContext): Promise<TodoPage> {
    return this.read(ctx, (s, c) => s.sleepThenList(seconds, filter, c));
  }

  work (units: number, ctx?: CallContext): Promise<number> {
    return this.read(ctx, (s, c) => s.work(units, c));
  }

  /** On the primary: its pool is the one a leak starves of writes. */
  hold (seconds: number, ctx?: CallContext): Promise<void> {
    return this.primary.hold(seconds, ctx);
  }

  createTodo (input: TodoInput, ctx?: CallContext): Promise<Todo> {
    return this.primary.createTodo(input, ctx);
  }

  updateTodo (id: number, patch: TodoPatch, ctx?: CallContext): Promise<Todo | undefined> {
    // An empty patch reads the todo: on the primary all the same, which has it for sure.
    return this.primary.updateTodo(id, patch, ctx);
  }

  deleteTodo (id: number, ctx?: CallContext): Promise<boolean> {
    return this.primary.deleteTodo(id, ctx);
  }

  /** Readiness is the primary's: without it no write succeeds; reads fall back to it. */
  ping (ctx?: CallContext): Promise<void> {
    return this.primary.ping(ctx);
  }

  lastSuccessAt (): number {
    return this.primary.lastSuccessAt();
  }

  async warm (): Promise<void> {
    await this.watch.start();
    this.allDown = this.watch.replicas.every((r) => !r.usable);
    if (this.allDown) this.replicaOptions.onChange?.(this.readsOnPrimary()!, this.watch.replicas[0]!);
    await Promise.all([this.primary, ...this.replicas].map((s) => s.warm()));
  }

  stats (): PoolStats {
    return this.primary.stats();
  }

  servers (): ServerView[] {
    return [
      { name: PRIMARY, role: 'primary', stats: this.primary.stats(), at: this.watch.primaryAt },
      ...this.replicas.map((s, i) => ({
        name: this.watch.replicas[i]!.name,
        role: 'replica' as const,
        stats: s.stats(),
        at: this.watch.replicas[i]!.at,
        replica: this.watch.replicas[i]!,
      })),
    ];
  }

  /** Why reads are not on the replicas, or undefined when at least one is in rotation. */
  readsOnPrimary (): string | undefined {
    return this.watch.replicas.some((r) => r.usable)
      ? undefined
      : `no replica is in rotation (${this.watch.replicas.map((r) => `${r.name}: ${r.reason}`).join('; ')}): reads ` +
          'go to the primary';
  }

  async close (): Promise<void> {
    await this.watch.stop();
    await Promise.all([this.primary, ...this.replicas].map((s) => s.close()));
  }

  private async read<T>(
    ctx: CallContext | undefined,
    run: (store: AsyncTodoStore, ctx: CallContext | undefined) => Promise<T>
  ): Promise<T> {
    const need = ctx?.readAfter;
    const pick = this.choose(need);
    if (pick < 0) {
      if (pick === SPILL) this.counts.spilled++;
      else this.counts.fallbacks.noReplica++;
      return this.onPrimary(ctx, run, pick === SPILL ? undefined : 'no replica in rotation');
    }
    const name = this.watch.replicas[pick]!.name;
    const c: CallContext = ctx ?? {};
    try {
      return await this.onReplica(pick, c, run, need);
    } catch (err) {
      if (err instanceof ReplicaBehindError) {
        this.counts.fallbacks.behind++;
        return this.onPrimary(c, run, `${name} had not replayed X-Read-After within READ_AFTER_TIMEOUT`);
      }
      if (err instanceof DatabaseUnavailableError) {
        this.watch.markDown(pick, `a read failed on it: ${err.detail}`);
        this.counts.fallbacks.broken++;
        return await this.onPrimary(c, run, `${name} failed under the read`).catch((primaryErr: unknown) => {
          // The primary is gone too: a failover, in which the replica that broke is the one being promoted. A proxy
          // in front of the replicas (HAProxy before Patroni) already leads elsewhere: one more try, on a connection
          // of its own, X-Read-After still honoured. Only then does the read fail.
          if (!(primaryErr instanceof DatabaseUnavailableError)) throw primaryErr;
          return this.onReplica(pick, c, run, need).catch(() => {
            throw primaryErr;
          });
        });
      }
      throw err;
    } finally {
      c.onLeased = undefined;
    }
  }

  /**
   * The read on replica `pick`; when it must see `need`, it looks on its own connection first, and waits. Not on the
   * strength of the last check: behind a proxy (HAProxy in front of Patroni's replicas) one replica URL leads to
   * several servers, and the check's connection may have reached another than the read's. A failover made that
   * visible: the surviving replicas had replayed the dead leader's WAL to different points, and 89 reads answered
   * 404 for a todo just written.
   */
  private async onReplica<T>(
    pick: number,
    c: CallContext,
    run: (store: AsyncTodoStore, ctx: CallContext | undefined) => Promise<T>,
    need: number | undefined
  ): Promise<T> {
    const name = this.watch.replicas[pick]!.name;
    c.served = { server: name };
    c.onLeased = undefined;
    if (need !== undefined) {
      const target = {
        lsn: need,
        timeoutMs: this.replicaOptions.readAfterTimeoutMs,
        replayed: (lsn: number) => this.watch.replayed(pick, lsn),
      };
      c.onLeased = (run) => awaitReplay(run, c, target);
    }
    const result = await run(this.replicas[pick]!, c);
    this.counts.served[name]!++;
    const waited = c.served.replayWaitMs;
    if (waited !== undefined) this.counts.replayChecks++;
    if (waited) {
      this.counts.replayWaits++;
      this.counts.replayWaitMs += waited;
      this.counts.replayWaitMaxMs = Math.max(this.counts.replayWaitMaxMs, waited);
    }
    return result;
  }

  private onPrimary<T>(
    ctx: CallContext | undefined,
    run: (store: AsyncTodoStore, ctx: CallContext | undefined) => Promise<T>,
    fallback?: string
  ): Promise<T> {
    if (ctx) {
      ctx.onLeased = undefined;
      ctx.served = fallback ? { server: PRIMARY, fallback } : { server: PRIMARY };
    }
    this.counts.served[PRIMARY]!++;
    return run(this.primary, ctx);
  }

  /** A replica's index, or PRIMARY_ONLY (none in rotation) or SPILL (every replica's pool full). */
  private choose (need: number | undefined): number {
    const replicas = this.watch.replicas;
    let candidates: number[] = [];
    for (let i = 0; i < replicas.length; i++) if (replicas[i]!.usable) candidates.push(i);
    if (candidates.length === 0) return PRIMARY_ONLY;
    if (need !== undefined) {
      // Replicas known to have the write first; otherwise any in rotation, which then waits for it.
      const ready = candidates.filter((i) => replicas[i]!.replayLsn >= need);
      if (ready.length) candidates = ready;
    }
    const roomy = candidates.filter((i) => this.replicas[i]!.hasRoom());
    if (roomy.length) return roomy[this.next++ % roomy.length]!;
    if (this.primary.hasRoom()) return SPILL;
    let best = candidates[this.next++ % candidates.length]!;
    for (const i of candidates) if (this.replicas[i]!.waitingCount < this.replicas[best]!.waitingCount) best = i;
    return this.primary.waitingCount < this.replicas[best]!.waitingCount ? SPILL : best;
  }

  private changed (r: ReplicaState, all: readonly ReplicaState[]): void {
    const log = this.replicaOptions.onChange;
    if (!log) return;
    log(
      r.usable ? `${r.name} is in the reads' rotation` : `${r.name} is out of the reads' rotation: ${r.reason}`,
      r
    );
    const down = all.every((x) => !x.usable);
    if (down && !this.allDown) log(this.readsOnPrimary()!, r);
    if (!down && this.allDown) log('reads go to the replicas again', r);
    this.allDown = down;
  }
}

const PRIMARY_ONLY = -1;
const SPILL = -2;
