// A real HAProxy (Debian's package) in front of the demo's hosts: least connections, a health check
// on /readyz, and its own view of each server read from its stats socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ConfigError } from '../config.ts';
import { freePort } from '../os/net.ts';
import { findProgram, stopProcess, tiedToUs } from '../os/processes.ts';

export interface Backend {
  name: string;
  address: string;
  port: number;
}

export interface ServerStat {
  name: string;
  /** UP, DOWN, MAINT, "UP 1/2" while rising... */
  status: string;
  /** Requests sent to it, in all. */
  requests: number;
  /** Connection retries and redispatches to another server. */
  retries: number;
  redispatches: number;
}

export function findHaproxy (): string {
  const bin = findProgram('haproxy', ['-v']) ?? findProgram('/usr/sbin/haproxy', ['-v']);
  if (!bin) {
    throw new ConfigError(
      'HAProxy is not installed: the hosts demo balances across them with it (Debian: apt-get install haproxy)'
    );
  }
  return bin;
}

/** The configuration: written out by the demo, and the sample docs/scaling.md shows (its test compares them). */
export function haproxyConfig ({
  port,
  socket,
  backends,
}: {
  port: number;
  socket: string;
  backends: Backend[];
}): string {
  return [
    'global',
    `  stats socket ${socket} mode 600 level admin`,
    '  maxconn 4096',
    '',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  # A request may wait POOL_TIMEOUT twice (the pool, then PgBouncer), then sleep 60 s.',
    '  timeout client 130s',
    '  timeout server 130s',
    '  # A check may take as long as /readyz allows itself (1 s).',
    '  timeout check 1500ms',
    '  # A refused connection (the host stopped listening, or died) is retried on another host:',
    '  # only the connect, never a request that may have reached a service.',
    '  retries 2',
    '  option redispatch',
    '',
    'frontend fleet',
    `  bind 127.0.0.1:${port}`,
    '  default_backend hosts',
    '',
    'backend hosts',
    '  # Requests last 1 ms (/todos/) to 60 s (/sleep/): the host with the fewest in flight.',
    '  balance leastconn',
    '  # /readyz is 503 from the moment a host gets SIGTERM (SHUTDOWN_DELAY keeps it serving):',
    '  # two failed checks take it out (about 0.5 s), two good ones bring it back.',
    '  option httpchk',
    '  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1',
    '  default-server inter 250ms fall 2 rise 2',
    ...backends.map((b) => `  server ${b.name} ${b.address}:${b.port} check`),
    '',
  ].join('\n');
}

export class HaProxy {
  private child?: ChildProcess;
  port = 0;
  readonly socket: string;
  config = '';

  constructor (private readonly options: { bin: string; dir: string; backends: Backend[] }) {
    this.socket = resolve(options.dir, 'haproxy.sock');
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start (): Promise<void> {
    mkdirSync(this.options.dir, { recursive: true });
    this.port = await freePort();
    this.config = haproxyConfig({ port: this.port, socket: this.socket, backends: this.options.backends });
    const file = join(this.options.dir, 'haproxy.cfg');
    writeFileSync(file, this.config);
    // -db: in the foreground, as our child; it dies with us.
    const [program, args] = tiedToUs(this.options.bin, ['-db', '-f', file], 'TERM');
    let output = '';
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => {
      output += d;
    });
    child.stderr!.on('data', (d) => {
      output += d;
    });
    this.child = child;
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`HAProxy exited with code ${child.exitCode}: ${output.trim()}`);
      if (
        await this.stats().then(
          () => true,
          () => false
        )
      ) {
        return;
      }
      await delay(50);
    }
    throw new Error(`HAProxy did not start: ${output.trim()}`);
  }

  /** Each server as HAProxy sees it ("show stat" on the stats socket). */
  async stats (): Promise<ServerStat[]> {
    const csv = await new Promise<string>((resolve, reject) => {
      let out = '';
      const s = connect(this.socket, () => s.end('show stat\n'));
      s.on('data', (d) => {
        out += d;
      });
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    const [header, ...lines] = csv.replace(/^# /, '').trim().split('\n');
    const names = header!.split(',');
    const col = (row: string[], name: string) => row[names.indexOf(name)] ?? '';
    return lines
      .map((l) => l.split(','))
      .filter((row) => col(row, 'pxname') === 'hosts' && !['FRONTEND', 'BACKEND'].includes(col(row, 'svname')))
      .map((row) => ({
        name: col(row, 'svname'),
        status: col(row, 'status'),
        requests: Number(col(row, 'stot')),
        retries: Number(col(row, 'wretr')),
        redispatches: Number(col(row, 'wredis')),
      }));
  }

  /** Waits until HAProxy reports `server` in `status` (UP, DOWN); resolves with the time it took, in ms. */
  async until (server: string, status: 'UP' | 'DOWN', timeoutMs = 10_000): Promise<number> {
    const t0 = performance.now();
    while (performance.now() - t0 < timeoutMs) {
      const s = (await this.stats()).find((x) => x.name === server);
      if (s?.status === status) return performance.now() - t0;
      await delay(25);
    }
    throw new Error(`HAProxy did not see ${server} ${status} within ${timeoutMs / 1000} s`);
  }

  async stop (): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await stopProcess(child, 'SIGTERM', 5000);
  }
}
