// A real HAProxy (Debian's package) as our child, on a configuration the caller writes: in the
// foreground, tied to our life, with a stats socket to read each server's state from. The hosts
// demo balances HTTP across its hosts with it; the Patroni cluster routes to its leader with it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { findProgram, stopProcess, tiedToUs } from './processes.ts';

export interface ServerStat {
  /** The backend it is in. */
  backend: string;
  name: string;
  /** UP, DOWN, MAINT, "UP 1/2" while rising... */
  status: string;
  /** Requests (HTTP) or sessions (TCP) sent to it, in all. */
  requests: number;
  /** Connection retries and redispatches to another server. */
  retries: number;
  redispatches: number;
}

/** The haproxy program, or undefined when it is not installed. */
export function haproxyProgram (): string | undefined {
  return findProgram('haproxy', ['-v']);
}

export class HaProxyProcess {
  private child?: ChildProcess;
  /** The stats socket: the configuration's `global` section must declare it (`stats socket <socket> ...`). */
  readonly socket: string;

  constructor (
    private readonly bin: string,
    private readonly dir: string
  ) {
    this.socket = resolve(dir, 'haproxy.sock');
  }

  /** Writes `config` to haproxy.cfg and starts HAProxy on it; resolves once its stats socket answers. */
  async start (config: string): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const file = join(this.dir, 'haproxy.cfg');
    writeFileSync(file, config);
    // -db: in the foreground, as our child; it dies with us.
    const [program, args] = tiedToUs(this.bin, ['-db', '-f', file], 'TERM');
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
      if (await this.stats().then(() => true, () => false)) return;
      await delay(50);
    }
    await this.stop();
    throw new Error(`HAProxy did not start: ${output.trim()}`);
  }

  /** Each server as HAProxy sees it ("show stat" on the stats socket), of every backend. */
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
      .filter((row) => !['FRONTEND', 'BACKEND'].includes(col(row, 'svname')))
      .map((row) => ({
        backend: col(row, 'pxname'),
        name: col(row, 'svname'),
        status: col(row, 'status'),
        requests: Number(col(row, 'stot')),
        retries: Number(col(row, 'wretr')),
        redispatches: Number(col(row, 'wredis')),
      }));
  }

  /** Waits until HAProxy reports `server` of `backend` in `status` (UP, DOWN); resolves with the ms it took. */
  async until (backend: string, server: string, status: 'UP' | 'DOWN', timeoutMs = 10_000): Promise<number> {
    const t0 = performance.now();
    while (performance.now() - t0 < timeoutMs) {
      const s = (await this.stats()).find((x) => x.backend === backend && x.name === server);
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
