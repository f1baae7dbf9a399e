// A PostgreSQL cluster under Patroni (Debian's patroni and postgresql packages), with one etcd for
// its leader key: N members on 127.0.0.1, each a Patroni process that runs its PostgreSQL, elects
// a leader, and promotes a replica when the leader dies; and HAProxy in front, with one port for
// the leader and one for the replicas, routed by Patroni's own checks. As root the members run as
// the postgres OS user. Everything stops with us: HAProxy, the members by SIGTERM (Patroni stops
// its PostgreSQL), etcd after them; a PostgreSQL left by a member that was killed is stopped too.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ConfigError } from '../config.ts';
import { HaProxyProcess, haproxyProgram } from '../os/haproxy.ts';
import { freePort } from '../os/net.ts';
import { alive, findProgram, stopProcess, tiedToUs } from '../os/processes.ts';
import { osUser, stagingDir, unreachable, type Owner } from '../os/user.ts';
import { Etcd } from './etcd.ts';
import { logTail } from './ready.ts';

/** The programs a cluster needs; findPatroni() finds them. */
export interface PatroniPrograms {
  patroni: string;
  etcd: string;
  haproxy: string;
  /** PostgreSQL's bin folder, with the tools Patroni runs (pg_rewind, pg_basebackup, ...). */
  binDir: string;
}

export interface PatroniOptions {
  /** Holds etcd/ and a folder per member (m1, m2, ...): its data, its configuration and its log. */
  dataDir: string;
  /** 3 unless given. */
  members?: number;
  /**
   * Patroni's synchronous_mode: a commit returns once a standby has it, and only such a standby may be promoted,
   * so no acknowledged write is lost. Off: asynchronous, a failover may lose up to maximum_lag_on_failover.
   */
  synchronous?: boolean;
  /** The leader key's life in seconds (10 unless given). Patroni's rule: loopWait + 2 x retryTimeout <= ttl. */
  ttl?: number;
  /** Seconds between Patroni's checks (1 unless given). */
  loopWait?: number;
  /** Seconds Patroni retries etcd and PostgreSQL before it gives up the lead (4 unless given). */
  retryTimeout?: number;
  maxConnections?: number;
  log?: (msg: string) => void;
}

/** Patroni's GET /cluster, the fields used here. */
export interface PatroniView {
  members: { name: string; role: 'leader' | 'sync_standby' | 'replica' | string; state: string; timeline?: number }[];
}

export interface Member {
  name: string;
  pgPort: number;
  restPort: number;
  dir: string;
}

/** PostgreSQL's tools Patroni runs: the embedded binaries lack the last four. */
const TOOLS = ['postgres', 'pg_ctl', 'initdb', 'pg_rewind', 'pg_basebackup', 'pg_controldata', 'pg_isready'];
const INSTALL = 'apt-get install patroni etcd-server etcd-client postgresql-15 haproxy';

/** The programs, or a one-line ConfigError saying what to install. */
export function findPatroni (): PatroniPrograms {
  const patroni = findProgram('patroni', ['--version']);
  const etcd = findProgram('etcd', ['--version']);
  const haproxy = haproxyProgram();
  const binDir = postgresBinDir();
  const missing = [
    !patroni && 'patroni',
    !etcd && 'etcd',
    !haproxy && 'haproxy',
    !binDir && "PostgreSQL's server tools",
  ].filter(Boolean);
  if (missing.length) throw new ConfigError(`a Patroni cluster needs ${missing.join(', ')}: ${INSTALL}`);
  return { patroni: patroni!, etcd: etcd!, haproxy: haproxy!, binDir: binDir! };
}

/** Debian's newest /usr/lib/postgresql/<version>/bin that has every tool. */
function postgresBinDir (): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  return versions
    .map((v) => join(root, v, 'bin'))
    .find((dir) => TOOLS.every((tool) => existsSync(join(dir, tool))));
}

export class PatroniCluster {
  readonly members: Member[] = [];
  readonly scope = 'anp';
  private readonly programs: PatroniPrograms;
  private readonly owner: Owner;
  private readonly root: string;
  private readonly etcd: Etcd;
  private readonly router: HaProxyProcess;
  private ports = { leader: 0, replicas: 0 };
  private readonly processes = new Map<string, ChildProcess>();
  private readonly password = randomBytes(12).toString('hex');
  private readonly replicationPassword = randomBytes(12).toString('hex');
  private readonly log: (msg: string) => void;

  constructor (
    private readonly options: PatroniOptions,
    programs?: PatroniPrograms
  ) {
    this.programs = programs ?? findPatroni();
    this.owner = osUser();
    // As root the members run as the postgres OS user, which must reach their folders.
    const root = join(resolve(options.dataDir), 'patroni');
    this.root = this.owner.uid !== undefined && unreachable(options.dataDir, this.owner)
      ? join(stagingDir(options.dataDir), 'patroni')
      : root;
    this.etcd = new Etcd(this.programs.etcd, join(this.root, 'etcd'));
    this.router = new HaProxyProcess(this.programs.haproxy, join(this.root, 'haproxy'));
    this.log = options.log ?? (() => {});
  }

  /** A superuser's URL for `member`'s PostgreSQL. */
  url (member: Member, database = 'postgres'): string {
    return this.urlAt(member.pgPort, database);
  }

  /** Whichever member leads, through HAProxy: a service's DATABASE_URL. */
  leaderUrl (database = 'postgres'): string {
    return this.urlAt(this.ports.leader, database);
  }

  /** The replicas, taken in turn, through HAProxy: a service's DATABASE_REPLICA_URLS. */
  replicasUrl (database = 'postgres'): string {
    return this.urlAt(this.ports.replicas, database);
  }

  /** Waits until HAProxy routes `role`'s port to `member` (its check passed), or no longer does. */
  async untilRouted (role: 'leader' | 'replicas', member: Member, routed = true, timeoutMs = 10_000): Promise<number> {
    return this.router.until(role, member.name, routed ? 'UP' : 'DOWN', timeoutMs);
  }

  private urlAt (port: number, database: string): string {
    return `postgresql://postgres:${this.password}@127.0.0.1:${port}/${database}`;
  }

  /** Starts etcd and every member; resolves once a leader leads and every other member replicates. */
  async start (timeoutMs = 120_000): Promise<void> {
    // A cluster of its own each time: a member's old data would not belong to the new etcd's cluster.
    rmSync(this.root, { recursive: true, force: true });
    mkdirSync(this.root, { recursive: true, mode: 0o755 });
    await this.etcd.start();
    for (let i = 1; i <= (this.options.members ?? 3); i++) {
      const name = `m${i}`;
      this.members.push({ name, pgPort: await freePort(), restPort: await freePort(), dir: join(this.root, name) });
    }
    for (const m of this.members) this.writeConfig(m);
    for (const m of this.members) this.startMember(m);
    await this.untilWhole(timeoutMs);
    this.ports = { leader: await freePort(), replicas: await freePort() };
    await this.router.start(this.routerConfig());
    const leader = await this.leader();
    for (const m of this.members) await this.untilRouted(m === leader ? 'leader' : 'replicas', m);
    this.log(`Patroni cluster: ${(await this.leader())?.name} leads ${this.members.length} members`);
  }

  /** Resolves once one member leads and every other member runs as its replica. */
  async untilWhole (timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const roles = await Promise.all(this.members.map((m) => this.role(m)));
      if (roles.filter((r) => r === 'primary').length === 1 && roles.every((r) => r === 'primary' || r === 'replica')) {
        return;
      }
      if (Date.now() > deadline) {
        const state = this.members.map((m, i) => `${m.name} ${roles[i] ?? 'down'}: ${logTail(this.logFile(m))}`);
        throw new Error(`the Patroni cluster was not whole within ${timeoutMs / 1000} s: ${state.join('; ')}`);
      }
      await delay(200);
    }
  }

  /** The member that leads now, by Patroni's own check (`OPTIONS /primary` answers 200 on the leader only). */
  async leader (): Promise<Member | undefined> {
    const roles = await Promise.all(this.members.map((m) => this.role(m)));
    return this.members.find((_, i) => roles[i] === 'primary');
  }

  /** 'primary', 'replica' (running and replicating), or undefined when it does not answer as either. */
  async role (member: Member): Promise<'primary' | 'replica' | undefined> {
    const check = async (path: string) =>
      (
        await fetch(`http://127.0.0.1:${member.restPort}${path}`, {
          method: 'OPTIONS',
          signal: AbortSignal.timeout(1000),
        }).catch(() => undefined)
      )?.status === 200;
    if (await check('/primary')) return 'primary';
    if (await check('/replica')) return 'replica';
    return undefined;
  }

  /** Patroni's own view of the cluster (GET /cluster, from the first member that answers), or undefined. */
  async view (): Promise<PatroniView | undefined> {
    for (const m of this.members) {
      const res = await fetch(`http://127.0.0.1:${m.restPort}/cluster`, { signal: AbortSignal.timeout(1000) }).catch(
        () => undefined
      );
      if (res?.ok) return (await res.json()) as PatroniView;
    }
    return undefined;
  }

  /** The member Patroni has named synchronous standby (synchronous_mode), if any: the only one it may promote. */
  async synchronousStandby (): Promise<Member | undefined> {
    const named = (await this.view())?.members.find((m) => m.role === 'sync_standby')?.name;
    return this.members.find((m) => m.name === named);
  }

  /**
   * Turns synchronous_mode on or off for the running cluster (PATCH /config on a member: Patroni's dynamic
   * configuration, kept in etcd), and resolves once the leader's PostgreSQL has it: a synchronous standby named, or
   * synchronous_standby_names empty.
   */
  async setSynchronous (on: boolean, timeoutMs = 30_000): Promise<void> {
    const leader = await this.leader();
    if (!leader) throw new Error('no leader to reconfigure');
    const res = await fetch(`http://127.0.0.1:${leader.restPort}/config`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ synchronous_mode: on }),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`Patroni refused synchronous_mode ${on}: HTTP ${res.status} ${await res.text()}`);
    const deadline = Date.now() + timeoutMs;
    while (((await this.synchronousStandby()) !== undefined) !== on) {
      if (Date.now() > deadline) throw new Error(`synchronous_mode ${on} not in effect within ${timeoutMs / 1000} s`);
      await delay(200);
    }
  }

  /** What `member`'s Patroni has logged (INFO and above), PostgreSQL's and pg_rewind's output among it. */
  logOf (member: Member): string {
    try {
      return readFileSync(this.logFile(member), 'utf8');
    } catch {
      return '';
    }
  }

  /** Starts (or starts again) `member`'s Patroni, which starts its PostgreSQL; an old leader rejoins by pg_rewind. */
  startMember (member: Member): void {
    const logFd = openSync(this.logFile(member), 'a');
    if (this.owner.uid !== undefined) chownSync(this.logFile(member), this.owner.uid, this.owner.gid!);
    const [program, args] = tiedToUs(this.programs.patroni, [join(member.dir, 'patroni.yml')], 'TERM');
    const child = spawn(program, args, {
      stdio: ['ignore', logFd, logFd],
      detached: true,
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...this.owner,
    });
    closeSync(logFd);
    this.processes.set(member.name, child);
  }

  /** True while `member`'s Patroni runs (started, and neither stopped nor killed). */
  running (member: Member): boolean {
    const child = this.processes.get(member.name);
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** SIGKILL to `member`'s Patroni and its PostgreSQL at once: the machine is gone. */
  killMember (member: Member): void {
    this.processes.get(member.name)?.kill('SIGKILL');
    const postmaster = this.postmasterPid(member);
    if (postmaster) process.kill(postmaster, 'SIGKILL');
  }

  /** SIGKILL to `member`'s PostgreSQL only; its Patroni lives on (and, on the leader, gives up the lead). */
  killPostgres (member: Member): void {
    const postmaster = this.postmasterPid(member);
    if (postmaster) process.kill(postmaster, 'SIGKILL');
  }

  /** HAProxy, every member (Patroni stops its PostgreSQL), any PostgreSQL a killed member left, then etcd. */
  async stop (): Promise<void> {
    await this.router.stop();
    await Promise.all(
      this.members.map(async (m) => {
        const child = this.processes.get(m.name);
        this.processes.delete(m.name);
        if (child) await stopProcess(child, 'SIGTERM', 30_000);
        const postmaster = this.postmasterPid(m);
        if (postmaster) {
          process.kill(postmaster, 'SIGINT');
          for (let i = 0; i < 100 && alive(postmaster); i++) await delay(100);
          if (alive(postmaster)) process.kill(postmaster, 'SIGKILL');
        }
      })
    );
    await this.etcd.stop();
  }

  private postmasterPid (member: Member): number | undefined {
    try {
      const pid = Number(readFileSync(join(member.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      return alive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private logFile (member: Member): string {
    return join(member.dir, 'patroni.log');
  }

  /**
   * TCP to the members' PostgreSQL, by Patroni's REST checks: `OPTIONS /primary` answers 200 on the leader only,
   * `OPTIONS /replica` on a running replica (a GET check fills Patroni's log with resets).
   */
  private routerConfig (): string {
    const backend = (name: 'leader' | 'replicas', check: string) => [
      `backend ${name}`,
      ...(name === 'replicas' ? ['  balance roundrobin'] : []),
      '  option httpchk',
      `  http-check send meth OPTIONS uri ${check}`,
      '  http-check expect status 200',
      // A member that stops passing is cut off at once: its clients see a dead connection, not a silent one.
      '  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions',
      ...this.members.map((m) => `  server ${m.name} 127.0.0.1:${m.pgPort} check port ${m.restPort}`),
      '',
    ];
    return [
      'global',
      `  stats socket ${this.router.socket} mode 600 level admin`,
      '  maxconn 4096',
      '',
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      // A member whose PostgreSQL died is still routed until its check fails: its refusal is passed on at once, not
      // retried a second apart until the client's own connect timeout.
      '  retries 0',
      // A pooled connection may sit idle for a while between queries and health checks.
      '  timeout client 30m',
      '  timeout server 30m',
      '  timeout check 1s',
      '',
      // With no member up behind a port, refused at once: otherwise HAProxy holds each connection until `timeout
      // connect`, and a pool's connects hang through the whole outage and past the promotion.
      'frontend leader',
      `  bind 127.0.0.1:${this.ports.leader}`,
      '  tcp-request connection reject if { nbsrv(leader) eq 0 }',
      '  default_backend leader',
      '',
      'frontend replicas',
      `  bind 127.0.0.1:${this.ports.replicas}`,
      '  tcp-request connection reject if { nbsrv(replicas) eq 0 }',
      '  default_backend replicas',
      '',
      ...backend('leader', '/primary'),
      ...backend('replicas', '/replica'),
    ].join('\n');
  }

  /** Patroni reads YAML, and JSON is YAML: no YAML library. */
  private writeConfig (member: Member): void {
    const { synchronous = false, ttl = 10, loopWait = 1, retryTimeout = 4, maxConnections = 100 } = this.options;
    if (loopWait + 2 * retryTimeout > ttl) {
      throw new ConfigError(
        `Patroni needs loop_wait + 2 x retry_timeout <= ttl: ${loopWait} + 2 x ${retryTimeout} > ${ttl}`
      );
    }
    mkdirSync(member.dir, { recursive: true, mode: 0o700 });
    const superuser = { username: 'postgres', password: this.password };
    const config = {
      scope: this.scope,
      name: member.name,
      // INFO: each loop's decision, and what a rejoin ran (pg_rewind, or a fresh copy): the file is read after a run.
      log: { level: 'INFO' },
      restapi: {
        listen: `127.0.0.1:${member.restPort}`,
        connect_address: `127.0.0.1:${member.restPort}`,
      },
      etcd3: { hosts: this.etcd.endpoint },
      bootstrap: {
        dcs: {
          ttl,
          loop_wait: loopWait,
          retry_timeout: retryTimeout,
          // A leader whose PostgreSQL dies is failed over at once, not restarted in place.
          primary_start_timeout: 0,
          maximum_lag_on_failover: 1024 * 1024,
          synchronous_mode: synchronous,
          postgresql: {
            use_pg_rewind: true,
            parameters: {
              max_connections: maxConnections,
              wal_log_hints: 'on',
              max_wal_senders: 10,
              max_replication_slots: 10,
              hot_standby_feedback: 'on',
            },
          },
        },
        initdb: [{ encoding: 'UTF8' }, { auth: 'scram-sha-256' }, 'no-locale'],
        pg_hba: [
          'host replication replicator 127.0.0.1/32 scram-sha-256',
          'host all all 127.0.0.1/32 scram-sha-256',
        ],
      },
      postgresql: {
        listen: `127.0.0.1:${member.pgPort}`,
        connect_address: `127.0.0.1:${member.pgPort}`,
        data_dir: join(member.dir, 'data'),
        bin_dir: this.programs.binDir,
        pgpass: join(member.dir, 'pgpass'),
        authentication: {
          superuser,
          replication: { username: 'replicator', password: this.replicationPassword },
          rewind: superuser,
        },
        parameters: { unix_socket_directories: member.dir },
      },
    };
    const file = join(member.dir, 'patroni.yml');
    writeFileSync(file, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
    if (this.owner.uid !== undefined) {
      for (const path of [member.dir, file]) chownSync(path, this.owner.uid, this.owner.gid!);
    }
  }
}
