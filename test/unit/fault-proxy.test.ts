// The fault proxy on loopback, in front of an echo server: each fault as the two ends see it, and
// the console's commands. No database.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { command } from '../../src/faults/console.ts';
import { FaultProxy } from '../../src/faults/proxy.ts';

/** An echo server that records its connections' lives. */
async function echoServer () {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let closed = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('data', (d) => s.write(d));
    s.on('error', () => {});
    s.on('close', () => {
      closed++;
      sockets.delete(s);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted, closed: () => closed };
}

/** A client of the proxy: what it received, and how it ended. */
async function connect (port: number) {
  const socket = net.connect(port, '127.0.0.1');
  const got: Buffer[] = [];
  const state = { error: undefined as string | undefined, closed: false };
  socket.on('data', (d) => got.push(d));
  socket.on('error', (err: NodeJS.ErrnoException) => {
    state.error = err.code;
  });
  socket.on('close', () => {
    state.closed = true;
  });
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', resolve);
  });
  after(() => socket.destroy());
  return { socket, state, text: () => Buffer.concat(got).toString() };
}

async function proxyTo (port: number) {
  const proxy = new FaultProxy({ target: { host: '127.0.0.1', port } });
  await proxy.start();
  after(() => proxy.close());
  return proxy;
}

async function until (check: () => boolean, ms = 2000): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) assert.fail('not in time');
    await delay(10);
  }
}

test('passes bytes both ways; delay adds its latency each way, in order', async () => {
  const echo = await echoServer();
  const proxy = await proxyTo(echo.port);
  const c = await connect(proxy.port);
  c.socket.write('hello');
  await until(() => c.text() === 'hello');
  proxy.delay(50);
  const sent = performance.now();
  c.socket.write('a');
  c.socket.write('b');
  await until(() => c.text() === 'helloab');
  assert.ok(performance.now() - sent >= 95, 'two ways of 50 ms');
});

test(
  'drop: a partition; open and new connections get nothing and the server sees no new one; after heal they stay ' +
    'dead, new ones pass',
  async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo.port);
    const before = await connect(proxy.port);
    const closing = await connect(proxy.port);
    await until(() => echo.accepted() === 2);
    proxy.drop();
    before.socket.write('lost');
    const during = await connect(proxy.port);
    during.socket.write('lost too');
    closing.socket.destroy();
    await delay(150);
    assert.equal(before.text() + during.text(), '');
    assert.equal(before.state.closed || during.state.closed, false, 'no FIN, no RST');
    assert.equal(echo.accepted(), 2, 'a partition never reaches the server');
    assert.equal(echo.closed(), 0, 'the close is held back too');
    assert.ok(proxy.stats().droppedBytes >= 12);
    proxy.heal();
    await until(() => echo.closed() === 1); // the close held back reaches the server at the heal
    before.socket.write('still');
    const fresh = await connect(proxy.port);
    fresh.socket.write('new');
    await until(() => fresh.text() === 'new');
    assert.equal(before.text(), '', 'a connection that lost bytes stays dead');
    assert.deepEqual([proxy.stats().dead, proxy.stats().open], [2, 3]);
  }
);

test('refuse resets new connections at once, open ones pass; reset resets every open one, both ends', async () => {
  const echo = await echoServer();
  const proxy = await proxyTo(echo.port);
  const open = await connect(proxy.port);
  await until(() => echo.accepted() === 1);
  proxy.refuse();
  const refused = await connect(proxy.port);
  await until(() => refused.state.closed);
  assert.equal(refused.state.error, 'ECONNRESET');
  open.socket.write('x');
  await until(() => open.text() === 'x');
  proxy.heal();
  proxy.reset();
  await until(() => open.state.closed && echo.closed() === 1);
  assert.equal(open.state.error, 'ECONNRESET');
  assert.deepEqual([proxy.stats().refused, proxy.stats().reset], [1, 1]);
});

test("the console's commands: each says what it did; a bad one names what is accepted", async () => {
  const echo = await echoServer();
  const proxy = await proxyTo(echo.port);
  assert.match(command(proxy, 'drop'), /^drop: /);
  assert.equal(proxy.stats().mode, 'drop');
  assert.match(command(proxy, 'delay 40'), /40 ms later/);
  assert.equal(JSON.parse(command(proxy, 'status')).delayMs, 40);
  assert.match(command(proxy, 'heal'), /^heal: /);
  assert.deepEqual([proxy.stats().mode, proxy.stats().delayMs], ['pass', 0]);
  assert.equal(
    command(proxy, 'delay soon'),
    'Invalid delay "soon": expected milliseconds, an integer from 0 to 60000'
  );
  assert.match(
    command(proxy, 'partition'),
    /^Unknown command "partition": expected drop \| refuse \| reset \| delay <ms> \| heal \| status \| quit$/
  );
  assert.equal(command(proxy, 'quit'), 'quit');
  assert.equal(command(proxy, ''), '');
});
