// A real PgBouncer (Debian's package) in front of PostgreSQL, in transaction mode: many client
// connections share a few server connections, which is how services go past max_connections.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from '../net.ts';
import { stopProcess } from '../server-process.ts';
import { osUser } from './embedded.ts';
import { waitUntilAccepting } from './ready.ts';

export interface PgBouncerOptions {
  /** The PostgreSQL server to pool, as a URL with user and password. */
  serverUrl: string;
  dataDir: string;
  poolSize: number;
  maxClients: number;
  log?: (msg: string) => void;
}

export class PgBouncerMissingError extends Error {
  constructor() {
    super('PGBOUNCER=on needs the pgbouncer program: install the Debian package "pgbouncer" (apt-get install pgbouncer), or set PGBOUNCER_URL');
  }
}

export class PgBouncer {
  private child?: ChildProcess;
  private port = 0;
  readonly dir: string;

  constructor(private readonly options: PgBouncerOptions) {
    this.dir = join(resolve(options.dataDir), 'pgbouncer');
  }

  /** The URL clients use: same user, password and database as the server's, PgBouncer's port. */
  get url(): string {
    const u = new URL(this.options.serverUrl);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const bin = findPgBouncer();
    const owner = osUser();
    mkdirSync(this.dir, { recursive: true });
    this.port = await freePort();
    const config = this.writeConfig();
    if (owner.uid !== undefined) {
      for (const f of ['', 'pgbouncer.ini', 'userlist.txt', 'pgbouncer.log']) {
        const path = join(this.dir, f);
        if (f === 'pgbouncer.log') closeSync(openSync(path, 'a'));
        chownSync(path, owner.uid, owner.gid!);
      }
    }
    // setpriv --pdeathsig: PgBouncer dies with us, even when we are killed with SIGKILL.
    // PgBouncer refuses to run as root, so as root it runs as the postgres OS user.
    const child = spawn('setpriv', ['--pdeathsig', 'TERM', '--', bin, config], { stdio: 'ignore', ...owner });
    this.child = child;
    await waitUntilAccepting(child, this.url, 'PgBouncer', join(this.dir, 'pgbouncer.log'), 15_000);
    this.options.log?.(`PgBouncer ${this.port} in transaction mode, ${this.options.poolSize} server connections`);
  }

  /** SIGINT: PgBouncer's safe shutdown (SIGTERM is immediate in 1.18). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await stopProcess(child, 'SIGINT', 10_000);
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }

  private writeConfig(): string {
    const server = new URL(this.options.serverUrl);
    const user = decodeURIComponent(server.username || 'postgres');
    const password = decodeURIComponent(server.password);
    const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
    // The auth file holds the password: it stays in the data folder, readable by its owner only.
    writeFileSync(join(this.dir, 'userlist.txt'), `${quote(user)} ${quote(password)}\n`, { mode: 0o600 });
    const file = join(this.dir, 'pgbouncer.ini');
    writeFileSync(file, [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${this.port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${join(this.dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${this.options.poolSize}`,
      'reserve_pool_size = 0',
      `max_client_conn = ${this.options.maxClients}`,
      // Settings a client may send at connect time that PgBouncer should not refuse.
      'ignore_startup_parameters = extra_float_digits,statement_timeout',
      `logfile = ${join(this.dir, 'pgbouncer.log')}`,
      `pidfile = ${join(this.dir, 'pgbouncer.pid')}`,
      `admin_users = ${user}`,
      '',
    ].join('\n'), { mode: 0o600 });
    return file;
  }
}

function findPgBouncer(): string {
  for (const candidate of ['pgbouncer', '/usr/sbin/pgbouncer']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next
    }
  }
  throw new PgBouncerMissingError();
}
