// `faults`: the fault proxy in front of PostgreSQL, driven from standard input.
import { type Command } from 'commander';
import { maskSecrets } from 'pg-queuepool';
import { loadConfig, SETTINGS } from '../config.ts';
import { UsageError, type Flags, withSettings, intArg, run } from './args.ts';

export function faultsCommand (cli: Command): void {
  withSettings(cli.command('faults'), ['databaseUrl', 'dataDir'])
    .description(
      'A TCP proxy in front of PostgreSQL that makes network faults on command (standard input: drop, refuse, reset, ' +
        'delay <ms>, heal, status, quit): point the service at it'
    )
    .option(
      '--to <url>',
      'PostgreSQL to forward to (default: DATABASE_URL, or the embedded server a running service started)'
    )
    .option('--port <n>', 'port to listen on, on 127.0.0.1 (default: any free port)', intArg(0, 65535), 0)
    .action(
      run(async (o: Flags & { to?: string; port: number }) => {
        const config = loadConfig(o);
        let to = o.to;
        if (to !== undefined) {
          const checked = SETTINGS.databaseUrl.parse(to);
          if (typeof checked !== 'string') {
            const reason = (checked as { reason?: string }).reason ?? `expected ${SETTINGS.databaseUrl.accepts}`;
            throw new UsageError(`Invalid --to=${JSON.stringify(maskSecrets(to))}: ${reason}`);
          }
        } else if (config.databaseUrl) {
          to = config.databaseUrl;
        } else {
          const { runningEmbeddedUrl } = await import('../postgres/embedded.ts');
          to = runningEmbeddedUrl(config.dataDir);
          if (!to) {
            throw new UsageError(
              'No PostgreSQL to forward to: give --to URL, set DATABASE_URL, or start the service first (npm start) ' +
                `for its embedded server in DATA_DIR=${config.dataDir}`
            );
          }
        }
        const { runFaultConsole } = await import('../faults/console.ts');
        const { onInterrupt } = await import('../os/signals.ts');
        const stop = new AbortController();
        onInterrupt(
          () => stop.abort(),
          () => process.exit(130)
        );
        return runFaultConsole({ to, port: o.port }, stop.signal);
      })
    );
}
