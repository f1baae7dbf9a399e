// `sizing`: how big should the pool be? The sweep, on our workloads or a user's query (npm run sizing).
import { type Command } from 'commander';
import { loadConfig } from '../config.ts';
import {
  UsageError,
  type Flags,
  withSettings,
  intArg,
  numArg,
  parseJson,
  intListArg,
  firstGiven,
  run,
} from './args.ts';

export function sizingCommand (cli: Command): void {
  withSettings(cli.command('sizing'), ['databaseUrl', 'dataDir', 'pgMaxConnections'])
    .description(
      'How big should the pool be? A sweep of pool sizes for a workload that waits and one that computes in ' +
        'PostgreSQL, with a recommendation (npm run sizing)'
    )
    .option(
      '--sizes <list>',
      'pool sizes to try (default 1,2,4,8,16,32,64; --quick: 1,2,4,8,16)',
      intListArg(1, 1000)
    )
    .option('--concurrency <n>', 'concurrent clients', intArg(1, 10_000), 100)
    .option(
      '--work-ms <ms>',
      'what one work query alone should take, in ms (calibrated at start)',
      intArg(1, 2000),
      20
    )
    .option('--sleep-ms <ms>', "the wait workload's pg_sleep, in ms", intArg(1, 10_000), 100)
    .option('--seconds <s>', 'measured time per point (default 8; --quick: 2)', numArg(0.5, 600))
    .option(
      '--workers <n>',
      'worker processes per host, for the connection budget (default: WORKERS)',
      intArg(1, 256)
    )
    .option('--hosts <n>', 'hosts sharing the database, for the connection budget', intArg(1, 1000), 1)
    .option('--quick', 'fewer sizes and shorter points: under 90 s', false)
    .option(
      '--query <sql>',
      'instead of the two built-in workloads: your own query, run by the lab through each pool size (read-only ' +
        'unless --allow-writes)'
    )
    .option('--params <json>', 'with --query: its parameters, a JSON array ($1, $2, ...)')
    .option(
      '--rate <r>',
      'with --query: queries a second (an open loop) instead of --concurrency clients',
      numArg(0.1, 100_000)
    )
    .option(
      '--p99 <ms>',
      'with --query: recommend the smallest pool whose p99 is within this many ms (default: within 15 % of the best ' +
        'throughput)',
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
          const { FULL, QUICK, runSizing } = await import('../sizing/sizing.ts');
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
          const queryOnly = firstGiven(o, ['params', 'rate', 'p99', 'allowWrites']);
          if (o.query === undefined && queryOnly) {
            throw new UsageError(`${queryOnly} goes with --query: add --query 'SQL'`);
          }
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
                '--rate and --concurrency exclude each other: an open loop at R queries a second, or C clients one ' +
                  'query after another'
              );
            }
            const { QueryRefused, runQuerySizing } = await import('../sizing/query.ts');
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
}
