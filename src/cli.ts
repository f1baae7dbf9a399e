#!/usr/bin/env node
// The command line: argv -> one command with typed options. Only the argument parser and the
// settings table load before a command is chosen, so --help answers at once; each command
// imports what it needs when it runs.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createRequire } from 'node:module';
import {
  ConfigError,
  isSwitch,
  loadConfig,
  maskSecrets,
  SETTING_KEYS,
  SETTINGS,
  settingHelp,
  type Config,
} from './config.ts';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** Bad usage and bad settings exit 2; a failure while running exits 1. */
class UsageError extends Error {}

type Flags = Partial<Record<keyof Config, string | boolean>>;

/** Every setting as a flag of `command`: --pool-size <value>, and --pgbouncer [on|off] for the switches. */
function withSettings (command: Command, keys: readonly (keyof Config)[] = SETTING_KEYS): Command {
  for (const key of keys) {
    const s = SETTINGS[key];
    command.addOption(new Option(isSwitch(key) ? `--${s.flag} [on|off]` : `--${s.flag} <value>`, settingHelp(key)));
  }
  return command;
}

function intArg (name: string, min: number, max: number) {
  return (raw: string) => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max) { throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`); }
    return n;
  };
}

function numArg (min: number, max: number) {
  return (raw: string) => {
    const n = Number(raw);
    if (!/^\d+(\.\d+)?$/.test(raw) || n < min || n > max) { throw new InvalidArgumentError(`expected a number from ${min} to ${max}`); }
    return n;
  };
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** JSON.parse, or undefined when it is not JSON. */
function parseJson (text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A comma-separated list of distinct integers from min to max, in increasing order: 1,2,4,8. */
function intListArg (min: number, max: number) {
  return (raw: string) => {
    const parts = raw.split(',');
    if (!parts.every((p) => /^\d+$/.test(p) && Number(p) >= min && Number(p) <= max)) { throw new InvalidArgumentError(`expected integers from ${min} to ${max}, separated by commas (1,2,4,8)`); }
    const n = parts.map(Number);
    if (n.some((x, i) => i > 0 && x <= n[i - 1]!)) { throw new InvalidArgumentError('expected increasing sizes, each once (1,2,4,8)'); }
    return n;
  };
}

/** Set by the command that ran: `serve` keeps running after its action returns, every other command exits with it. */
let exitCode: number | undefined;
const RUNS_UNTIL_SIGNAL = -1;
const run =
  <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      exitCode = await fn(...args);
    };

function program (): Command {
  const cli = new Command('async-node-postgres')
    .description('Non-blocking Node.js and PostgreSQL, measured: the service, its load client and the demo.')
    .version(version, '-v, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(oneLine(text)) });

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
      (await import('./server/heap.ts')).tuneHeap();
      const { serve } = await import('./server/serve.ts');
      await serve(loadConfig(flags));
      return RUNS_UNTIL_SIGNAL;
    })
  );

  cli
    .command('client')
    .description('Send N concurrent requests to the sleep routes and print when each came back (npm run client)')
    .argument('[n]', 'requests per route, all at once (default 5)', intArg('N', 1, 100_000))
    .option('--url <url>', 'the service', 'http://127.0.0.1:8000')
    .option('--route <path>', 'a route to load; repeatable (default /sleep/node/ then /sleep/postgres/)', collect)
    .option('--seconds <s>', "sent as ?seconds=S (default: the service's SLEEP_SECONDS)", numArg(0, 60))
    .option('--json', 'print one JSON document with every request instead', false)
    .option('--report <file>', 'write a self-contained HTML timeline of every request')
    .option('--verbose', 'print every response even above 50 requests per route', false)
    .option(
      '--timeout <s>',
      'give up on a request after S seconds (default: never; 60 with --rate)',
      numArg(0.001, 3600)
    )
    .option(
      '--rate <r>',
      'instead of N at once: an open loop, R requests a second whether or not the earlier ones came back; latency counts from when each was meant to leave',
      numArg(0.1, 100_000)
    )
    .option('--duration <s>', 'with --rate: for how long requests arrive (default 10)', numArg(0.1, 3600))
    .option(
      '--connections <n>',
      'with --rate: keep-alive connections it may open; a request due while all are busy waits, and counts as sent late (default 1000)',
      intArg('connections', 1, 100_000)
    )
    .addOption(
      new Option(
        '--arrivals <kind>',
        'with --rate: evenly spaced, or at random as a Poisson process (default constant)'
      ).choices(['constant', 'poisson'])
    )
    .action(
      run(
        async (
          n: number | undefined,
          o: {
            url: string;
            route?: string[];
            seconds?: number;
            json: boolean;
            report?: string;
            verbose: boolean;
            timeout?: number;
            rate?: number;
            duration?: number;
            connections?: number;
            arrivals?: 'constant' | 'poisson';
          }
        ) => {
          if (!/^https?:\/\/[^/]+/.test(o.url)) { throw new UsageError(`Invalid --url=${JSON.stringify(o.url)}: expected http://host:port`); }
          for (const r of o.route ?? []) {
            if (!r.startsWith('/')) { throw new UsageError(`Invalid --route=${JSON.stringify(r)}: expected a path starting with /`); }
          }
          const openOnly =
            o.duration !== undefined
              ? '--duration'
              : o.arrivals !== undefined
                ? '--arrivals'
                : o.connections !== undefined
                  ? '--connections'
                  : undefined;
          if (o.rate === undefined && openOnly) {
            throw new UsageError(
              `${openOnly} goes with --rate (an open loop): add --rate R, or leave it out for a burst of N`
            );
          }
          if (o.rate !== undefined && n !== undefined) {
            throw new UsageError(
              'N and --rate exclude each other: N sends N requests at once, --rate R sends R a second for --duration'
            );
          }
          if (o.rate !== undefined && o.verbose) {
            throw new UsageError(
              '--verbose goes with a burst of N, not with --rate: the open loop prints its summary (--json has every request)'
            );
          }
          const { DEFAULT_ROUTES, INTERRUPT_GRACE_MS, runClient, runOpenLoopClient } =
            await import('./client/client.ts');
          const { onInterrupt } = await import('./os/signals.ts');
          const interrupted = new AbortController();
          onInterrupt(
            () => {
              console.error(
                o.rate === undefined
                  ? `\nInterrupted: no more requests are sent; those in flight get ${INTERRUPT_GRACE_MS / 1000} s, then the summary (Ctrl-C again to quit now).`
                  : '\nInterrupted: no more requests are sent; the summary follows once those in flight are answered (Ctrl-C again to quit now).'
              );
              interrupted.abort();
            },
            () => process.exit(130)
          );
          if (o.rate !== undefined) {
            await runOpenLoopClient({
              url: o.url,
              routes: o.route ?? DEFAULT_ROUTES,
              seconds: o.seconds,
              rate: o.rate,
              duration: o.duration ?? 10,
              arrivals: o.arrivals ?? 'constant',
              json: o.json,
              report: o.report,
              timeoutMs: (o.timeout ?? 60) * 1000,
              connections: o.connections,
              interrupted: interrupted.signal,
            });
            return interrupted.signal.aborted ? 130 : 0;
          }
          await runClient({
            n: n ?? 5,
            url: o.url,
            routes: o.route ?? DEFAULT_ROUTES,
            seconds: o.seconds,
            json: o.json,
            report: o.report,
            verbose: o.verbose,
            timeoutMs: o.timeout === undefined ? undefined : o.timeout * 1000,
            interrupted: interrupted.signal,
          });
          return interrupted.signal.aborted ? 130 : 0;
        }
      )
    );

  withSettings(cli.command('demo'), ['databaseUrl', 'dataDir'])
    .description(
      "Reproduce the original's results for real, each scenario against a service started in its mode, with verdicts (npm run demo)"
    )
    .option('--seconds <s>', 'the sleep (default 5, as in the original)', numArg(0.1, 60))
    .option('--quick', 'sleeps of 1 s (about 40 s in all)', false)
    .option(
      '--scale',
      'add scenario 6, beyond the ceiling: 4 workers against max_connections 20, through PgBouncer',
      false
    )
    .option(
      '--claims',
      "add scenarios 7 and 8, the original's claims: memory per connection, and the NullPool's cost",
      false
    )
    .option(
      '--blocking',
      'add what blocks in Node.js: 5 concurrent requests to each /block/ route and its /offload/ twin, and what the block detector named (about 30 s)',
      false
    )
    .option(
      '--steady-rate',
      'add past the ceiling at a steady rate: 1 s database sleeps arriving at 10/s, then 20/s, against 5 + 10 (an open loop; about 30 s, 20 s with --quick)',
      false
    )
    .option(
      '--faults',
      'add when the network or the database misbehaves, under steady load: a partition of 20 s through a fault proxy, PostgreSQL restarted, every backend terminated, connections given back in a bad state, connections leaked, 50 ms of latency (about 2 minutes; 1 with --quick)',
      false
    )
    .option('--all', 'every scenario: the five, --scale, --steady-rate, --blocking, --faults and --claims', false)
    .option(
      '--hosts [n]',
      'instead: N hosts (default 3) x 2 workers behind HAProxy, one PostgreSQL, directly and through one PgBouncer, a rolling restart (root: network namespaces)',
      intArg('hosts', 2, 8)
    )
    .option(
      '--replicas [n]',
      'instead: the embedded primary and N streaming standbys (default 2): reads over every server, writes on the primary, read-your-writes, a standby killed under load (about 40 s)',
      intArg('replicas', 1, 4)
    )
    .option('--report <file>', 'write every timeline into one HTML file')
    .action(
      run(
        async (
          o: Flags & {
            seconds?: number;
            quick: boolean;
            scale: boolean;
            steadyRate: boolean;
            blocking: boolean;
            faults: boolean;
            claims: boolean;
            all: boolean;
            hosts?: number | true;
            replicas?: number | true;
            report?: string;
          }
        ) => {
          if (o.quick && o.seconds !== undefined) throw new UsageError('--quick and --seconds exclude each other');
          for (const [flag, given] of [
            ['--hosts', o.hosts],
            ['--replicas', o.replicas],
          ] as const) {
            if (
              given !== undefined &&
              (o.scale ||
                o.steadyRate ||
                o.blocking ||
                o.faults ||
                o.claims ||
                o.all ||
                o.report ||
                (flag === '--hosts' ? o.replicas : o.hosts) !== undefined)
            ) {
              throw new UsageError(
                `${flag} runs on its own: without --scale, --steady-rate, --blocking, --faults, --claims, --all, --report or ${flag === '--hosts' ? '--replicas' : '--hosts'}`
              );
            }
          }
          const { runDemo } = await import('./demo/demo.ts');
          const config = loadConfig({ databaseUrl: o.databaseUrl, dataDir: o.dataDir });
          if (o.replicas !== undefined && config.databaseUrl) {
            throw new UsageError(
              '--replicas starts standbys of the embedded PostgreSQL: run it without DATABASE_URL (--database-url)'
            );
          }
          const hosts = o.hosts === true ? 3 : o.hosts;
          const replicas = o.replicas === true ? 2 : o.replicas;
          return runDemo(config, {
            seconds: o.quick ? 1 : (o.seconds ?? 5),
            n: 5,
            report: o.report,
            scale: o.scale || o.all,
            steadyRate: o.steadyRate || o.all,
            blocking: o.blocking || o.all,
            faults: o.faults || o.all,
            claims: o.claims || o.all,
            quick: o.quick,
            hosts,
            replicas,
          });
        }
      )
    );

  withSettings(cli.command('sizing'), ['databaseUrl', 'dataDir', 'pgMaxConnections'])
    .description(
      'How big should the pool be? A sweep of pool sizes for a workload that waits and one that computes in PostgreSQL, with a recommendation (npm run sizing)'
    )
    .option(
      '--sizes <list>',
      'pool sizes to try (default 1,2,4,8,16,32,64; --quick: 1,2,4,8,16)',
      intListArg(1, 1000)
    )
    .option('--concurrency <n>', 'concurrent clients', intArg('concurrency', 1, 10_000), 100)
    .option(
      '--work-ms <ms>',
      'what one work query alone should take, in ms (calibrated at start)',
      intArg('work-ms', 1, 2000),
      20
    )
    .option('--sleep-ms <ms>', "the wait workload's pg_sleep, in ms", intArg('sleep-ms', 1, 10_000), 100)
    .option('--seconds <s>', 'measured time per point (default 8; --quick: 2)', numArg(0.5, 600))
    .option(
      '--workers <n>',
      'worker processes per host, for the connection budget (default: WORKERS)',
      intArg('workers', 1, 256)
    )
    .option('--hosts <n>', 'hosts sharing the database, for the connection budget', intArg('hosts', 1, 1000), 1)
    .option('--quick', 'fewer sizes and shorter points: under 90 s', false)
    .option(
      '--query <sql>',
      'instead of the two built-in workloads: your own query, run by the lab through each pool size (read-only unless --allow-writes)'
    )
    .option('--params <json>', 'with --query: its parameters, a JSON array ($1, $2, ...)')
    .option(
      '--rate <r>',
      'with --query: queries a second (an open loop) instead of --concurrency clients',
      numArg(0.1, 100_000)
    )
    .option(
      '--p99 <ms>',
      'with --query: recommend the smallest pool whose p99 is within this many ms (default: within 15 % of the best throughput)',
      numArg(0.1, 600_000)
    )
    .option(
      '--allow-writes',
      'with --query: run a statement that writes, each time in a transaction that is rolled back',
      false
    )
    .option('--report <file>', 'where to write the HTML report (default reports/sizing-<time>.html)')
    .action(
      run(
        async (
          o: Flags & {
            sizes?: number[];
            concurrency: number;
            workMs: number;
            sleepMs: number;
            seconds?: number;
            workers?: number;
            hosts: number;
            quick: boolean;
            report?: string;
            query?: string;
            params?: string;
            rate?: number;
            p99?: number;
            allowWrites: boolean;
          },
          command: Command
        ) => {
          const { FULL, QUICK, runSizing } = await import('./sizing/sizing.ts');
          const config = loadConfig({
            databaseUrl: o.databaseUrl,
            dataDir: o.dataDir,
            pgMaxConnections: o.pgMaxConnections,
          });
          const base = o.quick ? QUICK : FULL;
          // What both labs take alike: the sweep, its timing, the budget's fleet, the report.
          const sweep = {
            sizes: o.sizes ?? base.sizes,
            seconds: o.seconds ?? base.seconds,
            warmupSeconds: base.warmupSeconds,
            workers: o.workers ?? config.workers,
            hosts: o.hosts,
            report: o.report ?? `reports/sizing-${new Date().toISOString().slice(0, 19).replaceAll(':', '-')}.html`,
          };
          const queryOnly =
            o.params !== undefined
              ? '--params'
              : o.rate !== undefined
                ? '--rate'
                : o.p99 !== undefined
                  ? '--p99'
                  : o.allowWrites
                    ? '--allow-writes'
                    : undefined;
          if (o.query === undefined && queryOnly) { throw new UsageError(`${queryOnly} goes with --query: add --query 'SQL'`); }
          if (o.query !== undefined) {
            if (!o.query.trim()) throw new UsageError('Invalid --query="": expected one SQL statement');
            const params = o.params === undefined ? [] : parseJson(o.params);
            if (!Array.isArray(params)) {
              throw new UsageError(
                `Invalid --params=${JSON.stringify(o.params)}: expected a JSON array, such as '[42, "x"]'`
              );
            }
            if (o.rate !== undefined && command.getOptionValueSource('concurrency') === 'cli') {
              throw new UsageError(
                '--rate and --concurrency exclude each other: an open loop at R queries a second, or C clients one query after another'
              );
            }
            const { QueryRefused, runQuerySizing } = await import('./sizing/query.ts');
            try {
              await runQuerySizing(config, {
                ...sweep,
                query: o.query.replace(/;\s*$/, ''),
                params,
                concurrency: o.rate === undefined ? o.concurrency : undefined,
                rate: o.rate,
                p99: o.p99,
                allowWrites: o.allowWrites,
              });
            } catch (err) {
              if (err instanceof QueryRefused) throw new UsageError(err.message);
              throw err;
            }
            return 0;
          }
          await runSizing(config, { ...sweep, concurrency: o.concurrency, workMs: o.workMs, sleepMs: o.sleepMs });
          return 0;
        }
      )
    );

  withSettings(cli.command('faults'), ['databaseUrl', 'dataDir'])
    .description(
      'A TCP proxy in front of PostgreSQL that makes network faults on command (standard input: drop, refuse, reset, delay <ms>, heal, status, quit): point the service at it'
    )
    .option(
      '--to <url>',
      'PostgreSQL to forward to (default: DATABASE_URL, or the embedded server a running service started)'
    )
    .option('--port <n>', 'port to listen on, on 127.0.0.1 (default: any free port)', intArg('port', 0, 65535), 0)
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
          const { runningEmbeddedUrl } = await import('./postgres/embedded.ts');
          to = runningEmbeddedUrl(config.dataDir);
          if (!to) {
            throw new UsageError(
              `No PostgreSQL to forward to: give --to URL, set DATABASE_URL, or start the service first (npm start) for its embedded server in DATA_DIR=${config.dataDir}`
            );
          }
        }
        const { runFaultConsole } = await import('./faults/console.ts');
        const { onInterrupt } = await import('./os/signals.ts');
        const stop = new AbortController();
        onInterrupt(
          () => stop.abort(),
          () => process.exit(130)
        );
        return runFaultConsole({ to, port: o.port }, stop.signal);
      })
    );

  const db = cli.command('db').description("The database: migrate and seed, or print the embedded server's URL");
  withSettings(db.command('init'), ['databaseUrl', 'dataDir', 'pgMaxConnections'])
    .description('Run the migrations and seed 50 todos when the table is empty (running it twice leaves 50 rows)')
    .option('--reset', 'drop the schema first and recreate it', false)
    .action(
      run(async (o: Flags & { reset: boolean }) => {
        const { initDatabase } = await import('./db/init.ts');
        await initDatabase(loadConfig(o), o.reset);
        return 0;
      })
    );
  withSettings(db.command('url'), ['databaseUrl', 'dataDir'])
    .description(
      'Print the connection string of the embedded PostgreSQL a running service started, for psql "$(npm run -s cli -- db url)"'
    )
    .action(
      run(async (o: Flags) => {
        const config = loadConfig(o);
        if (config.databaseUrl) {
          console.log(config.databaseUrl);
          return 0;
        }
        const { runningEmbeddedUrl } = await import('./postgres/embedded.ts');
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
