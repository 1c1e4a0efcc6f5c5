// The lifecycle of a stream: when it opens (route-mounted at once, app-wide only when used),
// what close() sends, how a shutdown ends streams however they were opened, and how an async
// authorize hook that races a close, a departing client or a route that answered ends cleanly.
import express, { type Request, type Response } from 'express';
import { ChannelRegistry, sse, type SseHandler } from 'express-sse-hub';
import { openStream, startServer, trackStreams, waitUntil, type TestServer } from './helpers/server';

let server: TestServer | undefined;
const open = trackStreams();
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Closes the server without force: resolves with how long it took, or rejects after `limitMs`. */
/** server.close() finishes only when no connection is left: a stream left open makes it hang (and the test time out). */
async function closeGently(s: TestServer): Promise<void> {
  await new Promise<void>((resolve, reject) => s.server.close((error) => (error ? reject(error) : resolve())));
}

describe('sse() mounted on a route', () => {
  it('opens the stream at once, before the route sends anything', async () => {
    const app = express();
    app.get('/events', sse({ heartbeat: false }), () => undefined);
    server = await startServer(app);
    const s = await open(`${server.url}/events`);
    expect(s.response.statusCode).toBe(200);
    expect(s.response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
  });

  it('lets the route answer otherwise in its synchronous code', async () => {
    const app = express();
    app.get('/events', sse(), (_req, res) => {
      res.status(401).json({ error: 'sign in' });
    });
    server = await startServer(app);
    const s = await open(`${server.url}/events`);
    await s.ended;
    expect(s.response.statusCode).toBe(401);
    expect(s.raw()).toBe('{"error":"sign in"}');
  });
});

describe('sse() mounted app-wide', () => {
  function appWide(route: (req: Request, res: Response) => Promise<void>): express.Express {
    const app = express();
    app.use(sse({ heartbeat: false }));
    app.get('/private', (req, res, next) => {
      route(req, res).catch(next);
    });
    return app;
  }

  it('leaves a response alone while the route awaits, so it can still answer 401', async () => {
    server = await startServer(
      appWide(async (_req, res) => {
        await sleep(30); // a session lookup
        res.status(401).json({ error: 'unauthorized' });
      }),
    );
    const s = await open(`${server.url}/private`);
    await s.ended;
    expect(s.response.statusCode).toBe(401);
    expect(s.response.headers['content-type']).toMatch(/^application\/json/);
    expect(s.raw()).toBe('{"error":"unauthorized"}');
  });

  it('answers 403 when a route awaits and then subscribes to a channel authorize refuses', async () => {
    const registry = new ChannelRegistry({ authorize: (_req, channel) => channel === 'public' });
    server = await startServer(
      appWide(async (_req, res) => {
        await sleep(30);
        registry.subscribe(res, ['secret']);
      }),
    );
    const s = await open(`${server.url}/private`);
    await s.ended;
    expect(s.response.statusCode).toBe(403);
    expect(s.raw()).toMatch(/not allowed to subscribe to channel "secret"/);
    expect(registry.channel('secret').size).toBe(0);
  });

  it('opens on the first send, however late', async () => {
    server = await startServer(
      appWide(async (_req, res) => {
        await sleep(30);
        res.sse.send('late');
      }),
    );
    const s = await open(`${server.url}/private`);
    expect(s.response.statusCode).toBe(200);
    expect((await s.waitForEvents(1))[0]?.data).toBe('late');
  });
});

describe('res.sse.close()', () => {
  it('sends what channels queued for the connection before it ends', async () => {
    const registry = new ChannelRegistry();
    const app = express();
    app.get('/events', sse({ heartbeat: false }), async (_req, res) => {
      registry.subscribe(res, 'news');
      await registry.channel('news').broadcast('queued');
      res.sse.close();
    });
    server = await startServer(app);
    const s = await open(`${server.url}/events`);
    await s.ended;
    expect(s.events.map((e) => e.data)).toEqual(['queued']);
  });
});

describe('handler.close()', () => {
  async function serveDirect(events: SseHandler): Promise<{ aborted: () => number; produced: () => number }> {
    let aborted = 0;
    let produced = 0;
    const app = express();
    // A token stream that never ends by itself, a clock on res.sse.send(), and a stream that
    // only awaits: none is in any channel.
    app.get('/tokens', events, async (_req, res) => {
      async function* tokens(signal: AbortSignal): AsyncGenerator<string> {
        for (;;) {
          await sleep(5);
          if (signal.aborted) return; // as an LLM SDK given the signal stops
          produced += 1;
          yield 'token';
        }
      }
      res.sse.signal.addEventListener('abort', () => (aborted += 1));
      await res.sse.pipe(tokens(res.sse.signal));
    });
    app.get('/clock', events, (_req, res) => {
      const timer = setInterval(() => res.sse.send(Date.now()), 10);
      res.sse.signal.addEventListener('abort', () => {
        aborted += 1;
        clearInterval(timer);
      });
    });
    server = await startServer(app);
    return { aborted: () => aborted, produced: () => produced };
  }

  it('ends every stream with a last event, aborts their signals, and lets server.close() finish', async () => {
    const events = sse({ heartbeat: false });
    const state = await serveDirect(events);
    const clients = [await open(`${server!.url}/tokens`), await open(`${server!.url}/clock`), await open(`${server!.url}/tokens`)];
    await Promise.all(clients.map((c) => c.waitForEvents(3)));
    expect(events.stats().connections).toBe(3);
    await events.close({ event: 'shutdown', data: 'bye' });
    await Promise.all(clients.map((c) => c.ended));
    for (const c of clients) expect(c.lastEvent()).toMatchObject({ event: 'shutdown', data: 'bye' });
    expect(state.aborted()).toBe(3);
    const producedAtClose = state.produced();
    await sleep(50);
    expect(state.produced()).toBe(producedAtClose);
    expect(events.stats().connections).toBe(0);
    await closeGently(server!);
    server = undefined;
  });

  it('refuses new streams with 503 afterwards', async () => {
    const events = sse({ heartbeat: false });
    await serveDirect(events);
    await events.close();
    const late = await open(`${server!.url}/clock`);
    await late.ended;
    expect(late.response.statusCode).toBe(503);
    expect(late.response.headers['retry-after']).toBe('10');
  });

  it('resets a client that stopped reading once the timeout expires', async () => {
    const events = sse({ heartbeat: false });
    const app = express();
    app.get('/flood', events, (_req, res) => {
      const chunk = 'z'.repeat(64 * 1024);
      const tick = (): void => {
        if (res.sse.closed) return;
        res.sse.send(chunk);
        setImmediate(tick);
      };
      tick();
    });
    server = await startServer(app);
    const stalled = await openStream(`${server.url}/flood`);
    stalled.response.pause();
    await sleep(100);
    const started = performance.now();
    await events.close({ timeout: 200 });
    // It waited for the timeout (the reader never read), then reset the stream instead of waiting on.
    expect(performance.now() - started).toBeGreaterThanOrEqual(195);
    await closeGently(server);
    server = undefined;
    stalled.destroy();
  });
});

describe('an async authorize hook', () => {
  it('answers 503, never a stream, when the registry closed before the hook answered', async () => {
    let answer: (allowed: boolean) => void = () => undefined;
    const registry = new ChannelRegistry({ authorize: () => new Promise<boolean>((resolve) => (answer = resolve)) });
    const app = express();
    app.get('/events', sse({ heartbeat: false }), (_req, res) => {
      registry.subscribe(res, 'room');
    });
    server = await startServer(app);
    const pending = openStream(`${server.url}/events`);
    await waitUntil(() => answer.length === 1, 'the hook was asked');
    await registry.close();
    answer(true);
    const s = await pending;
    await s.ended;
    expect(s.response.statusCode).toBe(503);
    expect(registry.stats().connections).toBe(0);
    await closeGently(server);
    server = undefined;
  });

  it('opens nothing when the client left before the hook answered', async () => {
    let answer: (allowed: boolean) => void = () => undefined;
    const registry = new ChannelRegistry({ authorize: () => new Promise<boolean>((resolve) => (answer = resolve)) });
    const events = sse({ heartbeat: false });
    const app = express();
    app.get('/events', events, (_req, res) => {
      registry.subscribe(res, 'room');
    });
    server = await startServer(app);
    const pending = openStream(`${server.url}/events`).catch(() => undefined);
    await waitUntil(() => answer.length === 1, 'the hook was asked');
    server.server.closeAllConnections();
    await waitUntil(() => events.stats().connections === 0, 'no stream counted');
    answer(true);
    await sleep(20);
    expect(registry.channel('room').size).toBe(0);
    await pending;
  });

  it('is covered by the handler shutdown while it has not answered', async () => {
    const registry = new ChannelRegistry({ authorize: () => new Promise<boolean>(() => undefined) });
    const events = sse({ heartbeat: false });
    const app = express();
    app.get('/events', events, (_req, res) => {
      registry.subscribe(res, 'room');
    });
    server = await startServer(app);
    const pending = openStream(`${server.url}/events`);
    await sleep(30);
    await events.close();
    const s = await pending;
    await s.ended;
    expect(s.response.statusCode).toBe(503);
  });
});
