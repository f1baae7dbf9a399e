// The fleet the hosts demo runs on: N hosts (network namespaces, or loopback addresses), each
// running the service with WORKERS=2, behind HAProxy, over one PostgreSQL with a small
// max_connections, reached directly or through one central PgBouncer.
import { join } from 'node:path';
import pg from 'pg';
import type { Config } from '../../config.ts';
import { prepareDatabase } from '../../db/tables.ts';
import { startServerProcess, type ServerProcess } from '../../harness/server-process.ts';
import { stopProcess, tiedToUs } from '../../os/processes.ts';
import { EmbeddedPostgres } from '../../postgres/embedded.ts';
import { availableTo, readLimits } from '../../postgres/limits.ts';
import { findPgBouncer, PgBouncer } from '../../postgres/pgbouncer.ts';
import { findHaproxy, HaProxy } from '../haproxy.ts';
import type { Network } from '../network.ts';

export const WORKERS = 2;
export const POOL_SIZE = 5;
export const POOL_MAX_OVERFLOW = 10;
/** Room for every host's core connections, not for their overflow (37 for ordinary roles, as the server reports). */
export const MAX_CONNECTIONS = 40;
export const BOUNCER_POOL = 15;
const PORT = 8000;
/** Long enough for HAProxy's check (every 250 ms, two failures) to take a host out. */
export const SHUTDOWN_DELAY = 1.5;

/** Everything the scenarios run on: the hosts, HAProxy, PostgreSQL and the PgBouncer. */
export class Fleet {
  readonly hosts: (ServerProcess | undefined)[] = [];
  readonly dataDir: string;
  readonly postgres: EmbeddedPostgres;
  readonly proxy: HaProxy;
  private bouncer?: PgBouncer;
  private readonly bouncerBin: string;
  /** Each host's settings, beyond the base ones: what the current scenario runs. */
  env: Record<string, string> = {};
  /** The connections PostgreSQL allows ordinary roles, read from it once it runs. */
  available = 0;

  constructor (
    config: Config,
    readonly net: Network
  ) {
    this.dataDir = join(config.dataDir, 'hosts');
    const network = net.mode === 'netns' ? { address: net.dbAddress, cidr: net.cidr } : undefined;
    this.postgres = new EmbeddedPostgres({ dataDir: this.dataDir, maxConnections: MAX_CONNECTIONS, network });
    this.bouncerBin = findPgBouncer(config.pgbouncerBin);
    this.proxy = new HaProxy({
      bin: findHaproxy(),
      dir: join(this.dataDir, 'haproxy'),
      backends: net.hosts.map((h, i) => ({ name: name(i), address: h.address, port: PORT })),
    });
  }

  /** PostgreSQL, as the hosts reach it. */
  get dbUrl (): string {
    return withHost(this.postgres.url, this.net.dbAddress);
  }

  async start (): Promise<void> {
    await this.postgres.start();
    await prepareDatabase(this.postgres.url);
    const client = new pg.Client({ connectionString: this.postgres.url });
    await client.connect();
    try {
      this.available = availableTo(await readLimits(client));
    } finally {
      await client.end();
    }
    await this.proxy.start();
  }

  /** Starts the central PgBouncer; returns its URL as the hosts reach it. */
  async startBouncer (): Promise<string> {
    this.bouncer = new PgBouncer({
      serverUrl: this.postgres.url,
      bin: this.bouncerBin,
      dataDir: this.dataDir,
      poolSize: BOUNCER_POOL,
      maxClients: 1000,
      listen: this.net.dbAddress,
    });
    await this.bouncer.start();
    return withHost(this.bouncer.url, this.net.dbAddress);
  }

  /** Starts host i with the scenario's settings and waits until HAProxy has it in. */
  async startHost (i: number): Promise<void> {
    const env = {
      DATABASE_URL: this.dbUrl,
      WORKERS: String(WORKERS),
      POOL_SIZE: String(POOL_SIZE),
      POOL_MAX_OVERFLOW: String(POOL_MAX_OVERFLOW),
      POOL_TIMEOUT: '20',
      PORT: String(PORT),
      SHUTDOWN_DELAY: String(SHUTDOWN_DELAY),
      LOG_LEVEL: 'warn',
      DATA_DIR: join(this.dataDir, name(i)),
      ...this.env,
    };
    this.hosts[i] = await startServerProcess(
      { ...env, HOST: this.net.hosts[i]!.address },
      {
        // In the host's namespace; it gets SIGTERM should we die.
        launcher: (program, args) => tiedToUs(...this.net.command(i, program, args), 'TERM'),
        name: `the service on ${this.net.hosts[i]!.name}`,
      }
    );
    await this.proxy.until(name(i), 'UP');
  }

  startAll (): Promise<unknown> {
    return Promise.all(this.net.hosts.map((_h, i) => this.startHost(i)));
  }

  async stopHosts (): Promise<void> {
    await Promise.all(
      this.hosts.map(async (h, i) => {
        if (h) await stopProcess(h.proc, 'SIGTERM', 20_000);
        this.hosts[i] = undefined;
      })
    );
  }

  /** The services before what they use. */
  async stop (): Promise<void> {
    await this.stopHosts();
    await this.bouncer?.stop();
    await this.proxy.stop();
    await this.postgres.stop();
    this.net.teardown();
  }
}

/** Host i's name, as HAProxy knows it. */
export const name = (i: number) => `h${i + 1}`;

function withHost (url: string, host: string): string {
  const u = new URL(url);
  u.hostname = host;
  return u.toString();
}
