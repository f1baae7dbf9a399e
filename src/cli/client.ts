// `client`: the load client (npm run client): a burst, or an open loop at a rate.
import { Option, type Command } from 'commander';
import { UsageError, intArg, numArg, collect, firstGiven, run } from './args.ts';

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
    .option('--duration <s>', 'with --rate: for how long requests arrive (default 10)', numArg(0.1, 3600))
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
            duration?: number;
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
          const openOnly = firstGiven(o, ['duration', 'arrivals', 'connections']);
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
                o.rate === undefined
                  ? `\nInterrupted: no more requests are sent; those in flight get ${INTERRUPT_GRACE_MS / 1000} s, ` +
                      'then the summary (Ctrl-C again to quit now).'
                  : '\nInterrupted: no more requests are sent; the summary follows once those in flight are answered ' +
                      '(Ctrl-C again to quit now).'
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
}
