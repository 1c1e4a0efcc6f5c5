import http from 'node:http';
import express from 'express';
import { Channel, ChannelRegistry, MemoryAdapter, sse, type SseStream } from 'express-sse-hub';
import { openStream, queryString, startServer, waitUntil, type TestServer } from './helpers/server';

describe('registry.channel()', () => {
  it('returns the same channel for the same name', () => {
    const registry = new ChannelRegistry();
    const news = registry.channel('news');
    expect(registry.channel('news')).toBe(news);
    expect(news).toBeInstanceOf(Channel);
    expect(registry.has('news')).toBe(true);
    expect(registry.has('sport')).toBe(false);
  });

  it('applies registry defaults, overridden per channel', () => {
    const registry = new ChannelRegistry({ history: 10 });
    expect(registry.channel('a').hasHistory).toBe(true);
    expect(registry.channel('b', { history: false }).hasHistory).toBe(false);
  });

  it('validates names and options', () => {
    const registry = new ChannelRegistry();
    expect(() => registry.channel('')).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_CHANNEL' }) as Error);
    expect(() => registry.channel('x', { history: -2 })).toThrow(/history must be/);
    expect(() => new ChannelRegistry({ maxBufferedBytes: -1 })).toThrow(/maxBufferedBytes must be/);
  });

  it('numbers each channel in its own log, whose epoch is in every id', async () => {
    const registry = new ChannelRegistry({ history: 5 });
    const a1 = await registry.channel('a').broadcast('x');
    const b1 = await registry.channel('b').broadcast('y');
    const a2 = await registry.channel('a').broadcast('z');
    const [epochA, epochB] = [a1.id!.split('.')[1], b1.id!.split('.')[1]];
    expect([a1.id, b1.id, a2.id]).toEqual([`1.${epochA}`, `1.${epochB}`, `2.${epochA}`]);
    expect(epochA).toMatch(/^[0-9a-z]{8}$/);
    expect(epochB).not.toBe(epochA);
    await expect(registry.head(['a', 'b'])).resolves.toBe(`2.${epochA},1.${epochB}`);
    expect(registry.stats().channels).toMatchObject({ a: { events: 2 }, b: { events: 1 } });
  });

  it('resolves concurrent broadcasts each with its own id', async () => {
    const registry = new ChannelRegistry({ history: 5 });
    const results = await Promise.all([registry.channel('a').broadcast('one'), registry.channel('a').broadcast('two')]);
    expect(results.map((r) => r.id?.split('.')[0])).toEqual(['1', '2']);
  });

  it('refuses a custom id on a channel with history, and sends it as it is on one without', async () => {
    const registry = new ChannelRegistry({ history: 5 });
    await expect(registry.channel('a').broadcast('x', { id: 'mine' })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_SSE_INVALID_ID' });
    await expect(registry.channel('b', { history: false }).broadcast('x', { id: 'mine' })).resolves.toEqual({ id: 'mine', delivered: 0 });
  });

  it('starts new epochs in a new process life, so old ids are unknown', async () => {
    const before = await new ChannelRegistry({ history: 5 }).channel('a').broadcast('x');
    const after = await new ChannelRegistry({ history: 5 }).channel('a').broadcast('x');
    expect(after.id).not.toBe(before.id);
    expect(after.id!.startsWith('1.')).toBe(true);
  });
});

const gc = (globalThis as { gc?: () => void }).gc;
const itWithGc = gc === undefined ? it.skip : it;

// Collected channels leave through a FinalizationRegistry, whose callbacks run on a later turn.
async function collect(): Promise<number> {
  for (let i = 0; i < 3; i += 1) {
    gc!();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

describe('registry.channel(name, options) when nobody uses the channel for a while', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  itWithGc('keeps the options a name was created with, also after the channel object was collected', async () => {
    const registry = new ChannelRegistry();
    const subscribeRoute = (): void => void registry.channel('news', { history: 50 });
    subscribeRoute();
    await collect();
    // The publish route names no options: the news channel still keeps history.
    const news = registry.channel('news');
    expect(news.hasHistory).toBe(true);
    const { id } = await news.broadcast('x');
    expect(id).toMatch(/^1\./);
  });

  it('refuses other options for a name than those it was created with', () => {
    const registry = new ChannelRegistry({ history: 10 });
    registry.channel('news', { history: 50 });
    expect(registry.channel('news', { history: 50 })).toBe(registry.channel('news'));
    expect(() => registry.channel('news', { history: 20 })).toThrow(/options of channel "news" must be the ones it was created with \(\{ history: 50 \}\)/);
    registry.channel('sport');
    expect(() => registry.channel('sport', { history: false })).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }) as Error);
  });

  itWithGc('holds nothing more for a channel whose subscribers come and go 100 000 times', async () => {
    const registry = new ChannelRegistry({ history: 10 });
    const app = express();
    let stream: SseStream | undefined;
    app.get('/s', sse({ heartbeat: false }), (_req, res) => {
      stream = res.sse;
      res.sse.open();
    });
    server = await startServer(app);
    const client = await openStream(`${server.url}/s`);
    await waitUntil(() => stream !== undefined, 'the stream is open');
    const news = registry.channel('news');
    const flap = (times: number): void => {
      for (let i = 0; i < times; i += 1) news.subscribe(stream!, { replay: false })();
    };
    flap(1000);
    const before = await collect();
    flap(100_000);
    const after = await collect();
    client.destroy();
    // Each time the channel empties it may be collected; it must not add an entry each time.
    expect(after - before).toBeLessThan(2 * 1024 * 1024);
  }, 60_000);
});

describe('registry.stats()', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('counts connections, events, bytes and replays', async () => {
    const registry = new ChannelRegistry({ history: 10 });
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false }), (req, res) => {
      registry.subscribe(res, queryString(req.query.channels).split(','));
    });
    server = await startServer(app);
    const before = await registry.channel('a').broadcast('before');
    const epochA = before.id!.split('.')[1]!;
    const one = await openStream(`${server.url}/subscribe?channels=a,b`);
    // Before "before": replays it.
    const two = await openStream(`${server.url}/subscribe?channels=a`, { headers: { 'last-event-id': `0.${epochA}` } });
    await waitUntil(() => registry.channel('a').size === 2 && registry.channel('b').size === 1, 'both in a, one in b');
    await one.waitForEvents(0);
    await waitUntil(() => one.lastEventId() !== undefined, 'one knows where it is');
    const bStart = one.lastEventId()!.split(',')[1]!;
    const hello = await registry.channel('a').broadcast('hello');
    const b = await registry.channel('b').broadcast('b');
    await one.waitForEvents(2);
    await two.waitForEvents(2);
    // "one" is in two channels with history: each of its events carries its place in both.
    const bytes = (text: string): number => Buffer.byteLength(text);
    const toTwo = bytes(`data: before\nid: ${before.id}\n\n`) + bytes(`data: hello\nid: ${hello.id}\n\n`);
    const toOne = bytes(`data: hello\nid: ${hello.id},${bStart}\n\n`);
    const bToOne = bytes(`data: b\nid: ${hello.id},${b.id}\n\n`);
    expect(registry.stats()).toEqual({
      connections: 2,
      subscriptions: 3,
      events: 3,
      // before + hello to two, hello + b to one.
      deliveries: 4,
      bytes: toTwo + toOne + bToOne,
      dropped: 0,
      droppedBy: { 'slow-client': 0, 'write-failed': 0 },
      replays: 1,
      resets: 0,
      resetsBy: { 'unknown-id': 0, evicted: 0, lost: 0 },
      adapterErrors: 0,
      invalidMessages: 0,
      runs: 0,
      channels: {
        a: { subscribers: 2, events: 2, bytes: toTwo + toOne, dropped: 0, replays: 1, resets: 0 },
        b: { subscribers: 1, events: 1, bytes: bToOne, dropped: 0, replays: 0, resets: 0 },
      },
    });
    one.destroy();
    two.destroy();
    await waitUntil(() => registry.stats().connections === 0, 'connections drop to 0');
  });

  it.each(['__proto__', 'constructor', 'hasOwnProperty'])('reports a channel named %s like any other', async (name) => {
    const registry = new ChannelRegistry();
    const channel = registry.channel(name);
    await channel.broadcast('x');
    const { channels } = registry.stats();
    expect(Object.keys(channels)).toEqual([name]);
    expect(Object.getOwnPropertyDescriptor(channels, name)?.value).toEqual(channel.stats());
    expect(channel.stats().events).toBe(1);
  });
});

describe('registry.stats() counts a connection once', () => {
  it('counts a dropped client in three channels as one drop', async () => {
    const registry = new ChannelRegistry({ maxBufferedBytes: 64 * 1024 });
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => registry.subscribe(res, ['a', 'b', 'c']));
    const server = await startServer(app);
    try {
      const stalled = await openStream(`${server.url}/subscribe`);
      stalled.response.pause();
      await waitUntil(() => registry.stats().connections === 1, 'subscribed');
      const payload = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 2000 && registry.stats().connections > 0; i += 1) {
        await registry.channel(['a', 'b', 'c'][i % 3]!).broadcast(payload);
        if (i % 20 === 19) await new Promise((resolve) => setImmediate(resolve));
      }
      await waitUntil(() => registry.stats().connections === 0, 'the slow client dropped');
      const stats = registry.stats();
      expect(stats.dropped).toBe(1);
      expect(stats.droppedBy['slow-client']).toBe(1);
      stalled.destroy();
    } finally {
      await server.close();
    }
  });
});

describe('shared log reads', () => {
  // The in-process adapter, slowed: a read after positions answers 1 s after it was sent, with the
  // log as it was then (a far Redis).
  class SlowReads extends MemoryAdapter {
    override read(...args: Parameters<MemoryAdapter['read']>): ReturnType<MemoryAdapter['read']> {
      const result = super.read(...args);
      if (args[1] === undefined) return result;
      return new Promise((resolve) => setTimeout(() => resolve(result), 1000));
    }
  }

  it('never hand a later connection a read that started before delivery stopped (it would miss what came since)', async () => {
    const registry = new ChannelRegistry({ adapter: new SlowReads(), history: 10 });
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => registry.subscribe(res, 'a'));
    const server = await startServer(app);
    try {
      const feed = registry.channel('a');
      const { id: seen } = await feed.broadcast('seen');
      await feed.broadcast('e1');
      // A client reads after `seen` and leaves while its read is in flight; e2 comes while nobody
      // here listens (logged, not fanned out).
      const early = await openStream(`${server.url}/subscribe`, { headers: { 'last-event-id': seen! } });
      await waitUntil(() => feed.size === 1, 'the early client in');
      early.destroy();
      await waitUntil(() => feed.size === 0, 'the early client gone');
      await feed.broadcast('e2');
      const late = await openStream(`${server.url}/subscribe`, { headers: { 'last-event-id': seen! } });
      await late.waitForEvents(2, 4000);
      expect(late.events.map((e) => e.data)).toEqual(['e1', 'e2']);
      late.destroy();
    } finally {
      await server.close();
    }
  }, 10_000);
});

describe('registry.close()', () => {
  describe('with 1 000 open streams', () => {
    it('sends the last event once per connection and lets server.close() finish', async () => {
      const registry = new ChannelRegistry();
      const app = express();
      app.get('/subscribe', sse(), (_req, res) => registry.subscribe(res, ['a', 'b']));
      const server = http.createServer(app);
      server.maxConnections = 2000;
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as { port: number };
      const clients = [];
      for (let i = 0; i < 1000; i += 50) {
        clients.push(...(await Promise.all(Array.from({ length: 50 }, () => openStream(`http://127.0.0.1:${port}/subscribe`, { retain: true })))));
      }
      await waitUntil(() => registry.stats().connections === 1000, '1000 connections');
      await registry.close({ event: 'shutdown', data: { reason: 'deploy' } });
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(clients.map((c) => c.ended));
      expect(clients.every((c) => c.events.length === 1 && c.events[0]?.event === 'shutdown')).toBe(true);
      expect(registry.closed).toBe(true);
      await expect(registry.channel('a').broadcast('late')).resolves.toEqual({ id: undefined, delivered: 0 });
      expect(() => registry.channel('new')).toThrow(expect.objectContaining({ code: 'ERR_SSE_REGISTRY_CLOSED' }) as Error);
    }, 30_000);
  });

  describe('with retryJitter (a rolling restart)', () => {
    it('sends each client a retry: drawn over the window before the last event, so reconnections spread', async () => {
      const registry = new ChannelRegistry();
      const app = express();
      app.get('/subscribe', sse({ heartbeat: false, retry: 1000 }), (_req, res) => registry.subscribe(res, 'a'));
      const server = await startServer(app);
      const clients = await Promise.all(Array.from({ length: 200 }, () => openStream(`${server.url}/subscribe`)));
      await waitUntil(() => registry.stats().connections === 200, '200 connections');
      await registry.close({ event: 'shutdown', retryJitter: 10_000 });
      await Promise.all(clients.map((c) => c.ended));
      const retries = clients.map((c) => {
        // The stream's own retry: 1000 first, then the one sent at close.
        const fields = [...c.raw().matchAll(/^retry: (\d+)$/gm)].map((m) => Number(m[1]));
        expect(fields).toHaveLength(2);
        expect(c.raw().indexOf(`retry: ${fields[1]}\n`, c.raw().indexOf('retry: 1000') + 1)).toBeLessThan(c.raw().indexOf('event: shutdown'));
        return fields[1]!;
      });
      // Never below a second: a client told retry: 0 would come straight back to the dying process.
      expect(retries.every((ms) => Number.isInteger(ms) && ms >= 1000 && ms <= 10_000)).toBe(true);
      // Spread, not bunched: every second of the window from 1 s holds some of the 200 (each about 22).
      const seconds = new Set(retries.map((ms) => Math.min(9, Math.floor(ms / 1000))));
      expect(seconds.size).toBe(9);
      await server.close();
    });

    it.each([[-1], [1.5], ['100'], [2 ** 31]])('throws a TypeError naming retryJitter for %p', async (retryJitter) => {
      const registry = new ChannelRegistry();
      await expect(registry.close({ retryJitter } as never)).rejects.toThrow(/retryJitter/);
      await expect(sse().close({ retryJitter } as never)).rejects.toThrow(TypeError);
      await registry.close();
    });
  });
});
