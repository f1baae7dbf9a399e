// Run by compat.test.ts in a process of its own: callbacks that throw, as pg-pool's suite has them. Each throw must
// reach 'uncaughtException' (as with pg-pool), never 'unhandledRejection'.
import { Pool } from '../../src/index.ts';
import { fakeClientClass, type FakeClient } from '../fake-client.ts';

const { Client } = fakeClientClass({ connectMs: 1, queryMs: 1 });
const pool = new Pool<FakeClient>({ size: 1, maxOverflow: 0, healthCheckPeriod: Infinity }, Client);
const seen: string[] = [];
process.on('unhandledRejection', (err) => {
  console.log(`unhandled rejection: ${(err as Error).message}`);
  process.exit(1);
});
process.on('uncaughtException', (err) => {
  seen.push(err.message);
  console.log(`uncaught: ${err.message}`);
  if (seen.length === 1) {
    pool.query('SELECT 1', () => {
      throw new Error('from query');
    });
  } else {
    pool.end().then(() => process.exit(0));
  }
});
pool.connect((_err, _client, done) => {
  done!();
  throw new Error('from connect');
});
