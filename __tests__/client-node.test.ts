// The browser client (express-sse-hub/client) in Node 20+, over the global fetch, against real
// Express servers with sse() and a ChannelRegistry with history. Browser-only behaviour (shared
// mode, online, the back/forward cache) is in client-browser.test.ts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import express, { type Response as ExpressResponse } from 'express';
import { ChannelRegistry, sse } from 'express-sse-hub';
import { EventSource, type SseErrorEvent, type SseMessageEvent } from '../src/client';
import { collect, gaps, nextEvent, recordRequests, trackSources, type SeenRequest } from './helpers/client';
import { startServer, waitUntil, type TestServer } from './helpers/server';

const open = trackSources();
let servers: TestServer[] = [];
let registries: ChannelRegistry[] = [];

afterEach(async () => {
  await Promise.all(registries.map((r) => r.close({ timeout: 100 })));
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  registries = [];
});

async function serve(app: http.RequestListener): Promise<string> {
  const server = await startServer(app);
  servers.push(server);
  return server.url;
}

function newRegistry(): ChannelRegistry {
  const registry = new ChannelRegistry({ history: 100 });
  registries.push(registry);
  return registry;
}

/** A server whose /news subscribes each request to the channel `news` (history 100). */
async function serveNews(): Promise<string> {
  const registry = newRegistry();
  const app = express();
  app.get('/news', sse(), (_req, res) => {
    registry.subscribe(res, ['news']);
  });
  return serve(app);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('new EventSource(url) from express-sse-hub/client', () => {
  describe('when the server streams events', () => {
    it('opens, then dispatches named and unnamed events with their ids and origin', async () => {
      const app = express();
      app.get('/events', sse({ heartbeat: false }), (_req, res) => {
        res.sse.send('hello');
        res.sse.send({ n: 1 }, { event: 'tick', id: 'a' });
      });
      const url = await serve(app);
      const source = open(`${url}/events`);
      expect(source.readyState).toBe(EventSource.CONNECTING);
      expect(source.url).toBe(`${url}/events`);
      const opened = nextEvent(source, 'open');
      const message = nextEvent<SseMessageEvent>(source, 'message');
      const tick = nextEvent<SseMessageEvent<{ n: number }>>(source, 'tick');
      await opened;
      expect(source.readyState).toBe(EventSource.OPEN);
      expect((await message).data).toBe('hello');
      const event = await tick;
      expect([event.data, event.json(), event.lastEventId, event.origin]).toEqual(['{"n":1}', { n: 1 }, 'a', url]);
      expect(event).toBeInstanceOf(MessageEvent);
      expect(source.lastEventId).toBe('a');
    });

    it('keeps the position an id-only frame announces as its lastEventId, firing no event', async () => {
      const url = await serveNews();
      const source = open(`${url}/news`);
      const messages = collect(source);
      await waitUntil(() => source.lastEventId !== '', 'the position frame');
      expect(source.lastEventId).toMatch(/^0\.[0-9a-z]+$/);
      expect(messages).toEqual([]);
    });

    it('decodes UTF-8 split anywhere and strips a leading BOM', async () => {
      const bytes = Buffer.from('\uFEFFdata: é😀\r\n\r\nid: 1\ndata: ok\n\n');
      const server = http.createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // One byte per write, each flushed separately.
        let i = 0;
        const next = (): void => {
          if (i === bytes.length) return;
          res.write(bytes.subarray(i, i + 1), () => setTimeout(next, 1));
          i += 1;
        };
        next();
      });
      const url = await serve(server.listeners('request')[0] as http.RequestListener);
      const source = open(url);
      const messages = collect(source);
      await waitUntil(() => messages.length === 2, 'two events');
      expect(messages).toEqual(['é😀', 'ok']);
    });

    it('fires nothing more once close() is called, even from a listener in the middle of a chunk', async () => {
      const app = express();
      app.get('/events', sse({ heartbeat: false }), (_req, res) => {
        for (let n = 1; n <= 5; n += 1) res.sse.send(String(n));
      });
      const url = await serve(app);
      const source = open(`${url}/events`);
      const messages: string[] = [];
      source.onmessage = (event) => {
        messages.push(event.data);
        if (event.data === '2') source.close();
      };
      await waitUntil(() => messages.length >= 2, 'two events');
      await sleep(50);
      expect(messages).toEqual(['1', '2']);
      expect(source.readyState).toBe(EventSource.CLOSED);
    });
  });

  describe('when headers is a function', () => {
    it('calls it before every connect, so a refreshed token is used on reconnect', async () => {
      const seen: SeenRequest[] = [];
      const app = express();
      app.get('/private', recordRequests(seen), sse({ retry: 20, heartbeat: false }), (req, res) => {
        res.sse.send(req.get('authorization') ?? 'none');
        res.sse.close();
      });
      const url = await serve(app);
      let calls = 0;
      const source = open(`${url}/private`, {
        headers: async () => {
          calls += 1;
          await sleep(5); // a token refresh
          return { Authorization: `Bearer token-${calls}` };
        },
      });
      const messages = collect(source);
      await waitUntil(() => messages.length === 3, 'three connections');
      expect(messages).toEqual(['Bearer token-1', 'Bearer token-2', 'Bearer token-3']);
      expect(seen.map((r) => r.headers.accept)).toEqual(['text/event-stream', 'text/event-stream', 'text/event-stream']);
    });

    it('fires error and tries again when it throws', async () => {
      const app = express();
      app.get('/private', sse({ heartbeat: false }), (_req, res) => res.sse.send('in'));
      const url = await serve(app);
      let calls = 0;
      const source = open(`${url}/private`, {
        headers: () => {
          calls += 1;
          if (calls === 1) throw new Error('token service down');
          return { Authorization: 'Bearer ok' };
        },
      });
      const error = await nextEvent<SseErrorEvent>(source, 'error');
      expect([error.status, error.message, source.readyState]).toEqual([undefined, 'express-sse-hub: token service down', EventSource.CONNECTING]);
      expect(error.reconnectIn).toBeGreaterThanOrEqual(3000); // the default reconnection time, backed off
      source.close();
    });
  });

  describe('when method and body are given', () => {
    it('POSTs the body, and sends it again on reconnect', async () => {
      const app = express();
      app.post('/ai', express.json(), sse({ retry: 20, heartbeat: false }), (req, res) => {
        res.sse.send(req.body, { event: 'echo' });
        res.sse.close();
      });
      const url = await serve(app);
      const source = open(`${url}/ai`, { method: 'POST', body: JSON.stringify({ prompt: 'hi' }), headers: { 'Content-Type': 'application/json' } });
      const echoes = collect(source, 'echo');
      await waitUntil(() => echoes.length === 2, 'two answers');
      expect(echoes.map((e) => JSON.parse(e) as unknown)).toEqual([{ prompt: 'hi' }, { prompt: 'hi' }]);
    });
  });

  describe('when the connection drops', () => {
    function newsApp(registry: ChannelRegistry, seen: SeenRequest[], streams: ExpressResponse[]): express.Express {
      const app = express();
      app.get('/news', recordRequests(seen), sse({ retry: 50 }), (_req, res) => {
        streams.push(res);
        registry.subscribe(res, ['news']);
      });
      return app;
    }

    it.each([
      ['the server resets the connection', (res: ExpressResponse) => res.destroy()],
      ['the server ends the stream', (res: ExpressResponse) => res.sse.close()],
    ])('reconnects with Last-Event-ID and gets exactly the missed events when %s', async (_how, drop) => {
      const registry = newRegistry();
      const seen: SeenRequest[] = [];
      const streams: ExpressResponse[] = [];
      const url = await serve(newsApp(registry, seen, streams));
      const source = open(`${url}/news`);
      const news = collect(source, 'news');
      await waitUntil(() => source.lastEventId !== '', 'the position frame');
      const channel = registry.channel('news');
      for (const n of [1, 2, 3]) await channel.broadcast(n, { event: 'news' });
      await waitUntil(() => news.length === 3, 'three events');
      const before = source.lastEventId;
      const errored = nextEvent<SseErrorEvent>(source, 'error');
      drop(streams[0]!);
      for (const n of [4, 5, 6]) await channel.broadcast(n, { event: 'news' });
      const error = await errored;
      expect([error.status, error.reconnectIn, source.readyState]).toEqual([undefined, 50, EventSource.CONNECTING]);
      await nextEvent(source, 'open');
      await channel.broadcast(7, { event: 'news' });
      await waitUntil(() => news.length === 7, 'seven events');
      await sleep(30);
      expect(news).toEqual(['1', '2', '3', '4', '5', '6', '7']);
      expect(seen.map((r) => r.headers['last-event-id'])).toEqual([undefined, before]);
    });

    it('resumes exactly from the id-only frame when it got no event before the drop', async () => {
      const registry = newRegistry();
      const seen: SeenRequest[] = [];
      const streams: ExpressResponse[] = [];
      const url = await serve(newsApp(registry, seen, streams));
      const source = open(`${url}/news`);
      const news = collect(source, 'news');
      await waitUntil(() => source.lastEventId !== '', 'the position frame');
      const position = source.lastEventId;
      streams[0]!.destroy();
      for (const n of [1, 2]) await registry.channel('news').broadcast(n, { event: 'news' });
      await waitUntil(() => news.length === 2, 'the missed events');
      expect(news).toEqual(['1', '2']);
      expect(seen[1]?.headers['last-event-id']).toBe(position);
    });

    it('waits the reconnection time the server set with retry:', async () => {
      const seen: SeenRequest[] = [];
      const app = express();
      app.get('/short', recordRequests(seen), (_req, res) => {
        res.type('text/event-stream').end('retry: 300\ndata: x\n\n');
      });
      const url = await serve(app);
      const source = open(`${url}/short`);
      await waitUntil(() => seen.length === 3, 'two reconnects', 3000);
      source.close();
      // Never sooner (how much later is the machine's business: client-timing.test.ts pins the
      // timer itself on a fake clock).
      for (const gap of gaps(seen)) expect(gap).toBeGreaterThanOrEqual(298);
    });
  });

  describe.each([
    [429, 'maxConnectionsPerKey', { maxConnectionsPerKey: 1, retryAfter: 1 }],
    [503, 'maxConnections', { maxConnections: 1, retryAfter: 1 }],
  ] as const)('when the server answers %i (%s) with Retry-After: 1', (status, _option, options) => {
    it('fires error with the status, waits the backoff (longer than Retry-After here), then connects', async () => {
      const seen: SeenRequest[] = [];
      const app = express();
      app.get('/limited', recordRequests(seen), sse({ ...options, heartbeat: false }), (_req, res) => res.sse.send('in'));
      const url = await serve(app);
      const first = open(`${url}/limited`, { headers: { 'x-client': 'first' } });
      await nextEvent(first, 'message');
      const second = open(`${url}/limited`, { headers: { 'x-client': 'second' } });
      const error = await nextEvent<SseErrorEvent>(second, 'error');
      expect([error.status, second.readyState]).toEqual([status, EventSource.CONNECTING]);
      // Retry-After is a floor: the backoff from the reconnection time (3 s) is longer.
      expect(error.reconnectIn).toBeGreaterThanOrEqual(3000);
      expect(error.reconnectIn).toBeLessThanOrEqual(6000);
      expect(error.message).toBe(`express-sse-hub: ${url}/limited answered ${status}`);
      first.close();
      await nextEvent(second, 'message', 10_000);
      const attempts = seen.filter((r) => r.headers['x-client'] === 'second');
      expect(attempts).toHaveLength(2);
      expect(gaps(attempts)[0]).toBeGreaterThanOrEqual(error.reconnectIn! - 2);
    }, 20_000);
  });

  describe('when the server answers 500 without Retry-After', () => {
    it('backs off exponentially with jitter from the reconnection time', async () => {
      const seen: SeenRequest[] = [];
      const app = express();
      app.get('/flaky', recordRequests(seen), (_req, res, next) => {
        if (seen.length === 1) res.type('text/event-stream').end('retry: 100\n\n');
        else if (seen.length <= 4) res.status(500).end();
        else next();
      }, sse({ heartbeat: false }), (_req, res) => res.sse.send('finally'));
      const url = await serve(app);
      const source = open(`${url}/flaky`);
      const errors: SseErrorEvent[] = [];
      source.addEventListener('error', (event) => errors.push(event));
      await nextEvent(source, 'message', 5000);
      // The stream ended: the reconnection time. Then three 500s: [100, 200], [200, 400], [400, 800] ms.
      expect(errors.map((e) => e.status)).toEqual([undefined, 500, 500, 500]);
      const delays = errors.map((e) => e.reconnectIn!);
      expect(delays[0]).toBe(100);
      [[100, 200], [200, 400], [400, 800]].forEach(([low, high], i) => {
        expect(delays[i + 1]).toBeGreaterThanOrEqual(low!);
        expect(delays[i + 1]).toBeLessThanOrEqual(high!);
      });
      gaps(seen).forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(delays[i]! - 2));
    });
  });

  describe('when the server cannot be reached', () => {
    it('fires error without a status and keeps trying', async () => {
      const server = await startServer(express());
      const { url } = server;
      await server.close();
      const source = open(url);
      const error = await nextEvent<SseErrorEvent>(source, 'error');
      expect([error.status, source.readyState]).toEqual([undefined, EventSource.CONNECTING]);
      expect(error.message).toMatch(/^express-sse-hub: /);
    });
  });

  describe.each([
    [204, 'No Content'],
    [401, 'Unauthorized'],
    [403, 'Forbidden'],
    [404, 'Not Found'],
  ])('when the server answers %i', (status) => {
    it('closes for good and fires error with the status', async () => {
      const seen: SeenRequest[] = [];
      const app = express();
      app.get('/refused', recordRequests(seen), (_req, res) => {
        res.status(status).json({ error: 'no' });
      });
      const url = await serve(app);
      const source = open(`${url}/refused`);
      const error = await nextEvent<SseErrorEvent>(source, 'error');
      expect([error.status, error.reconnectIn, source.readyState]).toEqual([status, undefined, EventSource.CLOSED]);
      await sleep(300);
      expect(seen).toHaveLength(1);
    });
  });

  describe('when a 200 is not text/event-stream', () => {
    it('closes for good', async () => {
      const app = express();
      app.get('/json', (_req, res) => res.json({ not: 'a stream' }));
      const url = await serve(app);
      const source = open(`${url}/json`);
      const error = await nextEvent<SseErrorEvent>(source, 'error');
      expect([error.status, source.readyState, error.message]).toEqual([200, EventSource.CLOSED, `express-sse-hub: ${url}/json is not a text/event-stream`]);
    });
  });

  describe('when a reset arrives', () => {
    it('dispatches it as a named event with its data', async () => {
      const url = await serveNews();
      const source = open(`${url}/news`, { lastEventId: '5.gone' });
      const reset = await nextEvent<SseMessageEvent<{ channel: string; lastEventId: string; reason: string }>>(source, 'reset');
      expect(reset.json()).toEqual({ channel: 'news', lastEventId: '5.gone', reason: 'unknown-id' });
    });
  });

  describe('with the other init fields', () => {
    it('sends lastEventId as Last-Event-ID on the first connect', async () => {
      const seen: SeenRequest[] = [];
      const app = express();
      app.get('/e', recordRequests(seen), sse(), (_req, res) => res.sse.send('x'));
      const url = await serve(app);
      const source = open(`${url}/e`, { lastEventId: '41' });
      await nextEvent(source, 'message');
      expect(seen[0]?.headers['last-event-id']).toBe('41');
      expect(source.lastEventId).toBe('41');
    });

    it('uses the fetch it is given', async () => {
      const app = express();
      app.get('/e', sse(), (_req, res) => res.sse.send('x'));
      const url = await serve(app);
      const calls: string[] = [];
      const source = open(`${url}/e`, {
        fetch: (input, init) => {
          calls.push(`${init.method ?? ''} ${input}`);
          return fetch(input, init);
        },
      });
      await nextEvent(source, 'message');
      expect(calls).toEqual([`GET ${url}/e`]);
    });

    it('reflects withCredentials and credentials', () => {
      const url = 'http://127.0.0.1:9/';
      const sources = [open(url, { withCredentials: true }), open(url), open(url, { credentials: 'include' }), open(url, { withCredentials: true, credentials: 'omit' })];
      expect(sources.map((s) => s.withCredentials)).toEqual([true, false, true, false]);
      for (const s of sources) s.close();
    });

    it('connects on its own with shared: true where Web Locks are missing (Node)', async () => {
      const app = express();
      app.get('/e', sse(), (_req, res) => res.sse.send('x'));
      const url = await serve(app);
      const source = open(`${url}/e`, { shared: true });
      expect((await nextEvent<SseMessageEvent>(source, 'message')).data).toBe('x');
    });

    it('throws a TypeError naming the method for a body with GET', () => {
      expect(() => new EventSource('http://127.0.0.1:9/', { body: '{}' })).toThrow('express-sse-hub: body needs a method such as POST, got method "GET"');
    });

    it('throws a SyntaxError for a relative URL where there is no page to resolve it against', () => {
      expect(() => new EventSource('/events')).toThrow(expect.objectContaining({ name: 'SyntaxError' }) as Error);
    });
  });

  describe('its event handler attributes', () => {
    it('call one listener each, replaceable and removable, with the source as this', async () => {
      const app = express();
      app.get('/e', sse({ heartbeat: false }), (_req, res) => {
        for (const n of [1, 2, 3]) setTimeout(() => res.sse.send(String(n)), n * 50);
      });
      const url = await serve(app);
      const source = open(`${url}/e`);
      const calls: string[] = [];
      source.onopen = function () {
        calls.push(`open ${this === source}`);
      };
      source.onmessage = (event) => calls.push(`first ${event.data}`);
      expect(typeof source.onmessage).toBe('function');
      await nextEvent(source, 'message');
      source.onmessage = (event) => calls.push(`second ${event.data}`);
      await nextEvent(source, 'message');
      source.onmessage = null;
      await nextEvent(source, 'message');
      expect(calls).toEqual(['open true', 'first 1', 'second 2']);
      expect([source.onmessage, source.onerror]).toEqual([null, null]);
    });

    it('keeps the constants of the standard on the class and on instances', () => {
      const source = open('http://127.0.0.1:9/');
      source.close();
      expect([EventSource.CONNECTING, EventSource.OPEN, EventSource.CLOSED]).toEqual([0, 1, 2]);
      expect([source.CONNECTING, source.OPEN, source.CLOSED, source.readyState]).toEqual([0, 1, 2, 2]);
    });
  });
});

describe('event ids that are not ASCII', () => {
  // 'Ã©' is two Latin-1 characters whose bytes, sent one each, would read back as UTF-8 'é'.
  it.each(['naïve…', '日本語', '😀', 'Ã©', 'café'])('go back as UTF-8 in Last-Event-ID, and res.sse.lastEventId reads %s as sent', async (id) => {
    const seen: (string | undefined)[] = [];
    const app = express();
    app.get('/e', sse({ retry: 20, heartbeat: false }), (_req, res) => {
      seen.push(res.sse.lastEventId);
      if (seen.length === 1) {
        res.sse.send('first', { id });
        res.sse.close();
      } else res.sse.send('back');
    });
    const url = await serve(app);
    const source = open(`${url}/e`);
    const messages = collect(source);
    await waitUntil(() => messages.length === 2, 'the reconnect');
    expect(seen).toEqual([undefined, id]);
    expect(source.lastEventId).toBe(id);
  });
});

describe('when a custom fetch answers a 200 event stream without a web ReadableStream body', () => {
  it.each([
    ['a string', 'not a stream'],
    ['no body', undefined],
    ['a Node stream (node-fetch)', Readable.from(['data: x\n\n'])],
  ])('fails for good at once (%s): no open, no reconnect loop', async (_what, body) => {
    let calls = 0;
    const source = open('http://127.0.0.1:9/e', {
      fetch: () => {
        calls += 1;
        return Promise.resolve({ status: 200, headers: new Headers({ 'content-type': 'text/event-stream' }), body, url: '' } as unknown as Response);
      },
    });
    const events: string[] = [];
    source.onopen = () => events.push('open');
    const error = await nextEvent<SseErrorEvent>(source, 'error');
    expect([error.status, error.reconnectIn, source.readyState]).toEqual([200, undefined, EventSource.CLOSED]);
    expect(error.message).toBe('express-sse-hub: the response of http://127.0.0.1:9/e has no readable body (fetch must return a web ReadableStream)');
    await sleep(100);
    expect([calls, events]).toEqual([1, []]);
  });
});

describe('when the URL is not one fetch can load', () => {
  it.each(['ftp://example.invalid/', 'about:blank', 'mailto:whatwg@example.invalid', "javascript:alert('x')"])('fails for good (%s), as EventSource does', async (url) => {
    const source = open(url);
    const error = await nextEvent<SseErrorEvent>(source, 'error');
    expect([error.status, error.reconnectIn, source.readyState]).toEqual([undefined, undefined, EventSource.CLOSED]);
  });
});

describe('for await (const event of source)', () => {
  it('yields every message event of any type, in order, and closes the source when the loop is left', async () => {
    const app = express();
    app.get('/e', sse({ heartbeat: false }), (_req, res) => {
      res.sse.send('one', { id: '1' });
      res.sse.send({ n: 2 }, { event: 'tick', id: '2' });
      res.sse.send('three', { id: '3' });
      res.sse.send('four', { id: '4' });
    });
    const url = await serve(app);
    const source = open(`${url}/e`);
    const seen: [string, string, string][] = [];
    for await (const event of source) {
      seen.push([event.type, event.data, event.lastEventId]);
      if (event.data === 'three') break;
    }
    expect(seen).toEqual([
      ['message', 'one', '1'],
      ['tick', '{"n":2}', '2'],
      ['message', 'three', '3'],
    ]);
    expect(source.readyState).toBe(EventSource.CLOSED);
  });

  it('ends when close() is called elsewhere, dropping what it had not yielded', async () => {
    const app = express();
    app.get('/e', sse({ heartbeat: false }), (_req, res) => {
      res.sse.send('one');
      setTimeout(() => res.sse.send('two'), 50);
    });
    const url = await serve(app);
    const source = open(`${url}/e`);
    source.addEventListener('message', (event) => {
      if (event.data === 'two') source.close();
    });
    const seen: string[] = [];
    for await (const event of source) {
      seen.push(event.data);
      await sleep(100); // 'two' arrives, and closes the source, while the body runs
    }
    expect(seen).toEqual(['one']);
  });

  it('throws the failure that closed the source for good, after the events before it', async () => {
    let requests = 0;
    const app = express();
    app.get('/e', (_req, res, next) => (++requests === 1 ? next() : res.status(401).end()), sse({ retry: 10, heartbeat: false }), (_req, res) => {
      res.sse.send('only');
      res.sse.close();
    });
    const url = await serve(app);
    const source = open(`${url}/e`);
    const seen: string[] = [];
    const error = await (async () => {
      try {
        for await (const event of source) seen.push(event.data);
      } catch (thrown) {
        return thrown as Error;
      }
      return undefined;
    })();
    expect(seen).toEqual(['only']);
    expect(error?.message).toBe(`express-sse-hub: ${url}/e answered 401`);
    expect((error?.cause as SseErrorEvent).status).toBe(401);
    expect(source.readyState).toBe(EventSource.CLOSED);
  });
});

describe('a large event', () => {
  it('arrives whole: 8 MiB of data in one line, written in 64 KiB pieces', async () => {
    const line = 'x'.repeat(8 * 1024 * 1024);
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const frame = Buffer.from(`id: big\ndata: ${line}\n\n`);
      let at = 0;
      const next = (): void => {
        while (at < frame.length) {
          const piece = frame.subarray(at, at + 65_536);
          at += piece.length;
          if (!res.write(piece)) {
            res.once('drain', next);
            return;
          }
        }
      };
      next();
    });
    const source = open(url);
    const event = await nextEvent<SseMessageEvent>(source, 'message', 60_000);
    expect([event.data.length, event.data === line, event.lastEventId]).toEqual([line.length, true, 'big']);
  }, 90_000);
});

describe("the built 'express-sse-hub/client'", () => {
  const ROOT = path.join(__dirname, '..');
  /** Runs a script in a fresh Node process inside the package, so the name resolves through "exports". */
  const run = (args: string[]): unknown =>
    JSON.parse(execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] })) as unknown;

  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'client', 'index.mjs'))) throw new Error('dist/client is missing: run `npm run build` (npm test does it for you)');
  });

  it('is one ES module file that imports nothing (what a page loads)', () => {
    const code = fs.readFileSync(path.join(ROOT, 'dist', 'client', 'index.mjs'), 'utf8');
    expect(code).not.toMatch(/^\s*import\b|\bimport\(|\brequire\(/m);
    expect(code).toMatch(/export\s*\{\s*EventSource\s*\}/);
  });

  it('loads with import and with require, exporting EventSource only', () => {
    const esm = `import * as client from 'express-sse-hub/client';
      console.log(JSON.stringify([Object.keys(client), typeof client.EventSource.CONNECTING]));`;
    expect(run(['--input-type=module', '-e', esm])).toEqual([['EventSource'], 'number']);
    const cjs = `const client = require('express-sse-hub/client');
      console.log(JSON.stringify([Object.keys(client), new client.EventSource('http://127.0.0.1:9/').readyState]));
      process.exit(0);`;
    expect(run(['-e', cjs])).toEqual([['EventSource'], 0]);
  });

  it('is one class for require and import: instanceof holds across them', () => {
    const esm = `import { createRequire } from 'node:module';
      import { EventSource } from 'express-sse-hub/client';
      const required = createRequire(import.meta.url)('express-sse-hub/client').EventSource;
      const a = new EventSource('http://127.0.0.1:9/');
      const b = new required('http://127.0.0.1:9/');
      a.close();
      b.close();
      console.log(JSON.stringify([EventSource === required, a instanceof required, b instanceof EventSource]));`;
    expect(run(['--input-type=module', '-e', esm])).toEqual([true, true, true]);
    const cjs = `const { EventSource } = require('express-sse-hub/client');
      import('express-sse-hub/client').then((imported) => {
        const a = new imported.EventSource('http://127.0.0.1:9/');
        a.close();
        console.log(JSON.stringify([imported.EventSource === EventSource, a instanceof EventSource]));
      });`;
    expect(run(['-e', cjs])).toEqual([true, true]);
  });
});
