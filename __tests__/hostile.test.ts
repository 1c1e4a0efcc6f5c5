// Hostile reconnects: a huge or malformed Last-Event-ID (header or ?lastEventId=) gets a clean
// stream: no crash, never more than the history holds, a `reset` event when the id means nothing,
// then live events. (Many streams from one client: limits.test.ts. A client that never reads:
// the slow-client test in channel.test.ts.)
import express from 'express';
import { ChannelRegistry, RESET_EVENT, sse } from 'express-sse-hub';
import { openStream, startServer, waitUntil, type TestServer, type TestStream } from './helpers/server';

const HISTORY = 100;
let server: TestServer | undefined;
let registry: ChannelRegistry;
let streams: TestStream[] = [];
/** The news channel's epoch: ids are `<offset>.<epoch>`. */
let epoch = '';

beforeAll(async () => {
  registry = new ChannelRegistry({ history: HISTORY });
  const app = express();
  app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => registry.channel('news').subscribe(res));
  server = await startServer(app);
  // More than the history holds, so the oldest ids are evicted.
  for (let i = 0; i < 150; i += 1) epoch = (await registry.channel('news').broadcast(`e${i}`)).id!.split('.')[1]!;
});

afterEach(() => {
  for (const s of streams) s.destroy();
  streams = [];
});

afterAll(async () => {
  await registry.close({ timeout: 100 });
  await server?.close();
});

/** Opens with a hostile id, checks the replay is clean and bounded, then that live events flow. */
async function expectCleanStream(options: { header?: string; query?: string }, expectedReset: 'unknown-id' | 'evicted' | 'none'): Promise<void> {
  const query = options.query === undefined ? '' : `?lastEventId=${encodeURIComponent(options.query)}`;
  const headers = options.header === undefined ? undefined : { 'last-event-id': options.header };
  const s = await openStream(`${server!.url}/subscribe${query}`, { headers });
  streams.push(s);
  expect(s.response.statusCode).toBe(200);
  const channel = registry.channel('news');
  await waitUntil(() => channel.size >= 1, 'subscribed');
  // A live event marks the end of the replay.
  await channel.broadcast('live');
  const events = await s.waitForEvents(1);
  await waitUntil(() => s.events.some((e) => e.data === 'live'), 'the live event');
  const replayed = s.events.slice(0, s.events.findIndex((e) => e.data === 'live'));
  const resets = replayed.filter((e) => e.event === RESET_EVENT);
  if (expectedReset === 'none') expect(resets).toEqual([]);
  else {
    expect(resets).toHaveLength(1);
    expect(replayed[0]?.event).toBe(RESET_EVENT);
    expect(JSON.parse(resets[0]!.data)).toMatchObject({ channel: 'news', reason: expectedReset });
  }
  const data = replayed.filter((e) => e.event !== RESET_EVENT);
  expect(data.length).toBeLessThanOrEqual(HISTORY);
  const ids = data.map((e) => Number(e.id?.split('.')[0]));
  expect(ids).toEqual([...ids].sort((a, b) => a - b));
  expect(new Set(ids).size).toBe(ids.length);
  expect(events.length).toBeGreaterThan(0);
  s.destroy();
  await waitUntil(() => channel.size === 0, 'unsubscribed');
}

describe('a hostile Last-Event-ID', () => {
  it('of 12 KB of garbage gets a reset, at most the history, then live events', async () => {
    await expectCleanStream({ header: 'Z'.repeat(12 * 1024) }, 'unknown-id');
  });

  it.each(['-1', 'NaN', '1e9', '99999999999999999999999999', ' 12', '12abc', '../../etc/passwd', '%00', '{"$gt":""}', 'ÿ12', '1.a,2.b,3.c', '9999999.EPOCH'])(
    'of %p gets a clean stream',
    async (id) => {
      // Some of these parse as numbers (an id in the future, or before everything): whatever the
      // verdict, the replay stays within the history and live events follow.
      const s = await openStream(`${server!.url}/subscribe`, { headers: { 'last-event-id': id.replace('EPOCH', epoch) } });
      streams.push(s);
      expect(s.response.statusCode).toBe(200);
      const channel = registry.channel('news');
      await waitUntil(() => channel.size >= 1, 'subscribed');
      await channel.broadcast('live');
      await waitUntil(() => s.events.some((e) => e.data === 'live'), 'the live event');
      const replayed = s.events.filter((e) => e.event !== RESET_EVENT && e.data !== 'live');
      expect(replayed.length).toBeLessThanOrEqual(HISTORY);
      s.destroy();
      await waitUntil(() => channel.size === 0, 'unsubscribed');
    },
  );

  it('in ?lastEventId= (what polyfills send) is treated the same', async () => {
    await expectCleanStream({ query: 'Q'.repeat(4000) }, 'unknown-id');
  });

  it('of an evicted id gets reset "evicted" and exactly the history', async () => {
    await expectCleanStream({ header: `3.${epoch}` }, 'evicted');
  });

  it('too large for Node (over 16 KB of headers) is refused by Node with 431, and the server keeps serving', async () => {
    const s = await openStream(`${server!.url}/subscribe`, { headers: { 'last-event-id': 'Z'.repeat(20 * 1024) } });
    expect(s.response.statusCode).toBe(431);
    await expectCleanStream({}, 'none');
  });
});
