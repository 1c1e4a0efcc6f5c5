import express, { type Response } from 'express';
import { EventSource } from 'eventsource';
import { ChannelRegistry, MemoryAdapter, RESET_EVENT, sse, type SseError } from 'express-sse-hub';
import { HOLD_LIMIT_MS } from '../src/channels/subscription';
import type { Adapter } from 'express-sse-hub/adapter';
import type { PublishedEvent } from '../src/log/entry';
import { MemoryLog } from '../src/log/memory-log';
import { openStream, queryString, SpecIds, startServer, waitUntil, type TestServer } from './helpers/server';
import { report } from './helpers/report';

function published(text: string): PublishedEvent {
  return { event: undefined, text, kind: 'text', id: undefined, origin: undefined };
}

function fill(log: MemoryLog, count: number): void {
  for (let i = 1; i <= count; i += 1) log.append(published(`e${i}`));
}

const texts = (result: { events: readonly { text: string }[] }): string[] => result.events.map((e) => e.text);

describe('MemoryLog', () => {
  describe('append()', () => {
    it('numbers events 1, 2, 3 in one epoch', () => {
      const log = new MemoryLog(10);
      const entries = [log.append(published('a')), log.append(published('b'))];
      expect(entries.map((e) => [e.offset, e.epoch])).toEqual([
        [1, log.epoch],
        [2, log.epoch],
      ]);
      expect(log.head).toEqual({ epoch: log.epoch, offset: 2 });
    });

    it('gives every log its own epoch', () => {
      expect(new MemoryLog(1).epoch).not.toBe(new MemoryLog(1).epoch);
    });
  });

  describe('read()', () => {
    it('returns the events after the position, in order', () => {
      const log = new MemoryLog(10);
      fill(log, 4);
      const result = log.read([{ epoch: log.epoch, offset: 2 }]);
      expect(result).toMatchObject({ matched: 0, evicted: false, head: { offset: 4 } });
      expect(texts(result)).toEqual(['e3', 'e4']);
      expect(log.read([{ epoch: log.epoch, offset: 4 }]).events).toEqual([]);
    });

    it('finds its own position among those of other channels', () => {
      const log = new MemoryLog(10);
      fill(log, 3);
      const result = log.read([
        { epoch: 'otherlog', offset: 9 },
        { epoch: log.epoch, offset: 1 },
      ]);
      expect(result.matched).toBe(1);
      expect(texts(result)).toEqual(['e2', 'e3']);
    });

    it('returns only the head when read without positions', () => {
      const log = new MemoryLog(10);
      fill(log, 3);
      expect(log.read(undefined)).toEqual({ head: { epoch: log.epoch, offset: 3 }, matched: -1, evicted: false, events: [], sealed: false });
    });

    describe('when the position was evicted', () => {
      it('returns everything it holds, marked evicted', () => {
        const log = new MemoryLog(3);
        fill(log, 6);
        expect(log.size).toBe(3);
        const result = log.read([{ epoch: log.epoch, offset: 1 }]);
        expect(result.evicted).toBe(true);
        expect(texts(result)).toEqual(['e4', 'e5', 'e6']);
        // The newest evicted position itself is still exact: nothing after it is lost.
        const exact = log.read([{ epoch: log.epoch, offset: 3 }]);
        expect(exact.evicted).toBe(false);
        expect(texts(exact)).toEqual(['e4', 'e5', 'e6']);
      });
    });

    describe('when no position belongs to it', () => {
      it.each([
        ['another epoch (a restart, another channel)', [{ epoch: 'abcdefgh', offset: 1 }]],
        ['an offset beyond its head', [{ epoch: 'SAME', offset: 99 }]],
        ['no position at all', []],
      ])('returns everything it holds, unmatched, for %s', (_what, after) => {
        const log = new MemoryLog(5);
        fill(log, 2);
        const result = log.read(after.map((p) => ({ ...p, epoch: p.epoch === 'SAME' ? log.epoch : p.epoch })));
        expect(result.matched).toBe(-1);
        expect(texts(result)).toEqual(['e1', 'e2']);
      });
    });
  });
});

describe('Last-Event-ID replay', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function historyServer(history: number): Promise<{ url: string; registry: ChannelRegistry; responses: Set<Response> }> {
    const registry = new ChannelRegistry({ history });
    const responses = new Set<Response>();
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false, retry: 20 }), (req, res) => {
      responses.add(res);
      res.on('close', () => responses.delete(res));
      registry.subscribe(res, queryString(req.query.channels, 'feed').split(','));
    });
    server = await startServer(app);
    return { url: `${server.url}/subscribe`, registry, responses };
  }

  describe('when the eventsource client reconnects while broadcasts keep coming', () => {
    it('receives every event exactly once, in order', async () => {
      const { url, registry, responses } = await historyServer(5000);
      const feed = registry.channel('feed');
      const source = new EventSource(url);
      const seen: number[] = [];
      let opens = 0;
      source.addEventListener('open', () => (opens += 1));
      source.addEventListener('message', (event) => {
        seen.push(Number(event.data));
        // Cut the connection from the server side twice, mid-stream.
        if (seen.length === 300 || seen.length === 900) for (const res of responses) res.socket?.destroy();
      });
      await waitUntil(() => feed.size === 1, 'the client subscribed');
      const TOTAL = 1500;
      for (let i = 1; i <= TOTAL; i += 1) {
        await feed.broadcast(String(i));
        await new Promise((r) => setImmediate(r));
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      await waitUntil(() => seen.length >= TOTAL, `all ${TOTAL} events arrive (have ${seen.length})`, 15_000);
      await new Promise((r) => setTimeout(r, 50));
      source.close();
      expect(opens).toBe(3);
      expect(seen).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
      expect(registry.stats().replays).toBe(2);
    });
  });

  describe('when broadcasts happen between subscribe and the replay', () => {
    it('sends history first, then the live events, with no gap and no duplicate', async () => {
      const registry = new ChannelRegistry({ history: 100 });
      const feed = registry.channel('feed');
      const ids: string[] = [];
      for (let i = 1; i <= 5; i += 1) ids.push((await feed.broadcast(`old${i}`)).id!);
      const epoch = ids[0]!.split('.')[1]!;
      const app = express();
      app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => {
        feed.subscribe(res);
        // Synchronously after subscribe, before the history read has resolved.
        void feed.broadcast('live1');
        void feed.broadcast('live2');
      });
      server = await startServer(app);
      const client = await openStream(`${server.url}/subscribe`, { headers: { 'last-event-id': ids[1]! } });
      await client.waitForEvents(5);
      await feed.broadcast('live3');
      await client.waitForEvents(6);
      expect(client.events.map((e) => `${e.id}:${e.data}`)).toEqual(
        ['3:old3', '4:old4', '5:old5', '6:live1', '7:live2', '8:live3'].map((t) => t.replace(':', `.${epoch}:`)),
      );
    });
  });

  describe('when the client id was evicted from history', () => {
    it('sends a reset event, then what history remains', async () => {
      const { url, registry } = await historyServer(3);
      const feed = registry.channel('feed');
      const first = await feed.broadcast('e1');
      for (let i = 2; i <= 6; i += 1) await feed.broadcast(`e${i}`);
      const client = await openStream(url, { headers: { 'last-event-id': first.id! } });
      await client.waitForEvents(4);
      expect(client.events[0]).toEqual({ event: RESET_EVENT, id: undefined, data: JSON.stringify({ channel: 'feed', lastEventId: first.id, reason: 'evicted' }) });
      expect(client.events.slice(1).map((e) => e.data)).toEqual(['e4', 'e5', 'e6']);
      expect(registry.stats().resets).toBe(1);
    });
  });

  describe('when the client id comes from before a server restart', () => {
    it('sends a reset with reason unknown-id, although the offset exists again', async () => {
      // The previous process life handed out ids 1 to 4; the new one has two events so far.
      const { id: oldId } = await new ChannelRegistry({ history: 10 }).channel('feed').broadcast('old');
      const { url, registry } = await historyServer(10);
      await registry.channel('feed').broadcast('fresh 1');
      await registry.channel('feed').broadcast('fresh 2');
      const client = await openStream(url, { headers: { 'last-event-id': oldId! } });
      await client.waitForEvents(3);
      expect(client.events[0]?.event).toBe(RESET_EVENT);
      expect(JSON.parse(client.events[0]!.data)).toMatchObject({ reason: 'unknown-id' });
      expect(client.events.slice(1).map((e) => e.data)).toEqual(['fresh 1', 'fresh 2']);
    });
  });

  describe('when one connection is in several channels', () => {
    it('carries its place in each in every id, and replays exactly what it missed in each', async () => {
      const { url, registry } = await historyServer(10);
      const a = registry.channel('a');
      const b = registry.channel('b');
      await a.broadcast('a1');
      await b.broadcast('b1');
      const first = await openStream(`${url}?channels=a,b`);
      await waitUntil(() => first.lastEventId() !== undefined, 'the client was told where it is');
      await a.broadcast('a2');
      await b.broadcast('b2');
      await first.waitForEvents(2);
      const resumeFrom = first.lastEventId()!;
      expect(resumeFrom.split(',')).toHaveLength(2);
      first.destroy();
      await a.broadcast('a3');
      await b.broadcast('b3');
      await a.broadcast('a4');
      const again = await openStream(`${url}?channels=a,b`, { headers: { 'last-event-id': resumeFrom } });
      await again.waitForEvents(3);
      await a.broadcast('a5');
      await again.waitForEvents(4);
      expect(first.events.map((e) => e.data)).toEqual(['a2', 'b2']);
      // Channel by channel: each in its own order, nothing twice, nothing missing.
      expect(again.events.map((e) => e.data)).toEqual(['a3', 'a4', 'b3', 'a5']);
      expect(registry.stats().resets).toBe(0);
    });

    it('resets only the channel whose log lost the client position', async () => {
      const { url, registry } = await historyServer(10);
      await registry.channel('a').broadcast('a1');
      const client = await openStream(`${url}?channels=a,b`);
      await waitUntil(() => client.lastEventId() !== undefined, 'the client was told where it is');
      const [positionA] = client.lastEventId()!.split(',');
      client.destroy();
      await registry.channel('a').broadcast('a2');
      await registry.channel('b').broadcast('b1');
      // Channel b's position is replaced by one from a log that no longer exists.
      const again = await openStream(`${url}?channels=a,b`, { headers: { 'last-event-id': `${positionA},5.gonegone` } });
      await again.waitForEvents(3);
      // The reset comes before any event: an id never claims a place in b before the client
      // was told it may have missed events there.
      expect(again.events.map((e) => (e.event === RESET_EVENT ? `reset ${(JSON.parse(e.data) as { channel: string }).channel}` : e.data))).toEqual([
        'reset b',
        'a2',
        'b1',
      ]);
    });

    it('resumes exactly in every channel wherever its replay was cut (after each frame)', async () => {
      const { url, registry } = await historyServer(10);
      const a = registry.channel('a');
      const b = registry.channel('b');
      await a.broadcast('a1');
      await b.broadcast('b1');
      const first = await openStream(`${url}?channels=a,b`);
      await waitUntil(() => first.lastEventId()?.split(',').length === 2, 'the client was told where it is');
      const start = first.lastEventId()!;
      first.destroy();
      await a.broadcast('a2');
      await b.broadcast('b2');
      await b.broadcast('b3');
      // The whole replay, frame by frame, as the client received it.
      const whole = await openStream(`${url}?channels=a,b`, { headers: { 'last-event-id': start } });
      await whole.waitForEvents(3);
      whole.destroy();
      const frames = whole.raw().split('\n\n').slice(0, -1);
      expect(frames.length).toBeGreaterThanOrEqual(3);
      for (let cut = 0; cut <= frames.length; cut += 1) {
        // A connection cut after `cut` frames: what the client had, and the id it then sends.
        const ids = new SpecIds();
        ids.feed(frames.slice(0, cut).map((f) => `${f}\n\n`).join(''));
        const had = frames.slice(0, cut).flatMap((f) => /^data: (.*)$/m.exec(f)?.[1] ?? []);
        const again = await openStream(`${url}?channels=a,b`, { headers: { 'last-event-id': ids.lastEventId ?? start } });
        await again.waitForEvents(3 - had.length);
        await waitUntil(() => again.lastEventId() !== undefined || had.length === 3, 'the client knows where it is');
        again.destroy();
        const got = [...had, ...again.events.map((e) => e.data)];
        expect({ cut, a: got.filter((d) => d.startsWith('a')), b: got.filter((d) => d.startsWith('b')) }).toEqual({ cut, a: ['a2'], b: ['b2', 'b3'] });
        expect(again.events.some((e) => e.event === RESET_EVENT)).toBe(false);
      }
    });

    it('treats a channel whose position the id lacks as unknown (reset, then its history), never as "from now"', async () => {
      const { url, registry } = await historyServer(10);
      const { id } = await registry.channel('a').broadcast('a1');
      await registry.channel('b').broadcast('b1');
      await registry.channel('b').broadcast('b2');
      // A client that was in a only comes back in a and b (say, the page added a channel).
      const again = await openStream(`${url}?channels=a,b`, { headers: { 'last-event-id': id! } });
      await again.waitForEvents(3);
      expect(again.events[0]).toMatchObject({ event: RESET_EVENT });
      expect(JSON.parse(again.events[0]!.data)).toEqual({ channel: 'b', lastEventId: id, reason: 'unknown-id' });
      expect(again.events.slice(1).map((e) => e.data)).toEqual(['b1', 'b2']);
    });
  });

  describe('when a first connection joins several channels', () => {
    it('is told its position once, in one id-only frame that covers every channel', async () => {
      const { url, registry } = await historyServer(10);
      // Cold channels (their heads are read) and channels that know their position.
      for (const cold of [true, false]) {
        // Another client keeps the channels live (they know their position); none: cold.
        const holder = cold ? undefined : await openStream(`${url}?channels=a,b,c`);
        if (holder !== undefined) await waitUntil(() => holder.lastEventId()?.split(',').length === 3, 'the channels know their position');
        const client = await openStream(`${url}?channels=a,b,c`);
        await waitUntil(() => client.lastEventId()?.split(',').length === 3, 'the client was told where it is');
        await registry.channel('c').broadcast('c1');
        await client.waitForEvents(1);
        client.destroy();
        holder?.destroy();
        const idOnly = client.raw().split('\n\n').filter((f) => /^id: /.test(f));
        expect({ cold, idOnly: idOnly.length }).toEqual({ cold, idOnly: 1 });
      }
    });
  });

  describe('when a first connection drops before any event', () => {
    it('knows its place anyway (an id-only frame), and gets what was sent meanwhile', async () => {
      const { url, registry } = await historyServer(10);
      await registry.channel('feed').broadcast('before');
      const client = await openStream(url);
      await waitUntil(() => client.lastEventId() !== undefined, 'the client was told where it is');
      expect(client.events).toEqual([]);
      client.destroy();
      await registry.channel('feed').broadcast('meanwhile');
      const again = await openStream(url, { headers: { 'last-event-id': client.lastEventId()! } });
      await again.waitForEvents(1);
      expect(again.events.map((e) => e.data)).toEqual(['meanwhile']);
    });
  });

  describe('when the client asks with the lastEventId query parameter', () => {
    it('replays as with the header', async () => {
      const { url, registry } = await historyServer(10);
      const feed = registry.channel('feed');
      const { id } = await feed.broadcast('one');
      await feed.broadcast('two');
      const client = await openStream(`${url}?lastEventId=${id}`);
      await client.waitForEvents(1);
      expect(client.events.map((e) => e.data)).toEqual(['two']);
    });
  });
});

/**
 * A memory adapter whose reads wait until the test releases them (a Redis read can take a while,
 * and another process may publish meanwhile). `readFirst`: each read takes its result before it
 * waits (else after). `read` resolves when the first read starts; `onRead` runs as each starts.
 */
function waitingAdapter(options: { readFirst?: boolean; onRead?: () => void } = {}): { adapter: Adapter; reads: () => number; release: () => void; read: Promise<void> } {
  const inner = new MemoryAdapter();
  let count = 0;
  let releaseAll: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (releaseAll = resolve));
  let started: () => void = () => undefined;
  const read = new Promise<void>((resolve) => (started = resolve));
  const adapter: Adapter = {
    publish: (channel, event, publishOptions) => inner.publish(channel, event, publishOptions),
    subscribe: (channel, listener) => inner.subscribe(channel, listener),
    unsubscribe: (channel) => inner.unsubscribe(channel),
    read: async (channel, after, readOptions) => {
      count += 1;
      options.onRead?.();
      started();
      const early = options.readFirst === true ? await inner.read(channel, after, readOptions) : undefined;
      await released;
      return early ?? inner.read(channel, after, readOptions);
    },
    close: () => inner.close(),
  };
  return { adapter, reads: () => count, release: releaseAll, read };
}

/** A registry on `adapter` (history 10) and a server whose GET /s subscribes to "news". */
async function newsServer(adapter: Adapter): Promise<{ registry: ChannelRegistry; server: TestServer }> {
  const registry = new ChannelRegistry({ adapter, history: 10 });
  const app = express();
  app.get('/s', sse({ heartbeat: false }), (_req, res) => registry.subscribe(res, 'news'));
  return { registry, server: await startServer(app) };
}

describe('a first connection whose head read is still on its way when an event is published', () => {
  it('is told where it starts (an id-only frame) before that event, so a cut before the event loses nothing', async () => {
    const { adapter, reads, release } = waitingAdapter({ readFirst: true });
    const { registry, server } = await newsServer(adapter);
    try {
      const opening = openStream(`${server.url}/s`);
      await waitUntil(() => reads() === 1, 'the head read');
      // Published after the head was read, before the read answered: it is live for this client.
      const publishing = registry.channel('news').broadcast('one');
      release();
      await publishing;
      const client = await opening;
      await client.waitForEvents(1);
      const frames = client.raw().split('\n\n').filter((frame) => frame !== '');
      expect(frames[0]).toMatch(/^id: 0\.[0-9a-z]+$/);
      expect(frames[1]!.split('\n').sort()).toEqual(['data: one', expect.stringMatching(/^id: 1\.[0-9a-z]+$/)]);
      client.destroy();
    } finally {
      await registry.close();
      await server.close();
    }
  });
});

describe('a first connection that must read where it starts', () => {
  // The client has not seen the stream open while the read runs: what is published then is before
  // its start; what is published after it saw the stream open reaches it. The first seed's route
  // sends a `connected` event, then subscribes: what a route sends before it subscribes, in the
  // same synchronous code, waits with the stream and goes out first.
  it.each([
    ['a route-mounted sse() that only subscribes', 'route', 'none'],
    ['a route-mounted sse(), send() then subscribe()', 'route', 'send'],
    ['an app-wide sse(), send() then subscribe()', 'app', 'send'],
    ['a route-mounted sse(), comment() then subscribe()', 'route', 'comment'],
  ] as const)('with %s: opens only once it knows, with anything sent first; an event published after the client saw it open reaches it', async (_name, mount, write) => {
    const headersSentAtRead: boolean[] = [];
    let response: Response | undefined;
    const { adapter, release } = waitingAdapter({ onRead: () => headersSentAtRead.push(response!.headersSent) });
    const registry = new ChannelRegistry({ adapter, history: 10 });
    const app = express();
    const route = (_req: unknown, res: Response): void => {
      response = res;
      if (write !== 'none') {
        const returned = write === 'send' ? res.sse.send('You are now subscribed!', { event: 'connected' }) : res.sse.comment('hello');
        expect(returned).toBe(true); // nothing is backed up: the route may go on
      }
      registry.subscribe(res, 'news');
    };
    if (mount === 'route') app.get('/s', sse({ heartbeat: false }), route);
    else app.use(sse({ heartbeat: false })).get('/s', route);
    const server = await startServer(app);
    try {
      const opening = openStream(`${server.url}/s`);
      await waitUntil(() => headersSentAtRead.length === 1, 'the head read');
      expect(headersSentAtRead).toEqual([false]);
      const before = registry.channel('news').broadcast('before');
      release();
      await before;
      const client = await opening;
      expect(client.response.statusCode).toBe(200);
      await registry.channel('news').broadcast('after');
      await client.waitForEvents(write === 'send' ? 2 : 1);
      const frames = client.raw().split('\n\n').filter((frame) => frame !== '');
      const first = { none: [], send: ['event: connected\ndata: You are now subscribed!'], comment: [': hello'] }[write];
      expect(frames.slice(0, first.length)).toEqual(first);
      expect(frames[first.length]).toMatch(/^id: 1\.[0-9a-z]+$/);
      expect(client.events.map((e) => e.data)).toEqual(write === 'send' ? ['You are now subscribed!', 'after'] : ['after']);
      client.destroy();
    } finally {
      await registry.close();
      await server.close();
    }
  });

  it('says a large write before it opened backs it up (send() is false), and drained() waits for the open', async () => {
    const { adapter, read, release } = waitingAdapter();
    const registry = new ChannelRegistry({ adapter, history: 10 });
    const app = express();
    const steps: string[] = [];
    const big = 'x'.repeat(256 * 1024);
    app.get('/s', sse({ heartbeat: false }), (_req, res) => {
      steps.push(`send ${res.sse.send(big)}`);
      registry.subscribe(res, 'news');
      void res.sse.drained().then(() => steps.push(`drained, opened ${res.sse.opened}`));
    });
    const server = await startServer(app);
    try {
      const opening = openStream(`${server.url}/s`);
      await read;
      await new Promise((resolve) => setImmediate(resolve));
      expect(steps).toEqual(['send false']);
      release();
      const client = await opening;
      await client.waitForEvents(1);
      expect(client.events[0]!.data).toBe(big);
      await waitUntil(() => steps.length === 2, 'drained() resolved');
      expect(steps).toEqual(['send false', 'drained, opened true']);
      client.destroy();
    } finally {
      release();
      await registry.close();
      await server.close();
    }
  });

  it('is opened and ended, not refused, when the registry closes meanwhile (an EventSource comes back)', async () => {
    const { adapter, read, release } = waitingAdapter();
    const { registry, server } = await newsServer(adapter);
    try {
      const opening = openStream(`${server.url}/s`);
      await read;
      const closing = registry.close({ timeout: 1000 });
      const client = await opening;
      await client.ended;
      expect(client.response.statusCode).toBe(200);
      expect(client.response.headers['content-type']).toMatch(/^text\/event-stream/);
      release();
      await closing;
    } finally {
      release();
      await registry.close();
      await server.close();
    }
  });

  it(`waits at most ${HOLD_LIMIT_MS} ms for its position, then answers 200 and ends (the client retries)`, async () => {
    const { adapter, read, release } = waitingAdapter();
    const registry = new ChannelRegistry({ adapter, history: 10 });
    const errors: SseError[] = [];
    registry.on('error', (error) => void errors.push(error as SseError));
    const app = express();
    app.get('/s', sse({ heartbeat: false }), (_req, res) => registry.subscribe(res, 'news'));
    const server = await startServer(app);
    // A real timer, kept before the clock is faked, turns a hang into a failure.
    const realSetTimeout = setTimeout;
    const hang = new Promise<never>((_, reject) => realSetTimeout(() => reject(new Error('the response never started')), 20_000).unref());
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'hrtime', 'performance'] });
    try {
      const opening = openStream(`${server.url}/s`);
      await read;
      jest.advanceTimersByTime(HOLD_LIMIT_MS - 1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(errors).toEqual([]);
      jest.advanceTimersByTime(1);
      const client = await Promise.race([opening, hang]);
      await client.ended;
      expect(client.response.statusCode).toBe(200);
      expect(errors.map((e) => [e.code, e.message])).toEqual([['ERR_SSE_REPLAY_FAILED', expect.stringContaining(`took over ${HOLD_LIMIT_MS} ms`)]]);
    } finally {
      jest.useRealTimers();
      release();
      await registry.close();
      await server.close();
    }
  });

  it('answers 200 and closes when the read fails, so an EventSource retries', async () => {
    const inner = new MemoryAdapter();
    const adapter: Adapter = {
      publish: (channel, event, options) => inner.publish(channel, event, options),
      subscribe: (channel, listener) => inner.subscribe(channel, listener),
      unsubscribe: (channel) => inner.unsubscribe(channel),
      read: () => Promise.reject(new Error('Redis is away')),
      close: () => inner.close(),
    };
    const registry = new ChannelRegistry({ adapter, history: 10 });
    const errors: Error[] = [];
    registry.on('error', (error: Error) => errors.push(error));
    const app = express();
    app.get('/s', sse({ heartbeat: false }), (_req, res) => registry.subscribe(res, 'news'));
    const server = await startServer(app);
    try {
      const client = await openStream(`${server.url}/s`);
      await client.ended;
      expect(client.response.statusCode).toBe(200);
      expect(client.response.headers['content-type']).toMatch(/^text\/event-stream/);
      expect(errors.map((e) => (e as SseError).code)).toEqual([expect.stringMatching(/^ERR_SSE_(ADAPTER_UNAVAILABLE|REPLAY_FAILED)$/)]);
    } finally {
      await registry.close();
      await server.close();
    }
  });
});

describe('historyTtl', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Collected channels leave the registry through a FinalizationRegistry, whose callbacks run
  // after a collection, on a later turn: collect, let them run, collect again.
  const heap = async (): Promise<number> => {
    for (let i = 0; i < 3; i += 1) {
      gc!();
      await new Promise((r) => setImmediate(r));
    }
    return process.memoryUsage().heapUsed;
  };

  (gc === undefined ? it.skip : it)('frees 50 000 abandoned channels, leaving the heap where it started', async () => {
    const adapter = new MemoryAdapter();
    // Long enough that none expires while the 50 000 are made, even on a loaded machine.
    const registry = new ChannelRegistry({ adapter, history: 10, historyTtl: 5000 });
    // Warm up the code paths, then measure.
    for (let i = 0; i < 1000; i += 1) await registry.channel(`warm-${i}`).broadcast('x');
    await waitUntil(() => adapter.size === 0, 'the warm-up expired', 10_000);
    const before = await heap();
    for (let i = 0; i < 50_000; i += 1) await registry.channel(`user-${i}`).broadcast({ n: i });
    expect(adapter.size).toBe(50_000);
    const full = await heap();
    await waitUntil(() => adapter.size === 0, 'every log expired', 20_000);
    // On a busy machine the finalizers can take more turns than the three above: measure again
    // until the heap is back (or it never comes back, and the expectation below says by how much).
    let after = await heap();
    for (let tries = 0; tries < 50 && after - before >= 1024 * 1024; tries += 1) {
      await new Promise((r) => setTimeout(r, 20));
      after = await heap();
    }
    report(`historyTtl: heap ${(before / 1048576).toFixed(1)} MB -> ${(full / 1048576).toFixed(1)} MB with 50 000 channels -> ${(after / 1048576).toFixed(1)} MB`);
    expect(full - before).toBeGreaterThan(10 * 1024 * 1024);
    expect(after - before).toBeLessThan(1024 * 1024);
  }, 60_000);

  it('keeps the history of a channel someone is subscribed to, and frees it after they leave', async () => {
    const adapter = new MemoryAdapter();
    const registry = new ChannelRegistry({ adapter, history: 10, historyTtl: 100 });
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => registry.subscribe(res, 'kept'));
    const server = await startServer(app);
    try {
      const client = await openStream(`${server.url}/subscribe`);
      await waitUntil(() => client.lastEventId() !== undefined, 'subscribed');
      const { id } = await registry.channel('kept').broadcast('x');
      await new Promise((r) => setTimeout(r, 300));
      expect(adapter.size).toBe(1);
      await expect(registry.head('kept')).resolves.toBe(id);
      client.destroy();
      await waitUntil(() => adapter.size === 0, 'freed after the last subscriber left', 2000);
    } finally {
      await server.close();
    }
  });
});

describe('MemoryAdapter: sealed logs and reads that create nothing', () => {
  const options = { history: 10, ttl: 0 };

  it('refuses to append after a sealing event, and says so on reads', async () => {
    const adapter = new MemoryAdapter();
    await adapter.publish('c', published('a'), options);
    await adapter.publish('c', published('end'), { ...options, seal: true });
    await expect(adapter.publish('c', published('late'), options)).rejects.toMatchObject({ code: 'ERR_SSE_LOG_SEALED' });
    const result = await adapter.read('c', [], options);
    expect(result.sealed).toBe(true);
    expect(texts(result)).toEqual(['a', 'end']);
    await adapter.close();
  });

  it('creates nothing for create: false, and says when a read created the log', async () => {
    const adapter = new MemoryAdapter();
    expect(await adapter.read('nope', undefined, { ...options, create: false })).toMatchObject({ head: { epoch: '', offset: 0 }, events: [] });
    expect(adapter.size).toBe(0);
    expect((await adapter.read('new', undefined, options)).created).toBe(true);
    expect((await adapter.read('new', undefined, options)).created).toBeUndefined();
    expect(adapter.size).toBe(1);
    await adapter.close();
  });
});
