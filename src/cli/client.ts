// `client`: the load client (npm run client): a burst, or an open loop at a rate.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseSweep, type SweepSpec } from '../client/sweep.ts';
import { UsageError, intArg, numArg, collect, firstGiven, run } from './args.ts';

/** FROM:TO:STEP, as commander reports a bad argument: the flag, then what it expects. */
function sweepArg (raw: string): SweepSpec {
  const spec = parseSweep(raw);
  if (typeof spec === 'string') throw new InvalidArgumentError(spec);
  return spec;
}

export function clientCommand (cli: Command): void {
  cli
    .command('client')
    .description('Send N concurrent requests to the sleep routes and print when each came back (npm run client)')
    .argument('[n]', 'requests per route, all at once (default 5)', intArg(1, 100_000))
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
      'instead of N at once: an open loop, R requests a second whether or not the earlier ones came back; latency ' +
        'counts from when each was meant to leave',
      numArg(0.1, 100_000)
    )
    .option(
      '--sweep-rate <from:to:step>',
      'instead of N at once: the open loop at each rate from FROM to TO by STEP, one after another, for --duration ' +
        "each; a table of latency against offered rate, with the knee the service's pool predicts (one --route, " +
        'default /sleep/postgres/)',
      sweepArg
    )
    .option(
      '--duration <s>',
      'with --rate: for how long requests arrive (default 10); with --sweep-rate: at each rate (default 5)',
      numArg(0.1, 3600)
    )
    .option(
      '--pause <s>',
      'with --sweep-rate: the pause between rates, once all answers are in (default 2)',
      numArg(0, 600)
    )
    .option(
      '--connections <n>',
      'with --rate: keep-alive connections it may open; a request due while all are busy waits, and counts as sent ' +
        'late (default 1000)',
      intArg(1, 100_000)
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
            sweepRate?: SweepSpec;
            duration?: number;
            pause?: number;
            connections?: number;
            arrivals?: 'constant' | 'poisson';
          }
        ) => {
          if (!/^https?:\/\/[^/]+/.test(o.url)) {
            throw new UsageError(`Invalid --url=${JSON.stringify(o.url)}: expected http://host:port`);
          }
          for (const r of o.route ?? []) {
            if (!r.startsWith('/')) {
              throw new UsageError(`Invalid --route=${JSON.stringify(r)}: expected a path starting with /`);
            }
          }
          const sweeping = o.sweepRate !== undefined;
          const openOnly = firstGiven(o, ['duration', 'arrivals', 'connections']);
          if (o.rate === undefined && !sweeping && openOnly) {
            throw new UsageError(
              `${openOnly} goes with --rate or --sweep-rate (an open loop): add one, or leave it out for a burst of N`
            );
          }
          if (o.pause !== undefined && !sweeping) {
            throw new UsageError('--pause goes with --sweep-rate: the pause between its rates');
          }
          if (sweeping && (o.rate !== undefined || n !== undefined)) {
            throw new UsageError(
              `--sweep-rate excludes ${o.rate !== undefined ? '--rate' : 'N'}: it runs the open loop at each of ` +
                'its rates in turn'
            );
          }
          if (sweeping && (o.route?.length ?? 0) > 1) {
            throw new UsageError('--sweep-rate takes one --route: the route whose latency it draws against the rate');
          }
          if (sweeping && o.verbose) {
            throw new UsageError('--verbose goes with a burst of N, not with --sweep-rate (--json has every figure)');
          }
          if (o.rate !== undefined && n !== undefined) {
            throw new UsageError(
              'N and --rate exclude each other: N sends N requests at once, --rate R sends R a second for --duration'
            );
          }
          if (o.rate !== undefined && o.verbose) {
            throw new UsageError(
              '--verbose goes with a burst of N, not with --rate: the open loop prints its summary (--json has every ' +
                'request)'
            );
          }
          const { DEFAULT_ROUTES, INTERRUPT_GRACE_MS, runClient, runOpenLoopClient } =
            await import('../client/client.ts');
          const { onInterrupt } = await import('../os/signals.ts');
          const interrupted = new AbortController();
          onInterrupt(
            () => {
              console.error(
                o.rate === undefined && o.sweepRate === undefined
                  ? `\nInterrupted: no more requests are sent; those in flight get ${INTERRUPT_GRACE_MS / 1000} s, ` +
                      'then the summary (Ctrl-C again to quit now).'
                  : '\nInterrupted: no more requests are sent; the summary follows once those in flight are answered ' +
                      '(Ctrl-C again to quit now).'
              );
              interrupted.abort();
            },
            () => process.exit(130)
          );
          // What an open loop takes, at one rate or at each rate of a sweep.
          const openLoop = {
            url: o.url,
            seconds: o.seconds,
            arrivals: o.arrivals ?? 'constant',
            json: o.json,
            report: o.report,
            timeoutMs: (o.timeout ?? 60) * 1000,
            connections: o.connections,
            interrupted: interrupted.signal,
          } as const;
          if (o.sweepRate !== undefined) {
            const { runSweepClient } = await import('../client/rate-sweep.ts');
            await runSweepClient({
              ...openLoop,
              route: o.route?.[0] ?? '/sleep/postgres/',
              spec: o.sweepRate,
              duration: o.duration ?? 5,
              pauseMs: (o.pause ?? 2) * 1000,
            });
            return interrupted.signal.aborted ? 130 : 0;
          }
          if (o.rate !== undefined) {
            await runOpenLoopClient({
              ...openLoop,
              routes: o.route ?? DEFAULT_ROUTES,
              rate: o.rate,
              duration: o.duration ?? 10,
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
}
