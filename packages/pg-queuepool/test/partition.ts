// A network partition for the recovery tests: a TCP proxy on loopback that, while dropped, passes
// no byte either way and sends no FIN or RST, as a dead switch looks to both ends. A connection it
// caught lost bytes, so it stays dead after the heal; new ones pass. A close on either side of a
// dead connection reaches the other at the heal, as the peer's next packet would tell it.
import net from 'node:net';

interface Link {
  client: net.Socket;
  server: net.Socket | undefined;
  dead: boolean;
  closed: boolean;
}

export class Partition {
  private readonly listener = net.createServer((client) => this.accept(client));
  private readonly links = new Set<Link>();
  private dropped = false;

  constructor (private readonly target: { host: string; port: number }) {}

  start (): Promise<void> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(0, '127.0.0.1', () => resolve());
    });
  }

  /** `url` with its host and port replaced by the proxy's. */
  urlFor (url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String((this.listener.address() as net.AddressInfo).port);
    return u.toString();
  }

  drop (): void {
    this.dropped = true;
    for (const link of this.links) link.dead = true;
  }

  heal (): void {
    this.dropped = false;
    for (const link of this.links) if (link.closed) this.end(link);
  }

  close (): Promise<void> {
    for (const link of this.links) this.end(link);
    return new Promise((resolve) => this.listener.close(() => resolve()));
  }

  private accept (client: net.Socket): void {
    // Accepted in a partition: the client's handshake never reaches the server.
    const link: Link = { client, server: undefined, dead: this.dropped, closed: false };
    this.links.add(link);
    client.on('error', () => {});
    client.on('close', () => this.closedOneSide(link));
    if (link.dead) return;
    const server = net.connect(this.target);
    link.server = server;
    server.on('error', () => {});
    server.on('close', () => this.closedOneSide(link));
    client.on('data', (chunk) => link.dead || server.write(chunk));
    server.on('data', (chunk) => link.dead || client.write(chunk));
  }

  private closedOneSide (link: Link): void {
    if (link.dead && this.dropped) link.closed = true;
    else this.end(link);
  }

  private end (link: Link): void {
    this.links.delete(link);
    link.client.destroy();
    link.server?.destroy();
  }
}
