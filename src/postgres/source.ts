// Where PostgreSQL comes from: DATABASE_URL, or the embedded server.
import { maskSecrets } from 'pg-queuepool';
import { type Config } from '../config.ts';
import { join } from 'node:path';
import { EmbeddedPostgres, runningEmbeddedUrl } from './embedded.ts';
import { serverGuards } from './guards.ts';

export interface DatabaseSource {
  /** PostgreSQL, with user and password. */
  url: string;
  /** For banners and logs: never contains the password. */
  label: string;
  /** Stops what we started (nothing for DATABASE_URL). */
  stop(): Promise<void>;
  /** On a forced exit: asks what we started to stop, without waiting. */
  kill(): void;
  /** The embedded server's data folder (ours to copy for its standbys); unset for DATABASE_URL. */
  pgdata?: string;
}

export interface OpenOptions {
  log: (msg: string) => void;
  /** Use the embedded server a running `serve` owns, if any (for tools: `db init`, the demo). */
  reuseRunning?: boolean;
  /** When the embedded server we started dies: what to do, with the way to start it again. */
  onUnexpectedExit?: (why: string, restart: () => Promise<void>) => void;
}

/** `serve` owns the embedded server it starts; tools reuse a running one, or start one for as long as they run. */
export async function openDatabase (
  config: Pick<Config, 'databaseUrl' | 'dataDir' | 'pgMaxConnections' | 'dbKeepalive'>,
  options: OpenOptions
): Promise<DatabaseSource> {
  const nothing = { stop: async () => {}, kill: () => {} };
  if (config.databaseUrl) return { url: config.databaseUrl, label: maskSecrets(config.databaseUrl), ...nothing };
  const running = options.reuseRunning ? runningEmbeddedUrl(config.dataDir) : undefined;
  if (running) return { url: running, label: `embedded PostgreSQL (running) ${maskSecrets(running)}`, ...nothing };
  const embedded: EmbeddedPostgres = new EmbeddedPostgres({
    dataDir: config.dataDir,
    maxConnections: config.pgMaxConnections,
    settings: serverGuards(config),
    log: options.log,
    onUnexpectedExit: options.onUnexpectedExit && ((why) => options.onUnexpectedExit!(why, () => embedded.start())),
  });
  await embedded.start();
  return {
    url: embedded.url,
    label: `embedded PostgreSQL in ${embedded.pgdata} at ${maskSecrets(embedded.url)}`,
    stop: () => embedded.stop(),
    kill: () => embedded.kill(),
    pgdata: embedded.pgdata,
  };
}

export interface ReplicaOptions {
  dataDir: string;
  maxConnections: number;
  /** Server settings, as the primary's (the guards). */
  settings?: Record<string, number | string>;
  log: (msg: string) => void;
  /** When standby `name` dies: what to do, with the way to start it again. */
  onUnexpectedExit: (name: string, why: string, restart: () => Promise<void>) => void;
}

/**
 * REPLICAS=N: N streaming standbys of the embedded primary, in DATA_DIR/replica-1 ..., one at a
 * time (each copies the primary's data). Stops the ones it started before it throws.
 */
export async function openReplicas (
  count: number,
  primary: Required<Pick<DatabaseSource, 'url' | 'pgdata'>>,
  options: ReplicaOptions
): Promise<DatabaseSource[]> {
  const replicas: DatabaseSource[] = [];
  try {
    for (let i = 1; i <= count; i++) {
      const name = `replica-${i}`;
      const standby: EmbeddedPostgres = new EmbeddedPostgres({
        dataDir: join(options.dataDir, name),
        maxConnections: options.maxConnections,
        settings: options.settings,
        log: options.log,
        standbyOf: { url: primary.url, pgdata: primary.pgdata, name },
        onUnexpectedExit: (why) => options.onUnexpectedExit(name, why, () => standby.start()),
      });
      await standby.start();
      replicas.push({
        url: standby.url,
        label: `${name}, a streaming standby in ${standby.pgdata} at ${maskSecrets(standby.url)}`,
        stop: () => standby.stop(),
        kill: () => standby.kill(),
        pgdata: standby.pgdata,
      });
    }
    return replicas;
  } catch (err) {
    await Promise.all(replicas.map((r) => r.stop()));
    throw err;
  }
}
