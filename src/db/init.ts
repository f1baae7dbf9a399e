// `db init`: migrate and seed, on DATABASE_URL or the embedded server (a running service's, or
// one started for the command).
import { maskSecrets } from 'pg-queuepool';
import type { Config } from '../config.ts';
import { openDatabase } from '../postgres/source.ts';
import { prepareDatabase } from './tables.ts';

export async function initDatabase (config: Config, reset: boolean): Promise<void> {
  const db = await openDatabase(config, { log: (msg) => console.error(msg), reuseRunning: true });
  try {
    const result = await prepareDatabase(db.url, { reset, connectTimeoutMs: config.connectTimeout * 1000 });
    for (const m of result.migrations) console.log(`migration: ${m}`);
    console.log(
      `${result.seeded ? `seeded ${result.seeded} todos; ` : ''}${result.rows} todos in ${maskSecrets(db.url)}`
    );
  } finally {
    await db.stop();
  }
}
