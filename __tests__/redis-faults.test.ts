// The Redis adapter when things go wrong, each case reproduced against a real redis-server with
// faults injected on the wire (helpers/proxy.ts): a fresh process, a slow subscriber connection,
// dropped Pub/Sub connections on a quiet channel, a Redis that is down when a channel is first
// joined, a frozen Redis, keys that must expire.
import { randomUUID } from 'node:crypto';
import express from 'express';
import Redis from 'ioredis';
import { ChannelRegistry, RESET_EVENT, sse } from 'express-sse-hub';
import { RedisAdapter, type RedisAdapterOptions } from 'express-sse-hub/redis';
import { FaultProxy } from './helpers/proxy';
import { HAS_REDIS_SERVER, startRedis, type TestRedis } from './helpers/redis';
import { openStream, queryString, startServer, waitUntil, type TestServer, type TestStream } from './helpers/server';
import { report } from './helpers/report';
import { unhandledDuring } from './helpers/unhandled';
import { ready } from '../src/adapters/redis/connections';

const HAS_REDIS = HAS_REDIS_SERVER || process.env.REDIS_URL !== undefined || process.env.CI !== undefined;
const describeRedis = HAS_REDIS ? describe : describe.skip;

let redis: TestRedis | undefined;
let admin: Redis | undefined;
beforeAll(async () => {
  redis = await startRedis();
  if (redis !== undefined) admin = new Redis(redis.url);
});
afterAll(async () => {
  admin?.disconnect();
  if (redis?.ownServer) await redis.stop();
});

interface Instance {
  readonly registry: ChannelRegistry;
  readonly adapter: RedisAdapter;
  readonly url: string;
  readonly errors: Error[];
  close(): Promise<void>;
}

let prefix = '';
let open: { close(): Promise<void> }[] = [];
let streams: TestStream[] = [];
beforeEach(() => {
  prefix = `faults-${randomUUID()}`;
});
afterEach(async () => {
  for (const s of streams) s.destroy();
  streams = [];
  for (const item of open.reverse()) await item.close();
  open = [];
});

async function instance(url: string, options: Partial<RedisAdapterOptions> = {}, historyTtl?: number): Promise<Instance> {
  const adapter = await RedisAdapter.connect({ url, prefix, ...options });
  const registry = new ChannelRegistry({ adapter, history: 1000, ...(historyTtl === undefined ? {} : { historyTtl }) });
  const errors: Error[] = [];
  registry.on('error', (error) => errors.push(error));
  const app = express();
  app.get('/subscribe', sse({ heartbeat: false }), (req, res) => {
    registry.subscribe(res, queryString(req.query.channels, 'feed').split(','));
  });
  const server: TestServer = await startServer(app);
  const item: Instance = {
    registry,
    adapter,
    url: server.url,
    errors,
    close: async () => {
      await registry.close({ timeout: 200 });
      await server.close();
    },
  };
  open.push(item);
  return item;
}

async function proxy(): Promise<FaultProxy> {
  const { port } = new URL(redis!.url);
  const p = await FaultProxy.start({ host: '127.0.0.1', port: Number(port) });
  open.push(p);
  return p;
}

async function client(url: string, headers?: Record<string, string>): Promise<TestStream> {
  const s = await openStream(url, { headers });
  streams.push(s);
  return s;
}

/** A client's events as offsets in one channel's log (resets as -1). */
function offsets(s: TestStream): number[] {
  return s.events.map((e) => (e.event === RESET_EVENT ? -1 : Number(e.id!.split('.')[0])));
}

/** Publishes on `channel` every `everyMs` until stopped; resolves with how many succeeded. */
function publisher(registry: ChannelRegistry, channel: string, everyMs: number): { stop(): Promise<number> } {
  let running = true;
  let count = 0;
  const loop = (async () => {
    while (running) {
      await registry.channel(channel).broadcast(`n${count + 1}`);
      count += 1;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return count;
    },
  };
}

describeRedis('RedisAdapter under faults', () => {
  describe('when a process starts while Redis already holds history', () => {
    it('reports the true head, and a client it tells that position is replayed nothing old', async () => {
      const a = await instance(redis!.url);
      let last = '';
      for (let i = 0; i < 103; i += 1) last = (await a.registry.channel('feed').broadcast(`old ${i}`)).id!;
      const fresh = await instance(redis!.url);
      await expect(fresh.registry.head('feed')).resolves.toBe(last);
      const s = await client(`${fresh.url}/subscribe`);
      await waitUntil(() => s.lastEventId() !== undefined, 'the client is told its position');
      expect(s.lastEventId()).toBe(last);
      s.destroy();
      await a.registry.channel('feed').broadcast('new');
      const again = await client(`${a.url}/subscribe`, { 'last-event-id': last });
      await again.waitForEvents(1);
      await new Promise((r) => setTimeout(r, 50));
      expect(again.events.map((e) => e.data)).toEqual(['new']);
    });
  });

  describe('when the subscriber connection is slow (100 ms each way) and another process publishes every 3 ms', () => {
    it('gives the first subscriber every event after its position, with no gap', async () => {
      const slow = await proxy();
      slow.pubsubLatency = 100;
      const a = await instance(redis!.url);
      const b = await instance(slow.url);
      const feed = publisher(a.registry, 'feed', 3);
      await new Promise((r) => setTimeout(r, 50));
      const s = await client(`${b.url}/subscribe`);
      await waitUntil(() => s.lastEventId() !== undefined, 'the client is told its position', 10_000);
      const start = Number(s.lastEventId()!.split('.')[0]);
      await new Promise((r) => setTimeout(r, 500));
      const published = await feed.stop();
      await waitUntil(() => offsets(s).at(-1) === published, `every event up to ${published}`, 10_000);
      expect(offsets(s)).toEqual(Array.from({ length: published - start }, (_, i) => start + 1 + i));
    });
  });

  describe('when the Pub/Sub connection drops while a quiet channel gets events', () => {
    it('catches that channel up after the reconnect, without waiting for another event', async () => {
      const flaky = await proxy();
      const a = await instance(redis!.url);
      const b = await instance(flaky.url);
      const s = await client(`${b.url}/subscribe?channels=quiet`);
      await waitUntil(() => s.lastEventId() !== undefined, 'subscribed');
      flaky.refusing = true;
      flaky.dropAll((pubsub) => pubsub);
      for (const n of [1, 2, 3]) await a.registry.channel('quiet').broadcast(`while away ${n}`);
      flaky.refusing = false;
      // Nothing more is published on the channel: the catch-up alone must deliver these.
      await waitUntil(() => s.count() === 3, 'the three events', 10_000);
      expect(s.events.map((e) => e.data)).toEqual(['while away 1', 'while away 2', 'while away 3']);
    });
  });

  describe('when Redis is down as a channel is first joined', () => {
    it('closes that stream so the client retries, and subscribes for real once Redis is back', async () => {
      const down = await proxy();
      const b = await instance(down.url, { commandTimeout: 300 });
      down.refusing = true;
      down.dropAll();
      const first = await client(`${b.url}/subscribe?channels=late`);
      await first.ended;
      expect(b.errors.some((e) => /could not (subscribe to|read the log of) "late"/.test(e.message))).toBe(true);
      down.refusing = false;
      // What EventSource does after the stream ends: connect again.
      let again: TestStream | undefined;
      await waitUntil(
        () => {
          if (again === undefined || again.response.complete) {
            void client(`${b.url}/subscribe?channels=late`).then((s) => (again = s));
          }
          return again?.lastEventId() !== undefined;
        },
        'a later attempt is subscribed',
        15_000,
      );
      // Subscribed on Redis too (the client may hear its position before the SSUBSCRIBE is back).
      const subscribers = async (): Promise<number> => ((await admin!.call('PUBSUB', 'SHARDNUMSUB', `${prefix}:{late}`)) as [string, number])[1];
      for (let i = 0; i < 300 && (await subscribers()) === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await subscribers()).toBe(1);
      const a = await instance(redis!.url);
      await a.registry.channel('late').broadcast('it works');
      await waitUntil(() => again!.events.some((e) => e.data === 'it works'), 'the event');
    }, 30_000);
  });

  describe('when Redis freezes (every reply held)', () => {
    it('bounds every wait: broadcasts reject within commandTimeout, and close() resolves', async () => {
      const frozen = await proxy();
      const b = await instance(frozen.url, { commandTimeout: 300 });
      const s = await client(`${b.url}/subscribe`);
      await waitUntil(() => s.lastEventId() !== undefined, 'subscribed');
      frozen.pause();
      // Unbounded, either would wait for as long as Redis stays frozen: past this test's timeout.
      await expect(b.registry.channel('feed').broadcast('stuck')).rejects.toMatchObject({ code: 'ERR_SSE_ADAPTER_UNAVAILABLE' });
      await b.close();
      open = open.filter((item) => item !== b);
      frozen.resume();
    }, 30_000);
  });

  describe('with historyTtl', () => {
    it('lets the keys of a channel nobody is subscribed to expire after its last event', async () => {
      const a = await instance(redis!.url, {}, 300);
      await a.registry.channel('brief').broadcast('x');
      const meta = `${prefix}:{brief}:meta`;
      const ttl = await admin!.pttl(meta);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(300);
      await new Promise((r) => setTimeout(r, 400));
      expect(await admin!.exists(meta, `${prefix}:{brief}:log`)).toBe(0);
    });

    it('keeps the log of a channel someone is subscribed to', async () => {
      const a = await instance(redis!.url, {}, 300);
      const s = await client(`${a.url}/subscribe?channels=kept`);
      await waitUntil(() => s.lastEventId() !== undefined, 'subscribed');
      const { id } = await a.registry.channel('kept').broadcast('x');
      await new Promise((r) => setTimeout(r, 900));
      expect(await admin!.exists(`${prefix}:{kept}:meta`)).toBe(1);
      await expect(a.registry.head('kept')).resolves.toBe(id);
    });
  });

  describe('when a client reconnects hundreds of times between two instances while a third publishes every 3 ms', () => {
    it('never gets an event twice or misses one (replay racing live delivery)', async () => {
      const [a, b, c] = [await instance(redis!.url), await instance(redis!.url), await instance(redis!.url)];
      const feed = publisher(c.registry, 'feed', 3);
      let lastEventId: string | undefined;
      const offsetsSeen: number[] = [];
      const RECONNECTS = 300;
      for (let i = 0; i < RECONNECTS; i += 1) {
        const s = await client(`${(i % 2 === 0 ? a : b).url}/subscribe`, lastEventId === undefined ? undefined : { 'last-event-id': lastEventId });
        // Stay a few milliseconds: long enough to replay and to get some live events.
        await new Promise((r) => setTimeout(r, 5 + (i % 7)));
        s.destroy();
        await s.ended;
        offsetsSeen.push(...offsets(s));
        lastEventId = s.lastEventId() ?? lastEventId;
      }
      const published = await feed.stop();
      // A last connection collects the rest.
      const last = await client(`${a.url}/subscribe`, { 'last-event-id': lastEventId! });
      await waitUntil(() => (offsets(last).at(-1) ?? offsetsSeen.at(-1)) === published, 'every event', 10_000);
      offsetsSeen.push(...offsets(last));
      const first = offsetsSeen[0]!;
      expect(offsetsSeen).toEqual(Array.from({ length: published - first + 1 }, (_, i) => first + i));
      report(`${RECONNECTS} reconnects across two instances, ${offsetsSeen.length} events received, 0 duplicates, 0 gaps`);
    }, 60_000);
  });

  describe('when Redis comes back from a snapshot older than its last writes', () => {
    it('starts a new epoch, so clients get a reset instead of other events at the offsets they hold', async () => {
      if (!redis!.ownServer) return; // cannot restart an external REDIS_URL
      const a = await instance(redis!.url);
      const b = await instance(redis!.url);
      const s = await client(`${a.url}/subscribe`);
      await waitUntil(() => s.lastEventId() !== undefined, 'subscribed');
      for (const n of [1, 2, 3]) await b.registry.channel('feed').broadcast(`e${n}`);
      await redis!.save();
      for (const n of [4, 5]) await b.registry.channel('feed').broadcast(`e${n}`);
      await s.waitForEvents(5);
      const held = s.lastEventId()!;
      // The snapshot holds e1 to e3: e4 and e5 are gone, and the next event would be offset 4 again.
      await redis!.restartFromSnapshot();
      await waitUntil(() => s.events.some((e) => e.event === RESET_EVENT), 'a reset', 15_000);
      const deadline = Date.now() + 15_000;
      for (;;) {
        try {
          await b.registry.channel('feed').broadcast('after');
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await waitUntil(() => s.events.some((e) => e.data === 'after'), 'the event after');
      const reset = s.events.find((e) => e.event === RESET_EVENT)!;
      expect(JSON.parse(reset.data)).toMatchObject({ channel: 'feed', reason: 'lost' });
      const after = s.events.find((e) => e.data === 'after')!;
      // A new epoch: no position of the old one can be mistaken for a new event.
      expect(after.id!.split('.')[1]).not.toBe(held.split('.')[1]);
      // Whoever still holds an old position is told, not served other events under it.
      const late = await client(`${b.url}/subscribe`, { 'last-event-id': held });
      await late.waitForEvents(2);
      expect(late.events[0]).toMatchObject({ event: RESET_EVENT });
      expect(late.events.slice(1).map((e) => e.data)).toEqual(['after']);
    }, 40_000);
  });

  describe('when two broadcasts run at once', () => {
    it('resolves each with its own id', async () => {
      const a = await instance(redis!.url);
      const results = await Promise.all([a.registry.channel('feed').broadcast('one'), a.registry.channel('feed').broadcast('two')]);
      expect(new Set(results.map((r) => r.id)).size).toBe(2);
    });
  });

  describe('when the reply to an append is lost after Redis ran it', () => {
    it('stores and delivers the event once, and the broadcast resolves with its one position', async () => {
      const link = await proxy();
      const a = await instance(link.url);
      const watcher = await instance(redis!.url);
      const s = await client(`${watcher.url}/subscribe`);
      await waitUntil(() => s.lastEventId() !== undefined, 'the client is told its position');
      const lost = link.loseNextReply(/sseAppend|EVALSHA|EVAL/i);
      const result = await a.registry.channel('feed').broadcast('once');
      await lost;
      await a.registry.channel('feed').broadcast('next');
      await s.waitForEvents(2);
      expect(s.events.map((e) => e.data)).toEqual(['once', 'next']);
      expect(result.id).toBe(s.events[0]!.id);
      expect(await admin!.xlen(`${prefix}:{feed}:log`)).toBe(2);
    });
  });

  describe('when the adapter is given its own client and Redis freezes', () => {
    it('still bounds every command by commandTimeout', async () => {
      const link = await proxy();
      const own = new Redis(link.url);
      open.push({ close: () => Promise.resolve(own.disconnect()) });
      const a = await instance(redis!.url, { client: own, commandTimeout: 300 });
      link.pause();
      // Without the bound this broadcast (and the read below) would wait for as long as Redis is frozen.
      await expect(a.registry.channel('feed').broadcast('x')).rejects.toThrow(/timed out after/);
      await expect(a.registry.head('feed')).rejects.toThrow(/timed out after/);
      link.resume();
    });
  });

  describe('when connect() gives up while Redis is frozen', () => {
    it('leaves no connection behind once Redis answers again', async () => {
      const link = await proxy();
      const own = new Redis(link.url);
      open.push({ close: () => Promise.resolve(own.disconnect()) });
      await own.ping();
      link.pause();
      await expect(RedisAdapter.connect({ client: own, prefix, connectTimeout: 200 })).rejects.toThrow(/could not connect/);
      link.resume();
      // The INFO the adapter sent goes through now; a PING behind it on the same connection
      // answers after it, and a fresh connection after anything the adapter would have opened.
      await own.ping();
      const probe = new Redis(link.url);
      await probe.ping();
      expect(link.connections).toBe(2);
      probe.disconnect();
    });
  });

  describe('when something else publishes on a channel or writes into its log', () => {
    const garbage = [
      'not json',
      '[1, 2]',
      JSON.stringify({ v: '1', e: '', o: '0', t: 'x', n: 'two\nlines' }),
      JSON.stringify({ v: '1', e: '', o: '0', t: 'x', c: 'an\nid' }),
      JSON.stringify({ v: '1', e: '', o: '0', t: 'x', c: 'nul\u0000' }),
      JSON.stringify({ v: '1', e: 'nope!', o: '5', t: 'x' }),
      JSON.stringify({ v: '1', e: '', o: '-1', t: 'x' }),
      JSON.stringify({ v: '1', e: '', o: '0', t: 42 }),
      JSON.stringify({ v: '1', e: '', o: '0', t: 'x', k: 'weird' }),
      JSON.stringify({ v: '2', e: '', o: '0', t: 'from a newer version' }),
    ];

    it('skips and counts every malformed message, reports it, and keeps delivering', async () => {
      const a = await instance(redis!.url);
      const s = await client(`${a.url}/subscribe`);
      await waitUntil(() => s.lastEventId() !== undefined, 'the client is told its position');
      for (const message of garbage) {
        if (a.adapter.sharded) await admin!.spublish(`${prefix}:{feed}`, message);
        else await admin!.publish(`${prefix}:{feed}`, message);
      }
      await a.registry.channel('feed').broadcast('still here');
      await s.waitForEvents(1);
      expect(s.events.map((e) => e.data)).toEqual(['still here']);
      expect(a.registry.stats().invalidMessages).toBe(garbage.length);
      expect(a.errors.filter((e) => (e as { code?: string }).code === 'ERR_SSE_INVALID_MESSAGE').length).toBeGreaterThanOrEqual(1);
    });

    it('skips log entries it cannot read, replays the rest, and publishes on', async () => {
      const a = await instance(redis!.url);
      const { id } = await a.registry.channel('feed').broadcast('first');
      // Entries written by something else at the next offsets, in shapes this version cannot read.
      const head = Number(id!.split('.')[0]);
      await admin!.hincrby(`${prefix}:{feed}:meta`, 'head', 2);
      await admin!.xadd(`${prefix}:{feed}:log`, `${head + 1}-0`, 'v', '1', 't', 'x', 'n', 'bad\nname');
      await admin!.xadd(`${prefix}:{feed}:log`, `${head + 2}-0`, 'v', '9', 't', 'newer');
      await a.registry.channel('feed').broadcast('after');
      const s = await client(`${a.url}/subscribe`, { 'last-event-id': id! });
      await s.waitForEvents(1);
      expect(s.events.map((e) => e.data)).toEqual(['after']);
      expect(a.registry.stats().invalidMessages).toBe(2);
    });

    it('starts a new epoch when its log holds an entry past its head, instead of failing every publish', async () => {
      const a = await instance(redis!.url);
      const { id } = await a.registry.channel('feed').broadcast('first');
      await admin!.xadd(`${prefix}:{feed}:log`, '*', 'v', '1', 't', 'someone else');
      const { id: next } = await a.registry.channel('feed').broadcast('second');
      expect(next!.split('.')[1]).not.toBe(id!.split('.')[1]);
      const s = await client(`${a.url}/subscribe`, { 'last-event-id': id! });
      await s.waitForEvents(2);
      expect(s.events[0]).toMatchObject({ event: RESET_EVENT });
      expect(s.events[1]!.data).toBe('second');
    });
  });
  describe('when the Pub/Sub connection comes back but Redis never answers its subscriptions again', () => {
    // ioredis resubscribes a returning Pub/Sub connection on its own, without handling the reply:
    // closed before Redis answers, those commands reject with nobody listening, and Node's default
    // for an unhandled rejection ends the process. The adapter resubscribes itself, bounded.
    it.each([
      ['sharded', true],
      ['classic', false],
    ])('closing the adapter (%s Pub/Sub) leaves no promise rejected unhandled', async (_name, sharded) => {
      const p = await proxy();
      const adapter = await RedisAdapter.connect({ url: p.url, prefix, commandTimeout: 300, sharded });
      const errors: Error[] = [];
      adapter.onError = (error) => errors.push(error);
      try {
        const unhandled = await unhandledDuring(async () => {
          for (const channel of ['a', 'b', 'c']) await adapter.subscribe(channel, () => undefined);
          const silenced = p.silenceAfter(/SUBSCRIBE/i);
          p.dropAll((pubsub) => pubsub);
          await silenced;
          await adapter.close();
          // The connection's end rejects whatever still waits on it.
          await waitUntil(() => p.connections === 0, "the adapter's connections closed");
        });
        expect(unhandled).toEqual([]);
        expect(errors.map((error) => error.message).join('\n')).toMatch(/could not subscribe again/);
      } finally {
        await adapter.close();
      }
    });
  });
});

describe('waiting for a Redis that is away', () => {
  it('adds one pair of listeners to the connection however many wait, and removes them when it ends', async () => {
    // A port nobody listens on: the connection keeps reconnecting.
    const closed = await startServer(express());
    const url = closed.url.replace('http:', 'redis:');
    await closed.close();
    const connection = new Redis(url, { lazyConnect: true, retryStrategy: () => 20, maxRetriesPerRequest: 0 });
    connection.on('error', () => undefined);
    const connecting = connection.connect().catch(() => undefined);
    try {
      await waitUntil(() => connection.status === 'connecting' || connection.status === 'reconnecting', 'the connection retrying');
      const base = [connection.listenerCount('ready'), connection.listenerCount('end')];
      // Every broadcast and read waits here while Redis is away (Node warns past 10 listeners).
      const waits = Array.from({ length: 50 }, () => ready(connection).then(() => 'ready', () => 'ended'));
      expect([connection.listenerCount('ready'), connection.listenerCount('end')]).toEqual([base[0]! + 1, base[1]! + 1]);
      connection.disconnect();
      expect(new Set(await Promise.all(waits))).toEqual(new Set(['ended']));
      expect([connection.listenerCount('ready'), connection.listenerCount('end')]).toEqual(base);
    } finally {
      connection.disconnect();
      await connecting;
    }
  });
});
