#!/usr/bin/env node
// The command line: argv -> one command with typed options (each in src/cli/). Only the argument
// parser and the settings table load before a command is chosen, so --help answers at once; each
// command imports what it needs when it runs.
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { exitCode, RUNS_UNTIL_SIGNAL, UsageError } from './cli/args.ts';
import { clientCommand } from './cli/client.ts';
import { dbCommand } from './cli/db.ts';
import { demoCommand } from './cli/demo.ts';
import { faultsCommand } from './cli/faults.ts';
import { serveCommand } from './cli/serve.ts';
import { sizingCommand } from './cli/sizing.ts';
import { ConfigError } from './config.ts';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** Every command, each defined in src/cli/. */
function program (): Command {
  const cli = new Command('async-node-postgres')
    .description('Non-blocking Node.js and PostgreSQL, measured: the service, its load client and the demo.')
    .version(version, '-v, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(oneLine(text)) });
  for (const add of [serveCommand, clientCommand, demoCommand, sizingCommand, faultsCommand, dbCommand]) add(cli);
  return cli;
}

/** Commander's two-line errors ("error: unknown option '--rout'\n(Did you mean --route?)") as one line. */
function oneLine (text: string): string {
  const line = text
    .trim()
    .replace(/^error: /, '')
    .replace(/\s*\n\s*\(Did you mean (.*)\?\)/, ' (did you mean $1?)')
    .replace(/\n/g, ' ')
    .replace(/\.$/, '');
  // "option '--seconds <s>' argument 'x' is invalid. expected ..." reads as our own settings' errors do.
  const option = /^option '(--[\w-]+)[^']*' argument '(.*)' is invalid\. (.*)$/.exec(line);
  if (option) return `Invalid ${option[1]}=${JSON.stringify(option[2])}: ${option[3]}\n`;
  const argument = /^command-argument value '(.*)' is invalid for argument '(\w+)'\. (.*)$/.exec(line);
  if (argument) return `Invalid ${argument[2]!.toUpperCase()}=${JSON.stringify(argument[1])}: ${argument[3]}\n`;
  return `${line.charAt(0).toUpperCase()}${line.slice(1)}. Run with --help for the accepted options.\n`;
}

async function main (argv: string[]): Promise<number> {
  // No command, only settings (`npm start -- --port 0` runs `serve --port 0`): serve.
  const bare =
    argv.length === 0 || (argv[0]!.startsWith('-') && !['-h', '--help', '-v', '--version'].includes(argv[0]!));
  await program().parseAsync(bare ? ['serve', ...argv] : argv, { from: 'user' });
  return exitCode ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    // Once stdout is written out: to a socket (a parent's 'pipe'), a large --json document is
    // still partly queued when the command returns, and process.exit() would cut it short.
    if (code !== RUNS_UNTIL_SIGNAL) process.stdout.write('', () => process.exit(code));
  },
  async (err: unknown) => {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    const { BudgetError } = await import('./db/budget.ts');
    const { ListenError } = await import('./os/net.ts');
    if (
      err instanceof ConfigError ||
      err instanceof UsageError ||
      err instanceof BudgetError ||
      err instanceof ListenError
    ) {
      console.error(err.message);
      process.exit(2);
    }
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
);
