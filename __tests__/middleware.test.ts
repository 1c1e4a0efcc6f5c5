import path from 'node:path';
import http from 'node:http';
import request from 'supertest';
import type { ErrorRequestHandler, Express } from 'express';
import { sse } from 'express-sse-hub';
import { EXPRESS_VERSIONS, openStream, startServer, type TestServer } from './helpers/server';

const STATIC_DIR = path.join(__dirname, 'fixtures', 'static');

describe.each(EXPRESS_VERSIONS)('sse() on %s', (_version, express) => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  function ordinaryApp(withSse: boolean): Express {
    const app = express();
    if (withSse) app.use(sse());
    app.use(express.static(STATIC_DIR));
    app.get('/json', (_req, res) => {
      res.json({ ok: true });
    });
    app.get('/boom', () => {
      throw new Error('boom');
    });
    const onError: ErrorRequestHandler = (err: Error, _req, res, _next) => {
      res.status(500).json({ error: err.message });
    };
    app.use(onError);
    return app;
  }

  describe('when mounted app-wide', () => {
    it.each([
      ['a JSON route', '/json'],
      ['a static file', '/hello.txt'],
      ['an error handler', '/boom'],
      ['a missing route', '/nope'],
    ])('leaves %s exactly as it was', async (_what, url) => {
      const strip = (headers: http.IncomingHttpHeaders): http.IncomingHttpHeaders => {
        const { date: _date, ...rest } = headers;
        return rest;
      };
      const plain = await request(ordinaryApp(false)).get(url);
      const withSse = await request(ordinaryApp(true)).get(url);
      expect(withSse.status).toBe(plain.status);
      expect(strip(withSse.headers)).toEqual(strip(plain.headers));
      expect(withSse.text).toBe(plain.text);
    });
  });

  describe('when the request accepts text/event-stream', () => {
    it('sends the stream headers before any event', async () => {
      const app = express();
      app.get('/events', sse(), () => {
        // Deliberately sends nothing: the headers alone must reach the client.
      });
      server = await startServer(app);
      // As a browser does: HTTP/1.1 without "Connection: close".
      const stream = await openStream(`${server.url}/events`, { headers: { connection: 'keep-alive' } });
      expect(stream.response.statusCode).toBe(200);
      expect(stream.response.headers).toMatchObject({
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      expect(stream.response.headers['content-length']).toBeUndefined();
      expect(stream.raw()).toBe('');
      stream.destroy();
    });

    it('honours a client that asked to close instead of promising keep-alive', async () => {
      const app = express();
      app.get('/events', sse(), () => undefined);
      server = await startServer(app);
      const stream = await openStream(`${server.url}/events`, { headers: { connection: 'close' } });
      expect(stream.response.headers.connection).toBe('close');
      stream.destroy();
    });

    it('recognises the media type among several with parameters', async () => {
      const app = express();
      app.get('/events', sse(), () => undefined);
      server = await startServer(app);
      const stream = await openStream(`${server.url}/events`, {
        headers: { accept: 'text/html;q=0.9, TEXT/Event-Stream;q=1' },
      });
      expect(stream.response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      stream.destroy();
    });
  });

  describe('when the request does not ask for an event stream (curl)', () => {
    it('opens the stream on the first send', async () => {
      const app = express();
      app.get('/events', sse(), (_req, res) => {
        res.sse.send('first');
        res.sse.close();
      });
      const response = await request(app).get('/events').set('Accept', '*/*');
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(response.text).toBe('data: first\n\n');
    });
  });

  describe('when mounted twice', () => {
    it('keeps one stream and writes each event once', async () => {
      const app = express();
      app.use(sse({ heartbeat: false }));
      app.get('/events', sse({ retry: 1000 }), (_req, res) => {
        res.sse.send('once');
        res.sse.close();
      });
      const response = await request(app).get('/events').set('Accept', 'text/event-stream');
      expect(response.text).toBe('data: once\n\n');
    });
  });

  describe('when the retry option is set', () => {
    it('sends it first thing on open', async () => {
      const app = express();
      app.get('/events', sse({ retry: 1234 }), (_req, res) => {
        res.sse.send('x');
        res.sse.close();
      });
      const response = await request(app).get('/events').set('Accept', 'text/event-stream');
      expect(response.text).toBe('retry: 1234\n\ndata: x\n\n');
    });
  });

  describe('when the route already sent its headers', () => {
    it('send() throws ERR_SSE_HEADERS_SENT instead of corrupting the body', async () => {
      const app = express();
      let caught: unknown;
      app.get('/late', sse(), (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('plain ');
        try {
          res.sse.send('x');
        } catch (error) {
          caught = error;
        }
        res.end('text');
      });
      const response = await request(app).get('/late');
      expect(response.text).toBe('plain text');
      expect(caught).toMatchObject({ name: 'SseError', code: 'ERR_SSE_HEADERS_SENT' });
    });
  });

  describe('once the stream is open', () => {
    it("lets go of Express's routing state (req.next and the parsed URL), which would live as long as the stream", async () => {
      const app = express();
      let seen: { next: unknown; parsedUrl: unknown; path: string } | undefined;
      app.get('/events/:room', sse(), (req, res) => {
        res.sse.open();
        const routed = req as unknown as { next: unknown; _parsedUrl: unknown };
        seen = { next: routed.next, parsedUrl: routed._parsedUrl, path: req.path };
      });
      server = await startServer(app);
      const stream = await openStream(`${server.url}/events/lobby`);
      // req.path parses the URL again on demand.
      expect(seen).toEqual({ next: undefined, parsedUrl: undefined, path: '/events/lobby' });
      stream.destroy();
    });
  });
});
