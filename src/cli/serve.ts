// `serve`: the HTTP service (npm start), every setting a flag.
import { type Command } from 'commander';
import { loadConfig } from '../config.ts';
import { type Flags, withSettings, run, RUNS_UNTIL_SIGNAL } from './args.ts';

export function serveCommand (cli: Command): void {
  withSettings(
    cli
      .command('serve')
      .description('Start the HTTP service on the embedded PostgreSQL, or on DATABASE_URL (npm start)')
      .addHelpText(
        'after',
        '\nEvery setting is also an environment variable (and may sit in a .env file); a flag wins over both.'
      )
  ).action(
    run(async (flags: Flags) => {
      (await import('../server/heap.ts')).tuneHeap();
      const { serve } = await import('../server/serve.ts');
      await serve(loadConfig(flags));
      return RUNS_UNTIL_SIGNAL;
    })
  );
}
