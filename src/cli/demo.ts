// `demo`: the original's scenarios and the labs beyond them, run for real, with verdicts (npm run demo).
import { type Command } from 'commander';
import { loadConfig } from '../config.ts';
import { UsageError, type Flags, withSettings, intArg, numArg, run } from './args.ts';

export function demoCommand (cli: Command): void {
  withSettings(cli.command('demo'), ['databaseUrl', 'dataDir'])
    .description(
      "Reproduce the original's results for real, each scenario against a service started in its mode, with verdicts " +
        '(npm run demo)'
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
      'add what blocks in Node.js: 5 concurrent requests to each /block/ route and its /offload/ twin, and what the ' +
        'block detector named (about 30 s)',
      false
    )
    .option(
      '--steady-rate',
      'add past the ceiling at a steady rate: 1 s database sleeps arriving at 10/s, then 20/s, against 5 + 10 (an ' +
        'open loop), then at 5, 10, 13, 15, 17 and 20/s, across the knee (about 75 s, 55 with --quick)',
      false
    )
    .option(
      '--faults',
      'add when the network or the database misbehaves, under steady load: a partition of 20 s through a fault ' +
        'proxy, PostgreSQL restarted, every backend terminated, connections given back in a bad state, connections ' +
        'leaked, 50 ms of latency (about 2 minutes; 1 with --quick)',
      false
    )
    .option('--all', 'every scenario: the five, --scale, --steady-rate, --blocking, --faults and --claims', false)
    .option(
      '--hosts [n]',
      'instead: N hosts (default 3) x 2 workers behind HAProxy, one PostgreSQL, directly and through one PgBouncer, ' +
        'a rolling restart (root: network namespaces)',
      intArg(2, 8)
    )
    .option(
      '--replicas [n]',
      'instead: the embedded primary and N streaming standbys (default 2): reads over every server, writes on the ' +
        'primary, read-your-writes, a standby killed under load (about 40 s)',
      intArg(1, 4)
    )
    .option(
      '--failover',
      "instead: a Patroni cluster of 3 members, etcd and HAProxy under the service; the leader's PostgreSQL, then " +
        'its whole member, killed under load, in synchronous then asynchronous mode (about 70 s; needs ' +
        'patroni, etcd, haproxy and PostgreSQL 15)',
      false
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
            failover: boolean;
            report?: string;
          }
        ) => {
          if (o.quick && o.seconds !== undefined) throw new UsageError('--quick and --seconds exclude each other');
          const alone = [
            ['--hosts', o.hosts !== undefined],
            ['--replicas', o.replicas !== undefined],
            ['--failover', o.failover],
          ] as const;
          const others = [o.scale, o.steadyRate, o.blocking, o.faults, o.claims, o.all, o.report];
          for (const [flag, given] of alone) {
            if (given && (others.some(Boolean) || alone.some(([f, g]) => f !== flag && g))) {
              const rest = alone.map(([f]) => f).filter((f) => f !== flag);
              throw new UsageError(
                `${flag} runs on its own: without --scale, --steady-rate, --blocking, --faults, --claims, --all, ` +
                  `--report, ${rest.join(' or ')}`
              );
            }
          }
          const { runDemo } = await import('../demo/demo.ts');
          const config = loadConfig({ databaseUrl: o.databaseUrl, dataDir: o.dataDir });
          if (o.replicas !== undefined && config.databaseUrl) {
            throw new UsageError(
              '--replicas starts standbys of the embedded PostgreSQL: run it without DATABASE_URL (--database-url)'
            );
          }
          if (o.failover && config.databaseUrl) {
            throw new UsageError(
              '--failover starts a Patroni cluster of its own: run it without DATABASE_URL (--database-url)'
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
            failover: o.failover,
          });
        }
      )
    );
}
