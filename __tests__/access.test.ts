// Access control: ordinary Express middleware guards a stream (401 before any stream byte), the
// registry's authorize(req, channel) hook guards each channel (403), a per-subscriber filter
// sends a user only their events, and the cors package allows credentialed cross-origin use.
import cors from 'cors';
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { ChannelRegistry, sse, type Authorize, type SseError } from 'express-sse-hub';
import { queryString, startServer, trackStreams, waitUntil, type TestServer, type TestStream } from './helpers/server';
import { unhandledDuring } from './helpers/unhandled';

let server: TestServer | undefined;
const open = trackStreams();
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A token check as any app writes it: 401 with a JSON body when the token is missing or wrong. */
function requireUser(req: Request, res: Response, next: NextFunction): void {
  const token = req.headers.authorization;
  if (token !== 'Bearer alice' && token !== 'Bearer bob') {
    res.status(401).json({ error: 'unauthorized' });
    return;
  }
  res.locals.user = token.slice('Bearer '.length);
  next();
}

describe('guarding a stream with ordinary Express middleware', () => {
  it('answers 401 before any stream byte when the guard runs before sse() on the route', async () => {
    const app = express();
    app.get('/private', requireUser, sse({ heartbeat: false }), (_req, res) => res.sse.send('secret'));
    server = await startServer(app);
    const denied = await open(`${server.url}/private`);
    await denied.ended;
    expect(denied.response.statusCode).toBe(401);
    expect(denied.response.headers['content-type']).toMatch(/^application\/json/);
    expect(denied.raw()).toBe('{"error":"unauthorized"}');
    const allowed = await open(`${server.url}/private`, { authorization: 'Bearer alice' });
    expect((await allowed.waitForEvents(1))[0]?.data).toBe('secret');
  });

  it('answers 401 before any stream byte even when sse() is mounted app-wide before the guard', async () => {
    // The EventSource request is opened on the next turn, so a guard after sse() still answers first.
    const app = express();
    app.use(sse({ heartbeat: false }));
    app.use(requireUser);
    app.get('/private', (_req, res) => res.sse.send('secret'));
    server = await startServer(app);
    const denied = await open(`${server.url}/private`);
    await denied.ended;
    expect(denied.response.statusCode).toBe(401);
    expect(denied.response.headers['content-type']).toMatch(/^application\/json/);
    expect(denied.count()).toBe(0);
  });
});

describe('the authorize(req, channel) hook', () => {
  function roomsApp(authorize: Authorize): {
    app: express.Express;
    registry: ChannelRegistry;
    errors: Error[];
  } {
    const registry = new ChannelRegistry({ authorize });
    const errors: Error[] = [];
    registry.on('error', (error) => errors.push(error));
    const app = express();
    app.get('/subscribe', requireUser, sse({ heartbeat: false }), (req, res) => {
      registry.subscribe(res, queryString(req.query.rooms).split(','));
    });
    return { app, registry, errors };
  }

  const membership: Record<string, string[]> = { alice: ['lobby', 'alice-only'], bob: ['lobby'] };
  const isMember = (req: Request, channel: string): boolean => membership[String((req.res?.locals as { user?: string }).user)]?.includes(channel) === true;

  it('lets a member in, and answers 403 (no stream byte, no channel joined) to a non-member', async () => {
    const { app, registry } = roomsApp(isMember);
    server = await startServer(app);
    const alice = await open(`${server.url}/subscribe?rooms=lobby,alice-only`, { authorization: 'Bearer alice' });
    expect(alice.response.statusCode).toBe(200);
    const bob = await open(`${server.url}/subscribe?rooms=lobby,alice-only`, { authorization: 'Bearer bob' });
    await bob.ended;
    expect(bob.response.statusCode).toBe(403);
    expect(bob.raw()).toMatch(/not allowed to subscribe to channel "alice-only"/);
    await waitUntil(() => registry.channel('lobby').size === 1, 'alice in the lobby');
    expect(registry.channel('alice-only').size).toBe(1);
    await registry.channel('alice-only').broadcast('for alice');
    expect((await alice.waitForEvents(1))[0]?.data).toBe('for alice');
  });

  it('waits for an async answer without opening the stream, then subscribes or refuses', async () => {
    const slowIsMember = async (req: Request, channel: string): Promise<boolean> => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      return isMember(req, channel);
    };
    const { app, registry } = roomsApp(slowIsMember);
    server = await startServer(app);
    const [alice, bob] = await Promise.all([
      open(`${server.url}/subscribe?rooms=alice-only`, { authorization: 'Bearer alice' }),
      open(`${server.url}/subscribe?rooms=alice-only`, { authorization: 'Bearer bob' }),
    ]);
    expect(alice.response.statusCode).toBe(200);
    expect(bob.response.statusCode).toBe(403);
    await waitUntil(() => registry.channel('alice-only').size === 1, 'alice subscribed');
  });

  it('refuses anything but true (a forgotten return is a refusal)', async () => {
    const { app } = roomsApp((() => undefined) as unknown as () => boolean);
    server = await startServer(app);
    const s = await open(`${server.url}/subscribe?rooms=lobby`, { authorization: 'Bearer alice' });
    expect(s.response.statusCode).toBe(403);
  });

  it.each([
    [
      'throws',
      () => {
        throw new Error('directory down');
      },
    ],
    ['rejects', () => Promise.reject(new Error('directory down'))],
  ])('answers 500 and emits error when the hook %s; the server keeps serving', async (_how, authorize) => {
    const { app, errors } = roomsApp(authorize);
    server = await startServer(app);
    const s = await open(`${server.url}/subscribe?rooms=lobby`, { authorization: 'Bearer alice' });
    expect(s.response.statusCode).toBe(500);
    await waitUntil(() => errors.length === 1, 'the error event');
    expect(errors[0]).toMatchObject({ code: 'ERR_SSE_AUTHORIZE_FAILED' } satisfies Partial<SseError>);
    expect((errors[0]!.cause as Error).message).toBe('directory down');
    const again = await open(`${server.url}/subscribe?rooms=lobby`, { authorization: 'Bearer alice' });
    expect(again.response.statusCode).toBe(500);
  });

  it('leaves no promise unhandled when the hook answers a promise for one channel and throws for the next', async () => {
    // The first channel's answer comes later and is a failure; the second throws at once.
    const authorize = (_req: Request, channel: string): boolean | Promise<boolean> => {
      if (channel === 'lobby') return new Promise((_, reject) => setTimeout(() => reject(new Error('directory down')), 20));
      throw new Error(`no such room: ${channel}`);
    };
    const { app, errors } = roomsApp(authorize);
    const started = await startServer(app);
    server = started;
    const unhandled = await unhandledDuring(async () => {
      const s = await open(`${started.url}/subscribe?rooms=lobby,nowhere`, { authorization: 'Bearer alice' });
      expect(s.response.statusCode).toBe(500);
      await waitUntil(() => errors.length === 1, 'the error event');
      await new Promise((resolve) => setTimeout(resolve, 30)); // past the late answer's rejection
    });
    expect(unhandled).toEqual([]);
  });

  it('guards channel.subscribe() on a registry channel too', async () => {
    const registry = new ChannelRegistry({ authorize: (_req, channel) => channel !== 'admin' });
    const app = express();
    app.get('/admin', sse({ heartbeat: false }), (_req, res) => registry.channel('admin').subscribe(res));
    server = await startServer(app);
    const s = await open(`${server.url}/admin`);
    expect(s.response.statusCode).toBe(403);
    expect(registry.channel('admin').size).toBe(0);
  });

  it('rejects a hook that is not a function', () => {
    expect(() => new ChannelRegistry({ authorize: true as unknown as () => boolean })).toThrow(/authorize must be a function/);
  });
});

describe('a per-subscriber filter', () => {
  it('sends each user only the events addressed to them (or to everyone)', async () => {
    const registry = new ChannelRegistry();
    const app = express();
    app.get('/notifications', requireUser, sse({ heartbeat: false }), (_req, res) => {
      const user = String(res.locals.user);
      registry.channel('notifications').subscribe(res, {
        filter: (event) => {
          const to = (event.data as { to?: string }).to;
          return to === undefined || to === user;
        },
      });
    });
    server = await startServer(app);
    const alice = await open(`${server.url}/notifications`, { authorization: 'Bearer alice' });
    const bob = await open(`${server.url}/notifications`, { authorization: 'Bearer bob' });
    const channel = registry.channel('notifications');
    await waitUntil(() => channel.size === 2, 'both subscribed');
    await channel.broadcast({ to: 'alice', text: 'a1' });
    await channel.broadcast({ to: 'bob', text: 'b1' });
    await channel.broadcast({ text: 'everyone' });
    await channel.broadcast({ to: 'alice', text: 'a2' });
    const texts = (s: TestStream): string[] => s.events.map((e) => (JSON.parse(e.data) as { text: string }).text);
    await alice.waitForEvents(3);
    await bob.waitForEvents(2);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(texts(alice)).toEqual(['a1', 'everyone', 'a2']);
    expect(texts(bob)).toEqual(['b1', 'everyone']);
  });
});

describe('cross-origin streams with credentials (the cors package)', () => {
  function corsApp(): express.Express {
    const app = express();
    app.use(cors({ origin: ['http://app.example'], credentials: true }));
    app.get('/events', sse({ heartbeat: false }), (req, res) => {
      res.sse.send({ cookie: req.headers.cookie ?? null });
      res.sse.close();
    });
    return app;
  }

  it('allows the listed origin with credentials', async () => {
    const res = await request(corsApp()).get('/events').set('Origin', 'http://app.example').set('Cookie', 'session=abc').set('Accept', 'text/event-stream');
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('http://app.example');
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.text).toContain('session=abc');
  });

  it('gives another origin no CORS grant (the browser then hides the stream)', async () => {
    const res = await request(corsApp()).get('/events').set('Origin', 'http://evil.example').set('Accept', 'text/event-stream');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers the preflight of a fetch() POST stream', async () => {
    const res = await request(corsApp())
      .options('/events')
      .set('Origin', 'http://app.example')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'content-type');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('http://app.example');
    expect(res.headers['access-control-allow-credentials']).toBe('true');
  });
});
