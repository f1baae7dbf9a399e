// `db`: migrate and seed, or print the embedded server's URL.
import { type Command } from 'commander';
import { loadConfig } from '../config.ts';
import { type Flags, withSettings, run } from './args.ts';

export function dbCommand (cli: Command): void {
  const db = cli.command('db').description("The database: migrate and seed, or print the embedded server's URL");
  withSettings(db.command('init'), ['databaseUrl', 'dataDir', 'pgMaxConnections'])
    .description('Run the migrations and seed 50 todos when the table is empty (running it twice leaves 50 rows)')
    .option('--reset', 'drop the schema first and recreate it', false)
    .action(
      run(async (o: Flags & { reset: boolean }) => {
        const { initDatabase } = await import('../db/init.ts');
        await initDatabase(loadConfig(o), o.reset);
        return 0;
      })
    );
  withSettings(db.command('url'), ['databaseUrl', 'dataDir'])
    .description(
      'Print the connection string of the embedded PostgreSQL a running service started, for psql "$(npm run -s cli ' +
        '-- db url)"'
    )
    .action(
      run(async (o: Flags) => {
        const config = loadConfig(o);
        if (config.databaseUrl) {
          console.log(config.databaseUrl);
          return 0;
        }
        const { runningEmbeddedUrl } = await import('../postgres/embedded.ts');
        const url = runningEmbeddedUrl(config.dataDir);
        if (!url) {
          console.error(
            `No embedded PostgreSQL is running for DATA_DIR=${config.dataDir}: start the service first (npm start).`
          );
          return 1;
        }
        console.log(url);
        return 0;
      })
    );
}
