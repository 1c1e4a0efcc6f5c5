import express, { type Response } from 'express';
import { Channel, ChannelRegistry, sse } from 'express-sse-hub';
import { openStream, queryString, startServer, waitUntil, type TestServer } from './helpers/server';
import { report } from './helpers/report';

/** An app whose GET /subscribe?channels=a,b joins `registry` channels; the registry is returned too. */
async function channelServer(registry = new ChannelRegistry()): Promise<{ server: TestServer; registry: ChannelRegistry }> {
  const app = express();
  app.get('/subscribe', sse({ heartbeat: false }), (req, res) => {
    const names = queryString(req.query.channels, 'main').split(',');
    registry.subscribe(res, names);
  });
  return { server: await startServer(app), registry };
}

describe('channel.subscribe()', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  describe('when 30 of 100 subscribers vanish', () => {
    it('counts 70 in size and in the next broadcast, and the 70 receive it', async () => {
      const setup = await channelServer();
      server = setup.server;
      const channel = setup.registry.channel('main');
      const clients = await Promise.all(Array.from({ length: 100 }, () => openStream(`${server!.url}/subscribe`)));
      await waitUntil(() => channel.size === 100, 'all 100 are subscribed');
      for (const client of clients.slice(0, 30)) client.destroy();
      await waitUntil(() => channel.size === 70, 'size drops to 70');
      await expect(channel.broadcast('after')).resolves.toMatchObject({ delivered: 70 });
      await Promise.all(clients.slice(30).map((c) => c.waitForEvents(1)));
      expect(clients.slice(30).every((c) => c.events.length === 1 && c.events[0]?.data === 'after')).toBe(true);
      expect(setup.registry.stats().connections).toBe(70);
    });
  });

  describe('when one connection joins two channels', () => {
    it('gets each event once per channel and nothing twice', async () => {
      const setup = await channelServer();
      server = setup.server;
      const client = await openStream(`${server.url}/subscribe?channels=a,b,a`);
      const a = setup.registry.channel('a');
      const b = setup.registry.channel('b');
      await waitUntil(() => a.size === 1 && b.size === 1, 'both channels have the client');
      // Subscribing the same connection again is harmless.
      await expect(a.broadcast('a1')).resolves.toMatchObject({ delivered: 1 });
      await b.broadcast('b1');
      await a.broadcast('a2');
      await client.waitForEvents(3);
      await new Promise((r) => setTimeout(r, 50));
      expect(client.events.map((e) => e.data)).toEqual(['a1', 'b1', 'a2']);
      expect(setup.registry.stats().connections).toBe(1);
    });
  });

  describe('when a subscriber has a filter', () => {
    it('receives only the events it accepts', async () => {
      const registry = new ChannelRegistry();
      const app = express();
      app.get('/subscribe', sse({ heartbeat: false }), (req, res) => {
        const user = queryString(req.query.user);
        registry.channel('dm').subscribe(res, { filter: (e) => (e.data as { to: string }).to === user });
      });
      server = await startServer(app);
      const ann = await openStream(`${server.url}/subscribe?user=ann`);
      const bob = await openStream(`${server.url}/subscribe?user=bob`);
      const dm = registry.channel('dm');
      await waitUntil(() => dm.size === 2, 'both subscribed');
      await expect(dm.broadcast({ to: 'ann', text: 'hi ann' })).resolves.toMatchObject({ delivered: 1 });
      await dm.broadcast({ to: 'bob', text: 'hi bob' });
      await ann.waitForEvents(1);
      await bob.waitForEvents(1);
      expect(ann.events.map((e) => JSON.parse(e.data) as unknown)).toEqual([{ to: 'ann', text: 'hi ann' }]);
      expect(bob.events.map((e) => JSON.parse(e.data) as unknown)).toEqual([{ to: 'bob', text: 'hi bob' }]);
    });

    it('reports a filter that throws and keeps serving the others', async () => {
      const registry = new ChannelRegistry();
      const errors: Error[] = [];
      registry.on('error', (e) => errors.push(e));
      const app = express();
      app.get('/subscribe', sse({ heartbeat: false }), (req, res) => {
        const broken = req.query.broken === '1';
        registry.channel('c').subscribe(res, {
          filter: () => {
            if (broken) throw new Error('bad filter');
            return true;
          },
        });
      });
      server = await startServer(app);
      const good = await openStream(`${server.url}/subscribe`);
      const bad = await openStream(`${server.url}/subscribe?broken=1`);
      await waitUntil(() => registry.channel('c').size === 2, 'both subscribed');
      await expect(registry.channel('c').broadcast('x')).resolves.toMatchObject({ delivered: 1 });
      await good.waitForEvents(1);
      expect(bad.events).toEqual([]);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: 'ERR_SSE_FILTER_FAILED' });
      expect((errors[0]?.cause as Error).message).toBe('bad filter');
    });
  });

  describe('when the response never went through sse()', () => {
    it('throws ERR_SSE_NO_STREAM', async () => {
      const channel = new Channel('bare');
      const app = express();
      let caught: unknown;
      app.get('/plain', (_req, res) => {
        try {
          channel.subscribe(res);
        } catch (error) {
          caught = error;
        }
        res.end();
      });
      server = await startServer(app);
      await fetch(`${server.url}/plain`);
      expect(caught).toMatchObject({ name: 'SseError', code: 'ERR_SSE_NO_STREAM' });
    });
  });
});

/** Wraps the connection's socket to count the writes made on it after the headers went out. */
/**
 * Makes the next `slow.writes` writes to `socket` take 40 ms each, standing in for a flush over
 * thousands of sockets; `onWrite` sees every write.
 */
function slowDown(socket: import('node:net').Socket, slow: { writes: number }, onWrite: () => void = () => undefined): void {
  const write = socket.write.bind(socket);
  socket.write = ((...args: Parameters<typeof write>) => {
    onWrite();
    if (slow.writes > 0) {
      slow.writes -= 1;
      const until = performance.now() + 40;
      while (performance.now() < until);
    }
    return write(...args);
  }) as typeof socket.write;
}

function countWrites(res: Response): () => number {
  const socket = res.socket!;
  const write = socket.write.bind(socket);
  let count = 0;
  socket.write = ((...args: Parameters<typeof write>) => {
    count += 1;
    return write(...args);
  }) as typeof socket.write;
  return () => count;
}

describe('channel.broadcast()', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  describe('when ten clients are subscribed', () => {
    it('serializes the data once per broadcast, not once per subscriber', async () => {
      const serialize = jest.fn((data: unknown) => JSON.stringify(data));
      const setup = await channelServer(new ChannelRegistry({ serialize }));
      server = setup.server;
      const channel = setup.registry.channel('main');
      const clients = await Promise.all(Array.from({ length: 10 }, () => openStream(`${server!.url}/subscribe`)));
      await waitUntil(() => channel.size === 10, 'all subscribed');
      await channel.broadcast({ n: 1 });
      await channel.broadcast({ n: 2 });
      await Promise.all(clients.map((c) => c.waitForEvents(2)));
      expect(serialize).toHaveBeenCalledTimes(2);
      expect(clients.every((c) => c.events.map((e) => e.data).join() === '{"n":1},{"n":2}')).toBe(true);
    });
  });

  describe('when events are broadcast in a burst', () => {
    it('writes them to each connection in one call per event-loop turn', async () => {
      const channel = new Channel('burst');
      const writes: (() => number)[] = [];
      const app = express();
      app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => {
        writes.push(countWrites(res));
        channel.subscribe(res);
      });
      server = await startServer(app);
      const clients = await Promise.all(Array.from({ length: 3 }, () => openStream(`${server!.url}/subscribe`)));
      await waitUntil(() => channel.size === 3, 'all subscribed');
      const before = writes.map((w) => w());
      await Promise.all(Array.from({ length: 100 }, (_, i) => channel.broadcast(`e${i}`)));
      await Promise.all(clients.map((c) => c.waitForEvents(100)));
      expect(writes.map((w, i) => w() - before[i]!)).toEqual([1, 1, 1]);
      expect(clients[0]?.events.map((e) => e.data)).toEqual(Array.from({ length: 100 }, (_, i) => `e${i}`));
    });
  });

  describe('when a single event is broadcast', () => {
    it('is written before the next event-loop iteration', async () => {
      const channel = new Channel('single');
      let writes: () => number = () => 0;
      const app = express();
      app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => {
        writes = countWrites(res);
        channel.subscribe(res);
      });
      server = await startServer(app);
      const client = await openStream(`${server.url}/subscribe`);
      await waitUntil(() => channel.size === 1, 'subscribed');
      const before = writes();
      await channel.broadcast('now');
      // A 0 ms timer runs in the next loop iteration: the flush must already have happened.
      const atNextIteration = await new Promise<number>((resolve) => setTimeout(() => resolve(writes() - before), 0));
      expect(atNextIteration).toBe(1);
      await client.waitForEvents(1, 1000);
    });
  });

  describe('when events come faster than the previous flush took', () => {
    it('joins them, holding the first for at most 5 ms (the hold cap), not for the whole flush time', async () => {
      // The flusher's clock is performance.now(): faked here (and nothing else), so the 40 ms
      // flush and the 5 ms cap are exact, whatever the machine is doing.
      jest.useFakeTimers({ doNotFake: ['Date', 'hrtime', 'nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
      try {
        const channel = new Channel('busy');
        const writeTimes: number[] = [];
        let slowWrites = 0;
        const app = express();
        app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => {
          const socket = res.socket!;
          const write = socket.write.bind(socket);
          socket.write = ((...args: Parameters<typeof write>) => {
            writeTimes.push(performance.now());
            if (slowWrites > 0) {
              slowWrites -= 1;
              jest.advanceTimersByTime(40);
            }
            return write(...args);
          }) as typeof socket.write;
          channel.subscribe(res);
        });
        server = await startServer(app);
        const client = await openStream(`${server.url}/subscribe`);
        await waitUntil(() => channel.size === 1, 'subscribed');
        writeTimes.length = 0;
        slowWrites = 1;
        await channel.broadcast('e0');
        await waitUntil(() => writeTimes.length === 1, 'the slow flush');
        const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
        await turn();
        // Now one event per event-loop turn, as a real source publishes them, with the clock still:
        // the last flush took 40 ms, so they are held, however many turns pass.
        const firstPublished = performance.now();
        for (let i = 1; i <= 20; i += 1) {
          await channel.broadcast(`e${i}`);
          await turn();
        }
        expect(writeTimes).toHaveLength(1);
        jest.advanceTimersByTime(4);
        for (let i = 0; i < 5; i += 1) await turn();
        expect(writeTimes).toHaveLength(1);
        // The cap: 5 ms after the first held event, everything held leaves in one write.
        jest.advanceTimersByTime(1);
        await waitUntil(() => writeTimes.length === 2, 'the held flush');
        expect(writeTimes[1]! - firstPublished).toBe(5);
        await client.waitForEvents(21);
        expect(client.events.map((e) => e.data)).toEqual(Array.from({ length: 21 }, (_, i) => `e${i}`));
        expect(writeTimes).toHaveLength(2);
      } finally {
        jest.useRealTimers();
      }
    });

    it('does not hold a frame for connections that were not in the last flush (a wait would join nothing)', async () => {
      // Token streams: each connection gets its own events, never two between flushes.
      const slow = new Channel('slow');
      const other = new Channel('other');
      const slowness = { writes: 0 };
      let otherWrites: () => number = () => 0;
      const app = express();
      app.get('/slow', sse({ heartbeat: false }), (_req, res) => {
        slowDown(res.socket!, slowness);
        slow.subscribe(res);
      });
      app.get('/other', sse({ heartbeat: false }), (_req, res) => {
        otherWrites = countWrites(res);
        other.subscribe(res);
      });
      server = await startServer(app);
      const a = await openStream(`${server.url}/slow`);
      const b = await openStream(`${server.url}/other`);
      await waitUntil(() => slow.size === 1 && other.size === 1, 'subscribed');
      slowness.writes = 1;
      await slow.broadcast('slow flush');
      await a.waitForEvents(1);
      const before = otherWrites();
      await other.broadcast('not held');
      // Written in the next loop iteration, as on a quiet server: not held for the 5 ms cap.
      const atNextIteration = await new Promise<number>((resolve) => setTimeout(() => resolve(otherWrites() - before), 0));
      expect(atNextIteration).toBe(1);
      await b.waitForEvents(1);
    });
  });

  describe('when the route also sends directly on a subscribed connection', () => {
    it('keeps the order in which events were sent', async () => {
      const channel = new Channel('mixed');
      const app = express();
      app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => {
        channel.subscribe(res);
        void channel.broadcast('first, via the channel');
        res.sse.send('second, direct');
        void channel.broadcast('third, via the channel');
      });
      server = await startServer(app);
      const client = await openStream(`${server.url}/subscribe`);
      await client.waitForEvents(3);
      expect(client.events.map((e) => e.data)).toEqual(['first, via the channel', 'second, direct', 'third, via the channel']);
    });
  });

  describe('when writing to one connection throws', () => {
    it('drops that connection and still writes to every other one', async () => {
      const registry = new ChannelRegistry();
      const app = express();
      // A broken wrapper around res.write on one response (the first to subscribe, so it is
      // first in every flush).
      app.get('/subscribe', (req, res, next) => {
        if (req.query.broken === '1') {
          res.write = () => {
            throw new Error('broken write wrapper');
          };
        }
        next();
      });
      app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => {
        registry.subscribe(res, 'main');
      });
      server = await startServer(app);
      const channel = registry.channel('main');
      const broken = await openStream(`${server.url}/subscribe?broken=1`);
      await waitUntil(() => channel.size === 1, 'the broken one subscribed');
      const healthy = await Promise.all([openStream(`${server.url}/subscribe`), openStream(`${server.url}/subscribe`)]);
      await waitUntil(() => channel.size === 3, 'all subscribed');
      await channel.broadcast('one');
      await Promise.all(healthy.map((c) => c.waitForEvents(1)));
      await waitUntil(() => channel.size === 2, 'the broken connection is gone');
      await channel.broadcast('two');
      for (const c of healthy) expect((await c.waitForEvents(2)).map((e) => e.data)).toEqual(['one', 'two']);
      broken.destroy();
    });
  });

  describe('when the event name or id is invalid', () => {
    it('rejects with a TypeError and sends nothing', async () => {
      const setup = await channelServer();
      server = setup.server;
      const channel = setup.registry.channel('main');
      const client = await openStream(`${server.url}/subscribe`);
      await waitUntil(() => channel.size === 1, 'subscribed');
      await expect(channel.broadcast('x', { event: 'a\nb' })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_SSE_INVALID_EVENT' });
      await expect(channel.broadcast('x', { id: '1\r2' })).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_ID' });
      await expect(channel.broadcast(() => 1)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_DATA' });
      await channel.broadcast('ok');
      await client.waitForEvents(1);
      await new Promise((r) => setTimeout(r, 30));
      expect(client.raw()).toBe('data: ok\n\n');
      expect(channel.stats().events).toBe(1);
    });
  });
});

describe('slow-client policy (maxBufferedBytes)', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  describe('when a client stops reading while 100 000 events are broadcast', () => {
    it('drops that client, keeps the others receiving, and bounds memory', async () => {
      const registry = new ChannelRegistry({ maxBufferedBytes: 256 * 1024 });
      const dropped: string[] = [];
      registry.on('client-dropped', ({ channel }) => dropped.push(channel));
      const setup = await channelServer(registry);
      server = setup.server;
      const channel = registry.channel('main');
      const stalled = await openStream(`${server.url}/subscribe`);
      stalled.response.pause();
      const readers = await Promise.all(Array.from({ length: 3 }, () => openStream(`${server!.url}/subscribe`, { retain: false })));
      await waitUntil(() => channel.size === 4, 'all subscribed');
      const payload = 'p'.repeat(1000);
      // Retained memory, after a full GC when the test runs with --expose-gc (npm test does).
      const used = (): number => {
        global.gc?.();
        const m = process.memoryUsage();
        // Socket backlogs live outside the JS heap, as Buffers.
        return m.heapUsed + m.external + m.arrayBuffers;
      };
      const heapBefore = used();
      let peak = 0;
      const EVENTS = 100_000;
      for (let i = 0; i < EVENTS; i += 1) {
        await channel.broadcast(`${i}:${payload}`);
        if (i % 100 === 99) await new Promise((r) => setImmediate(r));
        if (i % 10_000 === 9_999) peak = Math.max(peak, used() - heapBefore);
      }
      await Promise.all(readers.map((r) => r.waitForEvents(EVENTS, 60_000)));
      expect(dropped).toEqual(['main']);
      expect(channel.size).toBe(3);
      expect(registry.stats().dropped).toBe(1);
      for (const reader of readers) {
        expect(reader.count()).toBe(EVENTS);
        expect(reader.lastEvent()?.data.startsWith(`${EVENTS - 1}:`)).toBe(true);
      }
      // 100 000 × ~1 KB is ~100 MB; a client that never reads must not pin it. Stated bound:
      // heap plus buffers grow by less than 24 MB (the figure is printed; see the note of #8).
      report(`slow-client test: peak growth ${(peak / 1048576).toFixed(1)} MB`);
      expect(peak).toBeLessThan(24 * 1024 * 1024);
      stalled.destroy();
    }, 120_000);
  });
});

describe('new Channel()', () => {
  it.each([
    ['history', { history: -1 }],
    ['history', { history: 2.5 }],
    ['maxBufferedBytes', { maxBufferedBytes: 0 }],
    ['maxBufferedBytes', { maxBufferedBytes: '1mb' }],
    ['serialize', { serialize: 1 }],
  ])('throws a TypeError naming %s when it is invalid', (field, options) => {
    expect(() => new Channel('x', options as never)).toThrow(new RegExp(`^express-sse-hub: ${field} must be`));
  });

  it('rejects an empty name', () => {
    expect(() => new Channel('')).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_CHANNEL' }) as Error);
  });

  it('rejects unknown options', () => {
    expect(() => new Channel('x', { histroy: 5 } as never)).toThrow(/option "histroy"/);
  });
});

