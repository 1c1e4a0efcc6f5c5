import net from 'node:net';
// Connection limits of sse(): maxConnections (503) and maxConnectionsPerKey (429), both with
// Retry-After and before any stream byte; streams already open are untouched.
import express from 'express';
import { ChannelRegistry, sse, type SseHandler } from 'express-sse-hub';
import { startServer, trackStreams, waitUntil, type TestServer } from './helpers/server';

let server: TestServer | undefined;
const open = trackStreams();
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function limitedApp(options: Parameters<typeof sse>[0]): { app: express.Express; registry: ChannelRegistry; middleware: SseHandler } {
  const registry = new ChannelRegistry();
  const middleware = sse({ heartbeat: false, ...options });
  const app = express();
  app.set('trust proxy', 'loopback');
  // One middleware instance on two routes: one shared limit.
  app.get(['/events', '/other'], middleware, (_req, res) => {
    registry.channel('news').subscribe(res);
  });
  // A route that opens lazily (no Accept header needed): its first send() meets the limit.
  app.get('/lazy', middleware, (_req, res) => {
    const sent = res.sse.send('hello');
    if (!sent && res.sse.closed) return;
    registry.channel('news').subscribe(res);
  });
  return { app, registry, middleware };
}

describe('maxConnections (global)', () => {
  it('refuses the stream beyond the limit with 503 and Retry-After, before any stream byte', async () => {
    const { app, registry, middleware } = limitedApp({ maxConnections: 3, retryAfter: 7 });
    server = await startServer(app);
    const admitted = [await open(`${server.url}/events`), await open(`${server.url}/other`), await open(`${server.url}/events`)];
    for (const s of admitted) expect(s.response.statusCode).toBe(200);
    await waitUntil(() => registry.channel('news').size === 3, 'three subscribed');

    const refused = await open(`${server.url}/events`);
    await refused.ended;
    expect(refused.response.statusCode).toBe(503);
    expect(refused.response.headers['retry-after']).toBe('7');
    expect(refused.response.headers['content-type']).toMatch(/^text\/plain/);
    expect(refused.raw()).toMatch(/maximum of 3 event streams/);
    expect(refused.count()).toBe(0);
    expect(middleware.stats()).toMatchObject({ connections: 3, refusedFull: 1 });

    // The streams already open are untouched.
    await registry.channel('news').broadcast('still here');
    for (const s of admitted) await s.waitForEvents(1);

    // A slot frees when a stream closes.
    admitted[0]!.destroy();
    await waitUntil(() => middleware.stats().connections === 2, 'the slot freed');
    const next = await open(`${server.url}/events`);
    expect(next.response.statusCode).toBe(200);
    expect(next.response.headers['content-type']).toMatch(/^text\/event-stream/);
  });

  it('refuses a lazily opened stream the same way; its send() returns false and the route sees closed', async () => {
    const { app, middleware } = limitedApp({ maxConnections: 1 });
    server = await startServer(app);
    const first = await open(`${server.url}/lazy`, { accept: '*/*' });
    await first.waitForEvents(1);
    const second = await open(`${server.url}/lazy`, { accept: '*/*' });
    await second.ended;
    expect(second.response.statusCode).toBe(503);
    expect(middleware.stats().connections).toBe(1);
  });
});

describe('a HEAD request to a stream route', () => {
  it('gets the stream headers and no body, holds no connection, and a request pipelined behind it is answered', async () => {
    const { app, registry, middleware } = limitedApp({ maxConnections: 2 });
    server = await startServer(app);
    const { port } = new URL(server.url);
    // Two HEADs and a GET on one keep-alive socket, written at once: every answer must come.
    const replies = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(['HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n', 'HEAD /other HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n'].join(''));
      });
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        text += chunk;
        if ((text.match(/^HTTP\/1\.1 /gm) ?? []).length === 3 && /\r\n\r\n[^]*404[^]*\r\n\r\n/.test(text)) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
    });
    const statuses = [...replies.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 200, 404]);
    expect(replies).toMatch(/content-type: text\/event-stream/i);
    expect(middleware.stats().connections).toBe(0);
    expect(registry.channel('news').size).toBe(0);
    // The two slots are free for real clients.
    const first = await open(`${server.url}/events`);
    const second = await open(`${server.url}/other`);
    expect([first.response.statusCode, second.response.statusCode]).toEqual([200, 200]);
  });
});

describe('maxConnectionsPerKey', () => {
  it('holds one IP that opens hundreds of streams to the limit with 429; other clients still get in', async () => {
    const { app, registry, middleware } = limitedApp({ maxConnectionsPerKey: 20 });
    server = await startServer(app);
    const flood = await Promise.all(Array.from({ length: 300 }, () => open(`${server!.url}/events`, { 'x-forwarded-for': '203.0.113.9' })));
    const statuses = flood.map((s) => s.response.statusCode);
    expect(statuses.filter((s) => s === 200)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(280);
    for (const s of flood.filter((f) => f.response.statusCode === 429)) {
      expect(s.response.headers['retry-after']).toBe('10');
      expect(s.response.headers['content-type']).not.toMatch(/event-stream/);
    }
    // Another client (another IP behind the trusted proxy) is not affected.
    const other = await open(`${server.url}/events`, { 'x-forwarded-for': '198.51.100.4' });
    expect(other.response.statusCode).toBe(200);
    await waitUntil(() => registry.channel('news').size === 21, 'all admitted streams subscribed');
    expect(middleware.stats()).toMatchObject({ connections: 21, keys: 2, refusedPerKey: 280 });
    await registry.channel('news').broadcast('to the admitted');
    await other.waitForEvents(1);
  });

  it('keys by what connectionKey returns (a user id), and forgets a key once its streams close', async () => {
    const { app, middleware } = limitedApp({ maxConnectionsPerKey: 2, connectionKey: (req) => String(req.headers['x-user']) });
    server = await startServer(app);
    const a1 = await open(`${server.url}/events`, { 'x-user': 'alice' });
    const a2 = await open(`${server.url}/events`, { 'x-user': 'alice' });
    const a3 = await open(`${server.url}/events`, { 'x-user': 'alice' });
    const b1 = await open(`${server.url}/events`, { 'x-user': 'bob' });
    expect([a1, a2, a3, b1].map((s) => s.response.statusCode)).toEqual([200, 200, 429, 200]);
    a1.destroy();
    a2.destroy();
    b1.destroy();
    await waitUntil(() => middleware.stats().connections === 0, 'all closed');
    expect(middleware.stats().keys).toBe(0);
  });

  it('passes a connectionKey error to the route, or answers a plain 500 when no route code is running', async () => {
    const middleware = sse({
      heartbeat: false,
      maxConnectionsPerKey: 2,
      connectionKey: () => {
        throw new Error('no session store');
      },
    });
    const app = express();
    // Opened by the route: the error is thrown there and reaches Express's error handler.
    app.get('/now', middleware, (_req, res) => void res.sse.open());
    // Opened by the middleware on the next turn: nobody to throw to; a warning and a plain 500.
    app.get('/later', middleware, () => undefined);
    app.use(((error: Error, _req, res, _next) => {
      res.status(500).json({ caught: error.message });
    }) as express.ErrorRequestHandler);
    server = await startServer(app);
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const now = await open(`${server.url}/now`);
    await now.ended;
    expect(now.response.statusCode).toBe(500);
    expect(now.raw()).toBe('{"caught":"no session store"}');
    const later = await open(`${server.url}/later`);
    await later.ended;
    expect(later.response.statusCode).toBe(500);
    expect(later.raw()).toBe('express-sse-hub: the event stream could not be opened\n');
    expect(middleware.stats().connections).toBe(0);
    // Only the stream nobody could throw to is warned about, with the cause.
    expect(warn.mock.calls.map((call) => String(call[0]))).toEqual([expect.stringContaining('no session store')]);
    warn.mockRestore();
  });
});

describe('limit options', () => {
  it.each([
    [{ maxConnections: 0 }, /maxConnections must be a positive integer/],
    [{ maxConnections: 1.5 }, /maxConnections must be a positive integer/],
    [{ maxConnectionsPerKey: -1 }, /maxConnectionsPerKey must be a positive integer/],
    [{ connectionKey: 'ip' }, /connectionKey must be a function/],
    [{ connectionKey: () => 'x' }, /connectionKey must be set together with maxConnectionsPerKey/],
    [{ retryAfter: -1 }, /retryAfter must be a non-negative integer/],
  ])('rejects %p', (options, message) => {
    expect(() => sse(options as Parameters<typeof sse>[0])).toThrow(message);
  });
});
