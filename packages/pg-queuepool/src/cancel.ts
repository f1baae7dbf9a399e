// PostgreSQL's CancelRequest: asks the server to stop the query running on one backend, over a
// socket of its own (no pooled connection is borrowed, no authentication is needed: the backend's
// process id and secret key, from its BackendKeyData, say which one).
import net from 'node:net';

/** What a connected node-postgres Client knows about its backend. */
export interface CancelTarget {
  host?: string;
  port?: number;
  processID?: number | null;
  secretKey?: number | null;
}

/**
 * Sends one CancelRequest. Resolves when the server has closed the socket: by then the server has
 * signalled the backend (it processes the request, then closes), so a query sent afterwards on
 * that backend cannot be the one a late cancel stops. Resolves false when it could not be sent,
 * or the server did not close the socket within `timeoutMs`.
 */
export function sendCancel (target: CancelTarget, timeoutMs = 5000): Promise<boolean> {
  const { host = 'localhost', port = 5432, processID, secretKey } = target;
  if (processID == null || secretKey == null) return Promise.resolve(false);
  return new Promise((resolve) => {
    let sent = false;
    const socket = host.startsWith('/') ? net.connect(`${host}/.s.PGSQL.${port}`) : net.connect(port, host);
    const packet = Buffer.alloc(16);
    packet.writeInt32BE(16, 0);
    packet.writeInt32BE(80877102, 4); // the CancelRequest code: 1234 << 16 | 5678
    packet.writeInt32BE(processID, 8);
    packet.writeInt32BE(secretKey, 12);
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('connect', () => {
      socket.write(packet);
      sent = true;
    });
    // Let the server close it, as libpq does: closing it first can lose the request (and crashes
    // PgBouncer 1.18: "disconnect_client(): bad client state: 0").
    socket.on('end', () => socket.destroy());
    socket.on('close', () => resolve(sent));
    socket.on('error', () => {}); // 'close' follows; the query, if the server is gone, is gone too
  });
}
