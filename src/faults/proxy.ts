// A fault injector: a TCP proxy between the service and PostgreSQL that drops, refuses, resets and
// delays on command. It needs no root and touches no interface or firewall: faults are made on the
// connections that pass through it, on loopback.
//
// A partition here is what a dead switch, a failed-over load balancer or a suspended VM looks like
// to the two ends: every byte, both ways, silently dropped; no FIN, no RST. A connection caught by
// it lost bytes, so it can never carry the protocol again: after the heal it stays dead (the pool
// must find it), while new connections pass. What either end closed meanwhile reaches the other
// at the heal, as the peer's next packet or keepalive would tell it.
import net from 'node:net';

/** pass: forward; drop: a partition; refuse: new connections are reset at once (open ones pass). */
export type FaultMode = 'pass' | 'drop' | 'refuse';

export interface FaultProxyOptions {
  /** Where connections go: PostgreSQL (or anything on TCP). */
  target: { host: string; port: number };
  /** Where the proxy listens (default 127.0.0.1, port 0: any free port). */
  host?: string;
  port?: number;
}

export interface FaultProxyStats {
  mode: FaultMode;
  /** Added to each chunk, each way, in ms. */
  delayMs: number;
  accepted: number;
  /** Connections open now, dead ones included. */
  open: number;
  /** Of those, caught by a partition: they will never pass a byte again. */
  dead: number;
  droppedBytes: number;
  refused: number;
  reset: number;
}

type Side = 'client' | 'server';

interface Link {
  client: net.Socket;
  server: net.Socket | undefined;
  /** Caught by a partition: its bytes are dropped for good. */
  dead: boolean;
  /** Closed on this side while the partition held its close back. */
  closed: Set<Side>;
  /** Per direction: chunks waiting for their delay, in order. */
  queues: Record<Side, { at: number; chunk: Buffer }[]>;
  timers: Partial<Record<Side, NodeJS.Timeout>>;
}

export class FaultProxy {
  private readonly server: net.Server;
  private readonly links = new Set<Link>();
  private mode: FaultMode = 'pass';
  private delayMs = 0;
  private readonly counts = { accepted: 0, droppedBytes: 0, refused: 0, reset: 0 };

  constructor (private readonly options: FaultProxyOptions) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Listens; resolves with the port. */
  start (): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve(this.port);
      });
    });
  }

  get port (): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** `url` (a postgres:// URL of the target) with its host and port replaced by the proxy's. */
  urlFor (url: string): string {
    const u = new URL(url);
    u.hostname = this.options.host ?? '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  /** A partition: every byte of every open and new connection silently dropped, both ways, until heal(). */
  drop (): void {
    this.mode = 'drop';
    for (const link of this.links) link.dead = true;
  }

  /** New connections are reset at once (ECONNRESET on connect); open ones pass. */
  refuse (): void {
    this.mode = 'refuse';
  }

  /** Every open connection reset now, both ends (RST); new ones are not affected. */
  reset (): void {
    for (const link of [...this.links]) {
      this.counts.reset++;
      link.client.resetAndDestroy();
      link.server?.resetAndDestroy();
      this.unlink(link);
    }
  }

  /** Each chunk, each way, forwarded `ms` later (the order kept): added latency on the path. */
  delay (ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`delay must be a number of milliseconds, 0 or more; got ${ms}`);
    }
    this.delayMs = ms;
  }

  /**
   * Back to passing, without delay. Connections caught by a partition stay dead; closes it held back are passed on now.
   */
  heal (): void {
    this.mode = 'pass';
    this.delayMs = 0;
    for (const link of [...this.links]) {
      if (link.dead && link.closed.size > 0) this.unlink(link);
    }
  }

  stats (): FaultProxyStats {
    let dead = 0;
    for (const link of this.links) if (link.dead) dead++;
    return { mode: this.mode, delayMs: this.delayMs, ...this.counts, open: this.links.size, dead };
  }

  /** Stops listening and closes every connection. */
  close (): Promise<void> {
    for (const link of [...this.links]) this.unlink(link);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept (client: net.Socket): void {
    this.counts.accepted++;
    if (this.mode === 'refuse') {
      this.counts.refused++;
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const link: Link = {
      client,
      server: undefined,
      dead: this.mode === 'drop',
      closed: new Set(),
      queues: { client: [], server: [] },
      timers: {},
    };
    this.links.add(link);
    // A partition never reaches the server: the connection is accepted (the kernel does that) and answered by nothing.
    if (!link.dead) link.server = this.connectServer(link);
    this.wire(link, 'client', client);
  }

  private connectServer (link: Link): net.Socket {
    const server = net.connect({ host: this.options.target.host, port: this.options.target.port, noDelay: true });
    this.wire(link, 'server', server);
    return server;
  }

  private wire (link: Link, side: Side, socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.forward(link, side, chunk));
    socket.on('error', () => {}); // 'close' follows
    socket.on('close', () => {
      if (link.dead && this.mode === 'drop') return link.closed.add(side); // held back by the partition
      // What it sent before it closed still reaches the other end, after its delay.
      const last = link.queues[side].at(-1);
      if (!last) return this.unlink(link);
      setTimeout(() => this.unlink(link), Math.max(0, last.at - performance.now()) + 1);
    });
  }

  private forward (link: Link, from: Side, chunk: Buffer): void {
    if (link.dead) {
      this.counts.droppedBytes += chunk.length;
      return;
    }
    const to = from === 'client' ? link.server : link.client;
    if (!to) return;
    if (this.delayMs === 0 && link.queues[from].length === 0) {
      to.write(chunk);
      return;
    }
    link.queues[from].push({ at: performance.now() + this.delayMs, chunk });
    this.drain(link, from);
  }

  /** Writes the chunks whose delay has passed, in order, and waits for the next one. */
  private drain (link: Link, from: Side): void {
    if (link.timers[from]) return;
    const queue = link.queues[from];
    const to = from === 'client' ? link.server : link.client;
    while (queue.length && queue[0]!.at <= performance.now()) {
      const { chunk } = queue.shift()!;
      if (link.dead) this.counts.droppedBytes += chunk.length;
      else to?.write(chunk);
    }
    if (!queue.length) return;
    link.timers[from] = setTimeout(
      () => {
        link.timers[from] = undefined;
        this.drain(link, from);
      },
      Math.max(0, queue[0]!.at - performance.now())
    );
  }

  private unlink (link: Link): void {
    if (!this.links.delete(link)) return;
    clearTimeout(link.timers.client);
    clearTimeout(link.timers.server);
    link.client.destroy();
    link.server?.destroy();
  }
}
