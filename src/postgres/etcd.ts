// One etcd (Debian's etcd-server), the store Patroni keeps its leader key in: on 127.0.0.1, on ports
// the system picks, its data in a folder of ours, stopped with us.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../os/net.ts';
import { stopProcess, tiedToUs } from '../os/processes.ts';
import { logTail } from './ready.ts';

export class Etcd {
  private child?: ChildProcess;
  private clientPort = 0;

  /** `dir`: its data and its log. */
  constructor (
    private readonly bin: string,
    private readonly dir: string
  ) {}

  /** host:port of its client API, as Patroni's `etcd3.hosts` takes it. */
  get endpoint (): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  async start (timeoutMs = 20_000): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.clientPort = await freePort();
    const peer = `http://127.0.0.1:${await freePort()}`;
    const client = `http://${this.endpoint}`;
    const log = join(this.dir, 'etcd.log');
    const logFd = openSync(log, 'a');
    const [program, args] = tiedToUs(
      this.bin,
      [
        '--name=etcd',
        `--data-dir=${join(this.dir, 'data')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=etcd=${peer}`,
        '--initial-cluster-state=new',
        '--logger=zap',
        '--log-level=warn',
      ],
      'TERM'
    );
    // Its own process group: a Ctrl-C in the terminal reaches us, and we stop it after the cluster.
    this.child = spawn(program, args, { stdio: ['ignore', logFd, logFd], detached: true });
    closeSync(logFd);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`etcd failed to start: ${logTail(log)}`);
      const health = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
      if (health?.ok) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`etcd did not answer within ${timeoutMs / 1000} s: ${logTail(log)}`);
      }
      await delay(100);
    }
  }

  async stop (): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await stopProcess(child, 'SIGTERM', 10_000);
  }
}
