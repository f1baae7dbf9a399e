// Where PostgreSQL comes from: DATABASE_URL, or the embedded server.
import { maskSecrets, type Config } from '../config.ts';
import { EmbeddedPostgres, runningEmbeddedUrl } from './embedded.ts';

export interface DatabaseSource {
  /** PostgreSQL, with user and password. */
  url: string;
  /** For banners and logs: never contains the password. */
  label: string;
  /** Stops what we started (nothing for DATABASE_URL). */
  stop(): Promise<void>;
  /** On a forced exit: asks what we started to stop, without waiting. */
  kill(): void;
}

export interface OpenOptions {
  log: (msg: string) => void;
  /** Use the embedded server a running `serve` owns, if any (for tools: `db init`, the demo). */
  reuseRunning?: boolean;
  /** When the embedded server we started dies: what to do, with the way to start it again. */
  onUnexpectedExit?: (why: string, restart: () => Promise<void>) => void;
}

/** `serve` owns the embedded server it starts; tools reuse a running one, or start one for as long as they run. */
export async function openDatabase (config: Pick<Config, 'databaseUrl' | 'dataDir' | 'pgMaxConnections'>, options: OpenOptions): Promise<DatabaseSource> {
  const nothing = { stop: async () => {}, kill: () => {} };
  if (config.databaseUrl) return { url: config.databaseUrl, label: maskSecrets(config.databaseUrl), ...nothing };
  const running = options.reuseRunning ? runningEmbeddedUrl(config.dataDir) : undefined;
  if (running) return { url: running, label: `embedded PostgreSQL (running) ${maskSecrets(running)}`, ...nothing };
  const embedded: EmbeddedPostgres = new EmbeddedPostgres({
    dataDir: config.dataDir,
    maxConnections: config.pgMaxConnections,
    log: options.log,
    onUnexpectedExit: options.onUnexpectedExit && ((why) => options.onUnexpectedExit!(why, () => embedded.start())),
  });
  await embedded.start();
  return {
    url: embedded.url,
    label: `embedded PostgreSQL in ${embedded.pgdata} at ${maskSecrets(embedded.url)}`,
    stop: () => embedded.stop(),
    kill: () => embedded.kill(),
  };
}
