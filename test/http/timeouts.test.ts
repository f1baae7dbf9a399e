// Clients that take too long to send their request are cut (REQUEST_TIMEOUT, HEADERS_TIMEOUT),
// so a few slow connections cannot hold the service's sockets for ever.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { buildListening } from '../helper.ts';

/**
 * Opens a connection and sends `head`, then one byte a second; resolves with what came back and when the server closed
 * it.
 */
function slowClient (url: string, head: string): Promise<{ ms: number; answer: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const t0 = performance.now();
    let answer = '';
    const socket = net.connect(Number(port), hostname, () => socket.write(head));
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write('x');
    }, 1000);
    socket.on('data', (d) => {
      answer += d;
    });
    const done = () => {
      clearInterval(drip);
      resolve({ ms: performance.now() - t0, answer });
    };
    socket.on('close', done);
    socket.on('error', () => {});
  });
}

test(
  'a body sent one byte a second is cut after REQUEST_TIMEOUT with 408; the service keeps serving',
  { timeout: 30_000 },
  async (t) => {
    const { url } = await buildListening(t, { settings: { REQUEST_TIMEOUT: '2', HEADERS_TIMEOUT: '1' } });
    const slow = await Promise.all(
      Array.from({ length: 10 }, () =>
        slowClient(
          url,
          'POST /todos/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{'
        )
      )
    );
    for (const s of slow) {
      assert.ok(s.ms >= 1900 && s.ms < 6000, `cut after ${Math.round(s.ms)} ms`);
      assert.match(s.answer, /^HTTP\/1\.1 408/);
    }
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
  }
);

test('headers sent one byte a second are cut after HEADERS_TIMEOUT', { timeout: 30_000 }, async (t) => {
  const { url } = await buildListening(t, { settings: { REQUEST_TIMEOUT: '5', HEADERS_TIMEOUT: '2' } });
  const s = await slowClient(url, 'GET /todos/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
  assert.ok(s.ms >= 1900 && s.ms < 5000, `cut after ${Math.round(s.ms)} ms`);
});
