#!/usr/bin/env node
// The command line: parses argv once, then hands typed options to the command.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ClientError, DEFAULT_ROUTES, runClient } from './client/client.ts';
import { ConfigError, loadConfig, settingFlags, settingsHelp } from './config.ts';
import { BudgetError } from './db/budget.ts';
import { runningEmbeddedUrl } from './db/embedded.ts';
import { prepareDatabase } from './db/schema.ts';
import { openDatabase } from './db/source.ts';
import { runDemo } from './demo/demo.ts';
import { redactUrl } from './net.ts';
import { serve } from './server.ts';

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

interface Command {
  usage: string;
  options: Options;
  positionals?: boolean;
  run(values: Values, positionals: string[]): Promise<number>;
}

const help = { help: { type: 'boolean', short: 'h' } } as const;

const COMMANDS: Record<string, Command> = {
  serve: {
    usage: `Usage: npm start -- [options]    (or: npx tsx src/cli.ts serve [options])

Starts the HTTP service on the embedded PostgreSQL, or on DATABASE_URL.
Every setting is a flag or an environment variable (also read from .env):
${settingsHelp()}`,
    options: settingFlags,
    async run(values) {
      await serve(loadConfig(values as Record<string, string>));
      return -1; // runs until a signal
    },
  },

  'db init': {
    usage: `Usage: npm run cli -- db init [--reset] [--database-url URL] [--data-dir DIR]

Runs the migrations and seeds 50 todos when the table is empty: running it twice leaves 50 rows.
--reset drops the schema first and recreates it.`,
    options: { ...settingFlags, reset: { type: 'boolean' } },
    async run(values) {
      const config = loadConfig(values as Record<string, string>);
      const db = await openDatabase(config, (msg) => console.error(msg), true);
      try {
        const result = await prepareDatabase(db.url, { reset: Boolean(values.reset) });
        for (const m of result.migrations) console.log(`migration: ${m}`);
        console.log(`${result.seeded ? `seeded ${result.seeded} todos; ` : ''}${result.rows} todos in ${redactUrl(db.url)}`);
      } finally {
        await db.stop();
      }
      return 0;
    },
  },

  'db url': {
    usage: `Usage: npm run cli -- db url [--data-dir DIR]

Prints the connection string of the embedded PostgreSQL that a running service started, for example:
  psql "$(npx tsx src/cli.ts db url)"`,
    options: settingFlags,
    async run(values) {
      const config = loadConfig(values as Record<string, string>);
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
    },
  },

  client: {
    usage: `Usage: npm run client -- [N] [options]

Sends N concurrent requests (default 5), each on its own connection, to each route in turn,
and prints when each response came back (the original client.py's output), then a summary.
  --url URL          the service (default http://127.0.0.1:8000)
  --route PATH       a route to load; repeatable (default ${DEFAULT_ROUTES.join(' then ')})
  --seconds S        sent as ?seconds=S (default: the service's SLEEP_SECONDS)
  --json             print one JSON document with every request instead
  --report FILE      write a self-contained HTML timeline of every request
  --verbose          print every response even above 50 requests per route
  --timeout S        give up on a request after S seconds (default: never)`,
    positionals: true,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8000' },
      route: { type: 'string', multiple: true },
      seconds: { type: 'string' },
      json: { type: 'boolean', default: false },
      report: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      timeout: { type: 'string' },
    },
    async run(values, positionals) {
      if (positionals.length > 1) throw new UsageError(`client takes one number N, got: ${positionals.join(' ')}`);
      const n = positionals[0] === undefined ? 5 : intArg('N', positionals[0], 1, 100_000);
      const url = String(values.url);
      if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`Invalid --url=${JSON.stringify(url)}: expected http://host:port`);
      const routes = (values.route as string[] | undefined) ?? DEFAULT_ROUTES;
      for (const r of routes) if (!r.startsWith('/')) throw new UsageError(`Invalid --route=${JSON.stringify(r)}: expected a path starting with /`);
      await runClient({
        n,
        url,
        routes,
        seconds: values.seconds === undefined ? undefined : numArg('--seconds', String(values.seconds), 0, 60),
        json: Boolean(values.json),
        report: values.report as string | undefined,
        verbose: Boolean(values.verbose),
        timeoutMs: values.timeout === undefined ? undefined : numArg('--timeout', String(values.timeout), 0.001, 3600) * 1000,
      });
      return 0;
    },
  },

  demo: {
    usage: `Usage: npm run demo -- [--seconds S] [--quick] [--scale] [--report FILE.html]

Runs the original's three scenarios and its pool warning for real, each against a service
started in that mode, and checks every total against the one the settings predict.
  --seconds S        the sleep (default 5, as in the original)
  --quick            S = 1
  --scale            add scenario 6, beyond the ceiling: 4 workers' pools (60 connections)
                     against max_connections 20, refused directly, then served through
                     PgBouncer (needs the Debian package pgbouncer; about 30 s more)
  --report FILE      write every timeline into one HTML file
Uses the embedded PostgreSQL, or DATABASE_URL if set; --scale always starts a PostgreSQL
of its own in DATA_DIR/scale, because it needs max_connections = 20.`,
    options: {
      seconds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      scale: { type: 'boolean', default: false },
      report: { type: 'string' },
      'database-url': { type: 'string' },
      'data-dir': { type: 'string' },
    },
    async run(values) {
      if (values.quick && values.seconds !== undefined) throw new UsageError('--quick and --seconds exclude each other');
      const seconds = values.quick ? 1 : values.seconds === undefined ? 5 : numArg('--seconds', String(values.seconds), 0.1, 60);
      const config = loadConfig({ 'database-url': values['database-url'] as string | undefined, 'data-dir': values['data-dir'] as string | undefined });
      return runDemo(config, { seconds, n: 5, report: values.report as string | undefined, scale: Boolean(values.scale) });
    },
  },
};

const USAGE = `Usage: npx tsx src/cli.ts <command> [options]

Commands:
  serve                 Start the HTTP service (npm start)
  client [N]            Fire N concurrent requests at the sleep routes (npm run client)
  demo                  Reproduce the original's results, measured (npm run demo)
  db init [--reset]     Migrate the schema and seed 50 todos
  db url                Print the running embedded PostgreSQL's connection string

Run '<command> --help' for a command's options.`;

function intArg(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new UsageError(`Invalid ${name}=${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`);
  return n;
}

function numArg(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`Invalid ${name}=${JSON.stringify(raw)}: expected a number from ${min} to ${max}`);
  return n;
}

function findCommand(argv: string[]): { name: string; rest: string[] } {
  if (argv[0] === 'db') return { name: `db ${argv[1] ?? ''}`.trim(), rest: argv.slice(2) };
  if (argv[0] === undefined || argv[0].startsWith('-')) return { name: argv.includes('--help') || argv.includes('-h') ? '' : 'serve', rest: argv };
  return { name: argv[0], rest: argv.slice(1) };
}

async function main(argv: string[]): Promise<number> {
  const { name, rest } = findCommand(argv);
  if (name === '') {
    console.log(USAGE);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`Unknown command "${name}". Commands: ${Object.keys(COMMANDS).join(', ')}. Run with --help.`);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...command.options, ...help }, allowPositionals: Boolean(command.positionals) });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} Run '${name} --help' for the accepted options.`);
  }
  if (parsed.values.help) {
    console.log(command.usage);
    return 0;
  }
  return command.run(parsed.values, parsed.positionals);
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
    if (err instanceof ClientError) {
      console.error(err.message);
      process.exit(1);
    }
    console.error(`Error: ${(err as Error).message ?? err}`);
    process.exit(1);
  },
);
