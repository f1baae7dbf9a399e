#!/usr/bin/env node
// The command line: parses argv once, then hands a typed config to the command.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, settingFlags, settingsHelp } from './config.ts';
import { BudgetError } from './db/budget.ts';
import { runningEmbeddedUrl } from './db/embedded.ts';
import { prepareDatabase } from './db/schema.ts';
import { openDatabase } from './db/source.ts';
import { redactUrl } from './net.ts';
import { serve } from './server.ts';

const USAGE = `Usage: npm start -- [options]            start the service (same as: serve)
       npx tsx src/cli.ts <command> [options]

Commands:
  serve                 Start the HTTP service (default)
  db init [--reset]     Migrate the schema and seed 50 todos (idempotent); --reset drops and recreates
  db url                Print the connection string of the running embedded PostgreSQL (for psql)

Every setting can be given as a flag or an environment variable (or in .env):
${settingsHelp()}

Run '<command> --help' for help on one command.`;

const HELP: Record<string, string> = {
  serve: `Usage: serve [options]\n\nStarts the HTTP service on the embedded PostgreSQL, or on DATABASE_URL.\n\nOptions (flag, env var):\n${settingsHelp()}`,
  'db init': `Usage: db init [--reset] [--database-url URL] [--data-dir DIR]\n\nRuns the migrations and seeds 50 todos when the table is empty.\nRunning it twice leaves 50 rows. --reset drops the schema and recreates it.`,
  'db url': `Usage: db url [--data-dir DIR]\n\nPrints the connection string of the embedded PostgreSQL that a running 'serve' started,\nfor example: psql "$(npx tsx src/cli.ts db url)"`,
};

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...settingFlags, help: { type: 'boolean', short: 'h' }, reset: { type: 'boolean' } },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}. Run with --help for the accepted options.`);
  }
  const { values, positionals } = parsed;
  const command = positionals.length ? positionals.join(' ') : 'serve';
  if (values.help) {
    console.log(HELP[command] ?? USAGE);
    return 0;
  }
  if (values.reset && command !== 'db init') throw new UsageError('--reset only applies to "db init"');
  const config = loadConfig(values);
  switch (command) {
    case 'serve':
      await serve(config);
      return -1; // keeps running until a signal
    case 'db init': {
      const db = await openDatabase(config, (msg) => console.error(msg), true);
      try {
        const result = await prepareDatabase(db.url, { reset: values.reset });
        for (const m of result.migrations) console.log(`migration: ${m}`);
        console.log(`${result.seeded ? `seeded ${result.seeded} todos; ` : ''}${result.rows} todos in ${redactUrl(db.url)}`);
      } finally {
        await db.stop();
      }
      return 0;
    }
    case 'db url': {
      if (config.databaseUrl) {
        console.log(config.databaseUrl);
        return 0;
      }
      const url = runningEmbeddedUrl(config.dataDir);
      if (!url) {
        console.error(`No embedded PostgreSQL is running for DATA_DIR=${config.dataDir}: start the service first (npm start).`);
        return 1;
      }
      console.log(url);
      return 0;
    }
    default:
      throw new UsageError(`Unknown command "${command}". Commands: serve, db init, db url. Run with --help.`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof UsageError || err instanceof BudgetError) {
      console.error(err.message);
      process.exit(2);
    }
    console.error(`Error: ${(err as Error).message ?? err}`);
    process.exit(1);
  },
);
