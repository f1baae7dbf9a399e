// How far behind the primary each replica is, read a few times a second on a connection of its
// own (not the pools': a full pool must not hide a replica's lag), and which replicas may serve
// reads now: up, a standby, and within REPLICA_MAX_LAG.
import pg from 'pg';
import type { MaxLag } from '../config.ts';
import { APPLICATION_NAME } from './application.ts';

/** A WAL position ("16/B374D848") as a number of bytes: exact up to 8 PiB. */
export function parseLsn (text: string): number | undefined {
  const m = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(text);
  return m ? parseInt(m[1]!, 16) * 2 ** 32 + parseInt(m[2]!, 16) : undefined;
}

export function formatLsn (lsn: number): string {
  return `${Math.floor(lsn / 2 ** 32)
    .toString(16)
    .toUpperCase()}/${(lsn % 2 ** 32).toString(16).toUpperCase()}`;
}

export interface ReplicaState {
  name: string;
  /** Answered the last check. */
  up: boolean;
  /** In rotation for reads. */
  usable: boolean;
  /** Why not, when not usable. */
  reason?: string;
  /** The last WAL position it had replayed (bytes), when last checked. */
  replayLsn: number;
  /**
   * The server that answered the last check, as PostgreSQL reports its own address (host:port): behind a proxy that
   * routes by role, the member it reached.
   */
  at?: string;
  lagBytes: number;
  lagSeconds: number;
}

export interface WatchOptions {
  maxLag: MaxLag;
  intervalMs?: number;
  connectTimeoutMs?: number;
  /** A replica left or re-entered the rotation (its state says why). */
  onChange?: (replica: ReplicaState, all: readonly ReplicaState[]) => void;
}

/** Where a check landed: over a Unix socket PostgreSQL has no address, and says so. */
const AT = "coalesce(host(inet_server_addr()) || ':' || inet_server_port(), 'a local socket') AS at";
const CHECK = `SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS lsn, ${AT}`;
const PRIMARY_CHECK = `SELECT pg_current_wal_lsn()::text AS lsn, ${AT}`;

/**
 * How long the primary's positions are remembered: past it, a replica that old is far past any REPLICA_MAX_LAG in time
 * we take.
 */
const HISTORY_MS = 2 * 3600_000;

export class ReplicaWatch {
  readonly replicas: ReplicaState[];
  /** The primary's WAL position at the last check. */
  primaryLsn = 0;
  /** The primary that answered the last check (host:port), or undefined when it did not answer. */
  primaryAt: string | undefined;
  /**
   * When the primary was first seen at each new position: a replica's lag in time is how long
   * ago the primary first had WAL the replica has not replayed. (Its last replayed commit's
   * timestamp is no measure: after an idle hour, the first write would make it an hour late.)
   */
  private readonly history: { at: number; lsn: number }[] = [];
  private readonly clients: (pg.Client | undefined)[];
  private primary: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly intervalMs: number;

  constructor (
    private readonly primaryUrl: string,
    private readonly urls: { name: string; url: string }[],
    private readonly options: WatchOptions
  ) {
    this.replicas = urls.map(({ name }) => ({
      name,
      up: false,
      usable: false,
      reason: 'not checked yet',
      replayLsn: 0,
      lagBytes: 0,
      lagSeconds: 0,
    }));
    this.clients = urls.map(() => undefined);
    this.intervalMs = options.intervalMs ?? 200;
  }

  /** Resolves after the first check, so that reads have replicas from the first request. */
  async start (): Promise<void> {
    await this.check();
    this.schedule();
  }

  async stop (): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all([this.primary, ...this.clients].map((c) => c?.end().catch(() => {})));
  }

  /** A read found it broken: out of rotation now, back when a check answers again. */
  markDown (index: number, why: string): void {
    const r = this.replicas[index]!;
    this.clients[index]?.end().catch(() => {});
    this.clients[index] = undefined;
    this.update(index, { ...r, up: false, usable: false, reason: why });
  }

  /** A replica that has just been seen to have replayed up to `lsn` (a read waited for it). */
  replayed (index: number, lsn: number): void {
    const r = this.replicas[index]!;
    if (lsn > r.replayLsn) r.replayLsn = lsn;
  }

  private schedule (): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.check().finally(() => this.schedule()), this.intervalMs);
    this.timer.unref();
  }

  private async check (): Promise<void> {
    try {
      this.primary ??= await this.connect(this.primaryUrl);
      const { rows } = await this.primary.query<{ lsn: string; at: string }>(PRIMARY_CHECK);
      this.primaryLsn = parseLsn(rows[0]!.lsn)!;
      this.primaryAt = rows[0]!.at;
      const now = performance.now();
      if (this.history.at(-1)?.lsn !== this.primaryLsn) this.history.push({ at: now, lsn: this.primaryLsn });
      while (this.history.length > 1 && this.history[0]!.at < now - HISTORY_MS) this.history.shift();
    } catch {
      // The primary is down: the replicas' lag cannot be known; they keep their last figures.
      this.primary?.end().catch(() => {});
      this.primary = undefined;
      this.primaryAt = undefined;
    }
    await Promise.all(this.urls.map((_, i) => this.checkReplica(i)));
  }

  private async checkReplica (i: number): Promise<void> {
    const r = this.replicas[i]!;
    try {
      const client = (this.clients[i] ??= await this.connect(this.urls[i]!.url));
      const { rows } = await client.query<{ standby: boolean; lsn: string | null; at: string }>(CHECK);
      const { standby, lsn, at } = rows[0]!;
      if (!standby || lsn === null) {
        return this.update(i, {
          ...r,
          at,
          up: true,
          usable: false,
          reason: 'not a standby (promoted, or not a replica)',
        });
      }
      const replayLsn = Math.max(parseLsn(lsn)!, r.replayLsn);
      const lagBytes = Math.max(0, this.primaryLsn - replayLsn);
      const lagSeconds = lagBytes > 0 ? this.secondsBehind(replayLsn) : 0;
      const late = this.options.maxLag.exceeded(lagSeconds, lagBytes);
      this.update(i, {
        name: r.name,
        at,
        up: true,
        usable: !late,
        replayLsn,
        lagBytes,
        lagSeconds,
        ...(late
          ? {
              reason:
                `${lagSeconds.toFixed(2)} s and ${lagBytes} bytes behind the primary, past ` +
                `REPLICA_MAX_LAG ${this.options.maxLag}`,
            }
          : {}),
      });
    } catch (err) {
      this.clients[i]?.end().catch(() => {});
      this.clients[i] = undefined;
      this.update(i, {
        ...r,
        at: undefined,
        up: false,
        usable: false,
        reason: `does not answer: ${(err as Error).message}`,
      });
    }
  }

  /** Since the primary was first seen past `replayLsn` (to within one check's interval). */
  private secondsBehind (replayLsn: number): number {
    const first = this.history.find((h) => h.lsn > replayLsn);
    return first ? (performance.now() - first.at) / 1000 : 0;
  }

  private async connect (url: string): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 1000,
      application_name: `${APPLICATION_NAME} replica watch`,
    });
    client.on('error', () => {}); // a dead server: the next check reports it
    try {
      await client.connect();
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    return client;
  }

  private update (i: number, next: ReplicaState): void {
    const before = this.replicas[i]!;
    this.replicas[i] = next;
    if (before.usable !== next.usable && !this.stopped) this.options.onChange?.(next, this.replicas);
  }
}
