import { createServer } from 'node:net';

/** Asks the OS for a free TCP port on 127.0.0.1 (or checks that `preferred` is free). */
export function freePort (preferred = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (preferred !== 0 && err.code === 'EADDRINUSE') resolve(freePort(0));
      else reject(err);
    });
    server.listen(preferred, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The host name of a Host header, lower-cased and without its port ("[::1]:8000" -> "[::1]"). */
export function hostName (header: string): string {
  const host = header.trim().toLowerCase();
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
}

/** Why the service cannot listen on host:port, in words a person can act on. */
export class ListenError extends Error {
  override name = 'ListenError';
  constructor (host: string, port: number, err: NodeJS.ErrnoException, setting = 'PORT') {
    const why =
      err.code === 'EADDRINUSE'
        ? `the port is in use by another program (set ${setting} to another port, or 0 for any free one)`
        : err.code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND'
            ? 'this machine has no such address (set HOST to one of its addresses, or 0.0.0.0 for all)'
            : err.message;
    super(`Cannot listen on ${host}:${port}: ${why}`);
  }
}

/** Fails with a ListenError now, before anything starts, when host:port cannot be listened on. */
export function checkListenable (host: string, port: number, setting = 'PORT'): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(host, port, err, setting)));
    server.listen(port, host, () => server.close(() => resolve()));
  });
}
