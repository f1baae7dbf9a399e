// A real PgBouncer (Debian's package) in front of PostgreSQL, in transaction mode: many client
// connections share a few server connections, which is how services go past max_connections.
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { ConfigError } from '../config.ts';
import { freePort } from '../os/net.ts';
import { findProgram, stopProcess, tiedToUs } from '../os/processes.ts';
import { osUser, stagingDir, unreachable } from '../os/user.ts';
import { waitUntilAccepting } from './ready.ts';

export interface PgBouncerOptions {
  /** The PostgreSQL server to pool, as a URL with user and password. */
  serverUrl: string;
  /** The program, from findPgBouncer(). */
  bin: string;
  dataDir: string;
  poolSize: number;
  maxClients: number;
  /** The address to listen on (default 127.0.0.1). */
  listen?: string;
  /** Seconds a client may wait inside PgBouncer for a server connection (POOL_TIMEOUT). */
  waitTimeout?: number;
  /** SQL run on each new server connection (the session guards: `SET ...; SET ...`). */
  connectQuery?: string;
  log?: (msg: string) => void;
  /** Called when PgBouncer exits without being asked to (killed, crashed). */
  onUnexpectedExit?: (why: string) => void;
}

export class PgBouncer {
  private child?: ChildProcess;
  /** Started, and not stopped by us. */
  private up = false;
  private port = 0;
  /** DATA_DIR/pgbouncer, or, when the postgres OS user cannot reach it, a folder it can. */
  dir: string;

  constructor (private readonly options: PgBouncerOptions) {
    this.dir = join(resolve(options.dataDir), 'pgbouncer');
  }

  /** The URL clients use: same user, password and database as the server's, PgBouncer's port. */
  get url (): string {
    const u = new URL(this.options.serverUrl);
    u.hostname = this.options.listen ?? '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  get pid (): number | undefined {
    return this.child?.pid;
  }

  async start (): Promise<void> {
    const owner = osUser();
    if (owner.uid !== undefined && unreachable(this.options.dataDir, owner)) {
      this.dir = join(stagingDir(this.options.dataDir), 'pgbouncer');
    }
    mkdirSync(this.dir, { recursive: true });
    // The same port on a restart: the pools know PgBouncer by its URL.
    this.port = this.port || (await freePort());
    const config = this.writeConfig();
    if (owner.uid !== undefined) {
      for (const f of ['', 'pgbouncer.ini', 'userlist.txt', 'pgbouncer.log']) {
        const path = join(this.dir, f);
        if (f === 'pgbouncer.log') closeSync(openSync(path, 'a'));
        chownSync(path, owner.uid, owner.gid!);
      }
    }
    // PgBouncer dies with us, even when we are killed with SIGKILL. It refuses to run as
    // root, so as root it runs as the postgres OS user.
    const [program, args] = tiedToUs(this.options.bin, [config], 'TERM');
    // Its own process group, as PostgreSQL's: a Ctrl-C in the terminal must not stop it before
    // the requests that still need it have drained.
    const child = spawn(program, args, { stdio: 'ignore', detached: true, ...owner });
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.child !== child) return; // stopped by us
      this.child = undefined;
      // A failed start is the start's error, not an exit to report.
      if (this.up) this.options.onUnexpectedExit?.(`exited with code ${code}, signal ${signal}`);
      this.up = false;
    });
    await waitUntilAccepting(child, this.url, 'PgBouncer', join(this.dir, 'pgbouncer.log'), 15_000);
    const opened = await this.fill();
    this.up = true;
    this.options.log?.(
      `PgBouncer ${this.port} in transaction mode, ${opened} of ${this.options.poolSize} server connections open`
    );
  }

  /**
   * Opens every server connection before we serve, as our pool opens POOL_SIZE: on its own
   * PgBouncer opens them one at a time on demand, or about 3 a second for min_pool_size, so a
   * first burst would wait for them. One open transaction per server connection does it.
   */
  private async fill (timeoutMs = 10_000): Promise<number> {
    const clients = Array.from(
      { length: this.options.poolSize },
      () => new pg.Client({ connectionString: this.url })
    );
    let opened = 0;
    const begin = async (client: pg.Client) => {
      await client.connect();
      await client.query('BEGIN');
      opened++;
    };
    const timeout = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([Promise.allSettled(clients.map(begin)), timeout]);
    await Promise.allSettled(
      clients.map(async (c) => {
        await c.query('COMMIT').catch(() => {});
        await c.end();
      })
    );
    return opened;
  }

  /** SIGINT: PgBouncer's safe shutdown (SIGTERM is immediate in 1.18). */
  async stop (): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await stopProcess(child, 'SIGINT', 10_000);
  }

  kill (): void {
    const child = this.child;
    this.child = undefined;
    child?.kill('SIGKILL');
  }

  private writeConfig (): string {
    const server = new URL(this.options.serverUrl);
    const user = decodeURIComponent(server.username || 'postgres');
    const password = decodeURIComponent(server.password);
    const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
    // The auth file holds the password: it stays in the data folder, readable by its owner only.
    writeFileSync(join(this.dir, 'userlist.txt'), `${quote(user)} ${quote(password)}\n`, { mode: 0o600 });
    const file = join(this.dir, 'pgbouncer.ini');
    writeFileSync(
      file,
      [
        '[databases]',
        `* = host=${server.hostname} port=${server.port || 5432}` +
          (this.options.connectQuery ? ` connect_query='${this.options.connectQuery.replaceAll("'", "''")}'` : ''),
        '',
        '[pgbouncer]',
        `listen_addr = ${this.options.listen ?? '127.0.0.1'}`,
        `listen_port = ${this.port}`,
        'unix_socket_dir =',
        'auth_type = scram-sha-256',
        `auth_file = ${join(this.dir, 'userlist.txt')}`,
        'pool_mode = transaction',
        `default_pool_size = ${this.options.poolSize}`,
        // Keep them open, as our QueuePool keeps POOL_SIZE: PgBouncer opens server connections
        // one at a time, and with SCRAM a cold pool of 15 takes about 0.4 s to fill.
        `min_pool_size = ${this.options.poolSize}`,
        'reserve_pool_size = 0',
        `max_client_conn = ${this.options.maxClients}`,
        // A request waits for our pool, then possibly inside PgBouncer: bound that wait as well.
        ...(this.options.waitTimeout ? [`query_wait_timeout = ${Math.ceil(this.options.waitTimeout)}`] : []),
        // Settings a client may send at connect time that PgBouncer should not refuse.
        'ignore_startup_parameters = extra_float_digits,statement_timeout',
        `logfile = ${join(this.dir, 'pgbouncer.log')}`,
        `pidfile = ${join(this.dir, 'pgbouncer.pid')}`,
        `admin_users = ${user}`,
        '',
      ].join('\n'),
      { mode: 0o600 }
    );
    return file;
  }
}

/** The pgbouncer program to run: PGBOUNCER_BIN, or the Debian package's. Throws a one-line ConfigError. */
export function findPgBouncer (bin?: string): string {
  const found = findProgram(bin ?? 'pgbouncer', ['--version']);
  if (found) return found;
  throw new ConfigError(
    bin
      ? `PGBOUNCER_BIN=${JSON.stringify(bin)} is not a runnable pgbouncer program: install the Debian package ` +
          '"pgbouncer" (apt-get install pgbouncer) or fix the path'
      : 'PGBOUNCER=on needs the pgbouncer program, which is not installed: install the Debian package "pgbouncer" ' +
          '(apt-get install pgbouncer), or set PGBOUNCER_BIN or PGBOUNCER_URL'
  );
}
