// A real HAProxy (Debian's package) in front of the demo's hosts: least connections, a health check
// on /readyz, and its own view of each server read from its stats socket.
import { ConfigError } from '../config.ts';
import { haproxyProgram, HaProxyProcess, type ServerStat } from '../os/haproxy.ts';
import { freePort } from '../os/net.ts';

export interface Backend {
  name: string;
  address: string;
  port: number;
}

export function findHaproxy (): string {
  const bin = haproxyProgram();
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

/** HAProxy in front of the hosts, on a port the system picks; each host's state as it sees it. */
export class HaProxy {
  private readonly process: HaProxyProcess;
  port = 0;
  config = '';

  constructor (private readonly options: { bin: string; dir: string; backends: Backend[] }) {
    this.process = new HaProxyProcess(options.bin, options.dir);
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start (): Promise<void> {
    this.port = await freePort();
    this.config = haproxyConfig({ port: this.port, socket: this.process.socket, backends: this.options.backends });
    await this.process.start(this.config);
  }

  /** Each host as HAProxy sees it. */
  async stats (): Promise<ServerStat[]> {
    return (await this.process.stats()).filter((s) => s.backend === 'hosts');
  }

  /** Waits until HAProxy reports `server` in `status` (UP, DOWN); resolves with the time it took, in ms. */
  until (server: string, status: 'UP' | 'DOWN', timeoutMs = 10_000): Promise<number> {
    return this.process.until('hosts', server, status, timeoutMs);
  }

  stop (): Promise<void> {
    return this.process.stop();
  }
}
