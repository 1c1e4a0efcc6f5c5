// The Redis adapter on a real Redis Cluster (3 masters, no replicas, Redis 7: sharded Pub/Sub).
// Every channel's keys (`P:{C}:meta`, `P:{C}:log`) and its Pub/Sub channel (`P:{C}`) share the
// hash tag {C}: one slot per channel, so channels spread over the masters, and a channel moves
// with its slot when the cluster is resharded.
import { randomUUID } from 'node:crypto';
import express from 'express';
import Redis, { Cluster } from 'ioredis';
import { ChannelRegistry, RESET_EVENT, SseError, sse } from 'express-sse-hub';
import { RedisAdapter } from 'express-sse-hub/redis';
import { HAS_REDIS_CLUSTER_BINARIES, keySlot, startRedisCluster, type TestCluster } from './helpers/redis-cluster';
import { openStream, queryString, startServer, waitUntil, type TestServer, type TestStream } from './helpers/server';
import { report } from './helpers/report';

// Skipped, with the message startRedisCluster() prints, only where redis-server or redis-cli is
// missing and CI is unset; under CI startRedisCluster() throws instead, so there they always run.
const RUN = HAS_REDIS_CLUSTER_BINARIES || process.env.CI !== undefined;
if (!RUN) console.warn('Redis Cluster tests skipped: redis-server or redis-cli is not on PATH (apt-get install -y redis-server)');
const describeCluster = RUN ? describe : describe.skip;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for `promise` at most `ms` (leaving no timer behind); false if it did not settle in time. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
/** An error's message, with its causes. */
const messageOf = (error: unknown): string =>
  error instanceof Error ? `${error.message}${error.cause === undefined ? '' : ` (cause: ${messageOf(error.cause)})`}` : String(error);

interface Instance {
  readonly client: Cluster;
  readonly adapter: RedisAdapter;
  readonly registry: ChannelRegistry;
  readonly server: TestServer;
  /** What the registry reported on its `error` event. */
  readonly errors: Error[];
  close(): Promise<void>;
}

interface InstanceOptions {
  readonly history?: number;
  readonly verifyInterval?: number | false;
}

/** Events of a client other than `reset`, as "data" strings. */
const dataOf = (client: TestStream): string[] => client.events.filter((e) => e.event !== RESET_EVENT).map((e) => e.data);

/** The offset of a single-channel id `<offset>.<epoch>`. */
const offsetOf = (id: string): number => Number(id.split('.')[0]);
const epochOf = (id: string): string => id.split('.')[1]!;

describeCluster('RedisAdapter on a Redis Cluster', () => {
  let redis: TestCluster | undefined;
  let instances: Instance[] = [];
  let streams: TestStream[] = [];
  let prefix: string;

  beforeAll(async () => {
    redis = await startRedisCluster({ masters: 3 });
  }, 40_000);
  afterAll(async () => {
    await redis?.stop();
  });
  beforeEach(() => {
    prefix = `sse-${randomUUID().slice(0, 8)}`;
  });
  afterEach(async () => {
    for (const stream of streams) stream.destroy();
    streams = [];
    await Promise.all(instances.map((i) => i.close()));
    instances = [];
  });

  const startupNodes = (): { host: string; port: number }[] => redis!.nodes.map(({ host, port }) => ({ host, port }));

  async function startInstance(options: InstanceOptions = {}): Promise<Instance> {
    const { history = 1000, verifyInterval } = options;
    const client = new Cluster(startupNodes());
    let adapter: RedisAdapter;
    try {
      adapter = await RedisAdapter.connect({ client, prefix, ...(verifyInterval === undefined ? {} : { verifyInterval }) });
    } catch (error) {
      client.disconnect();
      throw error;
    }
    const registry = new ChannelRegistry({ adapter, history });
    const errors: Error[] = [];
    registry.on('error', (error) => errors.push(error));
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false }), (req, res) => {
      registry.subscribe(res, queryString(req.query.channels, 'feed').split(','));
    });
    const server = await startServer(app);
    const instance: Instance = {
      client,
      adapter,
      registry,
      server,
      errors,
      close: async () => {
        await registry.close();
        await server.close();
        // The adapter never closes a client it was given.
        if (!(await settlesWithin(client.quit(), 2000))) client.disconnect();
      },
    };
    instances.push(instance);
    return instance;
  }

  async function open(instance: Instance, channels: readonly string[], headers?: Record<string, string>): Promise<TestStream> {
    const stream = await openStream(`${instance.server.url}/subscribe?channels=${channels.map(encodeURIComponent).join(',')}`, { headers });
    streams.push(stream);
    return stream;
  }

  // A client is told its position once Redis confirmed its subscriptions: from then on it gets
  // every event.
  const subscribed = (clients: readonly TestStream[], timeoutMs = 5000): Promise<void[]> =>
    Promise.all(clients.map((c) => waitUntil(() => c.lastEventId() !== undefined, 'the client knows its position', timeoutMs)));

  /** The keys and Pub/Sub channel the adapter uses for channel `name`. */
  const keysOf = (name: string): { meta: string; log: string; pubsub: string } => ({
    meta: `${prefix}:{${name}}:meta`,
    log: `${prefix}:{${name}}:log`,
    pubsub: `${prefix}:{${name}}`,
  });

  /** A channel name (`<base>-<n>`) whose slot is `slot`. */
  function channelInSlot(base: string, slot: number): string {
    for (let n = 0; n < 1_000_000; n += 1) if (keySlot(`${base}-${n}`) === slot) return `${base}-${n}`;
    throw new Error(`no channel name for slot ${slot}`);
  }

  /**
   * A channel that lives in the lowest slot master `from` owns: the slot
   * `redis-cli --cluster reshard --cluster-slots 1` moves.
   */
  async function channelToMove(base: string, from: number): Promise<string> {
    const [lowest] = await redis!.ownedSlots(from);
    const name = channelInSlot(base, lowest!);
    expect(await redis!.slotOwner(keysOf(name).meta)).toBe(from);
    return name;
  }

  describe('when two instances broadcast on 20 channels spread over the masters', () => {
    it('delivers each channel to clients on both instances exactly once, in order', async () => {
      const channels = Array.from({ length: 20 }, (_, i) => `news-${i}`);
      // The adapter's keys of a channel and its Pub/Sub channel share one slot (checked with
      // CLUSTER KEYSLOT), and the channels live on several masters.
      const owners = new Set<number>();
      const [a, b] = [await startInstance({ history: 100 }), await startInstance({ history: 100 })];
      for (const name of channels) {
        const { meta, log, pubsub } = keysOf(name);
        const slots = await Promise.all([meta, log, pubsub].map(async (key) => Number(await a.client.call('CLUSTER', 'KEYSLOT', key))));
        expect(slots).toEqual([keySlot(meta), keySlot(meta), keySlot(meta)]);
        owners.add(await redis!.slotOwner(meta));
      }
      expect(owners.size).toBeGreaterThanOrEqual(2);
      expect(a.adapter.sharded).toBe(true);
      expect(b.adapter.sharded).toBe(true);

      // Per instance: one client on every channel (one connection, 20 positions in its id) and
      // one on half of them.
      const firstHalf = channels.slice(0, 10);
      const secondHalf = channels.slice(10);
      const clients = [
        { stream: await open(a, channels), channels },
        { stream: await open(a, firstHalf), channels: firstHalf },
        { stream: await open(b, channels), channels },
        { stream: await open(b, secondHalf), channels: secondHalf },
      ];
      await subscribed(clients.map((c) => c.stream));

      // Every channel at once; within a channel, sequential broadcasts alternating the instances.
      const perChannel = 6;
      const ids = new Map<string, string[]>();
      await Promise.all(
        channels.map(async (name) => {
          const list: string[] = [];
          for (let i = 0; i < perChannel; i += 1) {
            const { id } = await [a, b][i % 2]!.registry.channel(name).broadcast(`${name}#${i}`);
            list.push(id!);
          }
          ids.set(name, list);
        }),
      );
      for (const list of ids.values()) {
        expect(list.map(offsetOf)).toEqual(Array.from({ length: perChannel }, (_, i) => i + 1));
        expect(new Set(list.map(epochOf)).size).toBe(1);
      }

      await Promise.all(clients.map((c) => c.stream.waitForEvents(c.channels.length * perChannel, 10_000)));
      await sleep(200); // a duplicate would arrive meanwhile
      for (const { stream, channels: subscribedTo } of clients) {
        const received = dataOf(stream);
        expect(received).toHaveLength(subscribedTo.length * perChannel);
        for (const name of subscribedTo) {
          expect(received.filter((d) => d.startsWith(`${name}#`))).toEqual(Array.from({ length: perChannel }, (_, i) => `${name}#${i}`));
        }
      }
      expect([...a.errors, ...b.errors].map(messageOf)).toEqual([]);
    });
  });

  describe('when channel names hold the characters that end or escape a hash tag', () => {
    it('keeps each channel in one slot (no CROSSSLOT) and tells the names apart', async () => {
      const a = await startInstance();
      const b = await startInstance();
      const names = ['}starts', 'mid}dle', '{braces}', '%7Dstarts', '100%'];
      const clients = await Promise.all(names.map((name) => open(b, [name])));
      for (const name of names) await a.registry.channel(name).broadcast(`on ${name}`);
      for (const [i, name] of names.entries()) {
        await clients[i]!.waitForEvents(1);
        expect(clients[i]!.events.map((e) => e.data)).toEqual([`on ${name}`]);
      }
      await expect(b.registry.head(names)).resolves.toMatch(/^(1\.[0-9a-z]+,){4}1\.[0-9a-z]+$/);
    });
  });

  describe('when a client reconnects to another instance with its Last-Event-ID', () => {
    it('replays exactly what it missed, from channels on two masters, then continues live', async () => {
      const a = await startInstance();
      const b = await startInstance();
      // Two channels on different masters.
      const x = 'replay-x';
      let y = '';
      for (let n = 0; y === ''; n += 1) {
        if ((await redis!.slotOwner(keysOf(`replay-y${n}`).meta)) !== (await redis!.slotOwner(keysOf(x).meta))) y = `replay-y${n}`;
      }
      const first = await open(a, [x, y]);
      await subscribed([first]);
      for (let i = 1; i <= 3; i += 1) {
        await b.registry.channel(x).broadcast(`x${i}`);
        await a.registry.channel(y).broadcast(`y${i}`);
      }
      await first.waitForEvents(6);
      const lastId = first.lastEventId()!;
      expect(lastId.split(',')).toHaveLength(2);
      first.destroy();
      await waitUntil(() => a.registry.stats().connections === 0, 'instance A noticed the client left');

      for (let i = 4; i <= 5; i += 1) {
        await a.registry.channel(x).broadcast(`x${i}`);
        await b.registry.channel(y).broadcast(`y${i}`);
      }
      const again = await open(b, [x, y], { 'last-event-id': lastId });
      await again.waitForEvents(4);
      await b.registry.channel(x).broadcast('x6');
      await a.registry.channel(y).broadcast('y6');
      await again.waitForEvents(6);
      await sleep(100);
      const received = dataOf(again);
      expect(received).toHaveLength(6);
      expect(received.filter((d) => d.startsWith('x'))).toEqual(['x4', 'x5', 'x6']);
      expect(received.filter((d) => d.startsWith('y'))).toEqual(['y4', 'y5', 'y6']);
      expect(again.events.some((e) => e.event === RESET_EVENT)).toBe(false);
      expect([...a.errors, ...b.errors].map(messageOf)).toEqual([]);
    });
  });

  describe('when a standalone client points at a node that does not own the channel', () => {
    it('rejects broadcast() with an error that names MOVED and the Cluster client, not an outage', async () => {
      const node = redis!.nodes[0]!;
      // Channels whose slots another master owns.
      const elsewhere: string[] = [];
      for (let n = 0; elsewhere.length < 2; n += 1) {
        if ((await redis!.slotOwner(keysOf(`moved-${n}`).meta)) !== 0) elsewhere.push(`moved-${n}`);
      }
      const client = new Redis({ host: node.host, port: node.port });
      const adapter = await RedisAdapter.connect({ client, prefix, commandTimeout: 2000 });
      const registry = new ChannelRegistry({ adapter, history: 10 });
      try {
        const expectMoved = async (attempt: Promise<unknown>): Promise<void> => {
          const error: unknown = await attempt.then(
            () => new Error('resolved'),
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(SseError);
          expect(error).toMatchObject({ code: 'ERR_SSE_ADAPTER_UNAVAILABLE' });
          const { message } = error as SseError;
          expect(message).toMatch(/MOVED \d+ 127\.0\.0\.1:\d+/);
          expect(message).toMatch(/Cluster/);
          expect(message).not.toMatch(/unreachable/i);
        };
        // With history (the append script) and without (a plain SPUBLISH).
        await expectMoved(registry.channel(elsewhere[0]!).broadcast('x'));
        await expectMoved(registry.channel(elsewhere[1]!, { history: 0 }).broadcast('x'));
        // Reading the log (what a subscription does first) says the same.
        await expectMoved(registry.channel(elsewhere[0]!).head());
      } finally {
        await registry.close();
        await client.quit().catch(() => client.disconnect());
      }
    });
  });

  describe("when the channel's slot moves to another master during traffic", () => {
    // Two ways to move it: redis-cli (one slot: quick), and by hand with a pause in every
    // intermediate state (see moveSlot), so that broadcasts, reads and checks meet ASK
    // redirections and a slot owned by the target while the source still migrates it.
    const moves = [
      { how: 'redis-cli --cluster reshard', from: 1, to: 2, move: (_slot: number, from: number, to: number) => redis!.reshard(from, to, 1) },
      { how: 'MIGRATE, step by step', from: 2, to: 0, move: (slot: number, _from: number, to: number) => redis!.moveSlot(slot, to, 300) },
    ];
    it.each(moves)('gives every client on both instances every event exactly once, in order ($how)', async ({ from, to, move: moveChannel }) => {
      const name = await channelToMove('reshard', from);
      // verifyInterval 500: the adapter compares what each channel received with its log's head
      // every 500 ms (the safety net for Pub/Sub messages lost without a reconnect).
      const a = await startInstance({ verifyInterval: 500 });
      const b = await startInstance({ verifyInterval: 500 });
      const clients = [await open(a, [name]), await open(a, [name]), await open(b, [name]), await open(b, [name])];
      await subscribed(clients);
      const channel = a.registry.channel(name);

      // The publisher: instance A starts a broadcast every ~5 ms, without waiting for the previous
      // one to resolve (a broadcast resolves once its event was fanned out on A, so its latency
      // must not slow the publishing down). Event n is retried until a broadcast of it resolves;
      // each attempt carries its own data ("e<n>.<attempt>"), so what a client got says which
      // attempt it was.
      //
      // What the clients must get: the channel's log, which is the one order every client sees.
      // It holds every attempt that resolved, each at the position its id names, and those are
      // the published sequence, in order. An attempt that rejected may or may not have been
      // stored (a timeout after Redis ran the script): if it was, it sits at its own position
      // like any other event, and a client gets it there and only there; if not, no client gets
      // it. So every client's stream must equal the log exactly (contiguous offsets 1..head, no
      // duplicate, no gap), every resolved attempt must be in it at its id, and nothing else
      // than attempts may be in it, none twice.
      const total = 300;
      const successes: { data: string; id: string }[] = [];
      const failures: { data: string; error: string }[] = [];
      const giveUpAt = Date.now() + 25_000;
      const publish = async (n: number): Promise<void> => {
        for (let attempt = 1; ; attempt += 1) {
          const data = `e${n}.${attempt}`;
          try {
            const { id } = await channel.broadcast(data);
            successes.push({ data, id: id! });
            return;
          } catch (error) {
            failures.push({ data, error: messageOf(error) });
            if (Date.now() > giveUpAt) throw error;
            await sleep(20);
          }
        }
      };
      const tasks: Promise<void>[] = [];
      let moveStarted = 0;
      let moveEnded = 0;
      let move: Promise<void> | undefined;
      let afterMove = 0;
      // At least `total` events, and at least 50 after the move completed.
      for (let n = 0; (n < total || moveEnded === 0 || afterMove < 50) && n < 5000; n += 1) {
        tasks.push(publish(n));
        if (n === 60) {
          moveStarted = Date.now();
          move = moveChannel(keySlot(name), from, to).then(() => {
            moveEnded = Date.now();
          });
        }
        if (moveEnded !== 0) afterMove += 1;
        await sleep(5);
      }
      await move;
      const outcomes = await Promise.allSettled(tasks);
      const published = tasks.length;
      expect(await redis!.slotOwner(keysOf(name).meta)).toBe(to);
      report(
        `moving slot ${keySlot(name)} (master ${from} → ${to}) took ${moveEnded - moveStarted} ms; ${published} events published, ` +
          `${afterMove} after the move; ${failures.length} broadcast error(s), retried:` +
          (failures.length === 0 ? ' none' : `\n${failures.map((f) => `  ${f.data}: ${f.error}`).join('\n')}`),
      );
      // Every event was eventually published: each error was retried until a broadcast resolved.
      expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
      expect(successes).toHaveLength(published);

      // The log, read from Redis: contiguous offsets 1..head in one epoch.
      const head = (await a.registry.channel(name).head())!;
      const epoch = epochOf(head);
      const read = await a.adapter.read(name, [{ epoch, offset: 0 }], { history: 1000, ttl: 0 });
      const log = read.events.map((e) => ({ id: `${e.offset}.${e.epoch}`, data: e.text }));
      expect(read.evicted).toBe(false);
      expect(log.map((e) => offsetOf(e.id))).toEqual(Array.from({ length: offsetOf(head) }, (_, i) => i + 1));
      // Every resolved attempt is in the log at its id…
      const byId = new Map(log.map((e) => [e.id, e.data]));
      for (const { data, id } of successes) expect({ id, data: byId.get(id) }).toEqual({ id, data });
      // …which holds nothing but attempts, none twice; an extra entry can only be a rejected one.
      const attempts = new Set([...successes, ...failures].map((s) => s.data));
      expect(log.filter((e) => !attempts.has(e.data))).toEqual([]);
      expect(new Set(log.map((e) => e.data)).size).toBe(log.length);
      const resolved = new Set(successes.map((s) => s.data));
      const storedRejections = log.filter((e) => !resolved.has(e.data));
      if (storedRejections.length > 0) report(`rejected broadcasts that were stored anyway: ${storedRejections.map((e) => `${e.data} at ${e.id}`).join(', ')}`);

      // Every client ends up with exactly the log: every event once, in order.
      const settled = Date.now();
      await Promise.all(clients.map((c) => c.waitForEvents(log.length, 15_000)));
      report(`clients had every event ${Date.now() - settled} ms after the last broadcast resolved`);
      await sleep(300); // a duplicate would arrive meanwhile
      // The published sequence: the broadcasts that resolved, in the order of their ids.
      const sequence = [...successes].sort((x, y) => offsetOf(x.id) - offsetOf(y.id));
      for (const client of clients) {
        expect(client.events.map((e) => ({ id: e.id, data: e.data }))).toEqual(log);
        expect(client.events.filter((e) => resolved.has(e.data)).map((e) => ({ id: e.id, data: e.data }))).toEqual(sequence);
      }
      // Broadcasts overlap, so the log may order them otherwise than they were called (a
      // redirected one overtaken by the next): reported, not a failure.
      const calledAt = (data: string): number => Number(/^e(\d+)\./.exec(data)![1]);
      const overtaken = sequence.filter((entry, i) => i > 0 && calledAt(entry.data) < calledAt(sequence[i - 1]!.data)).length;
      if (overtaken > 0) report(`${overtaken} broadcast(s) stored after one called later`);
      expect([...a.errors, ...b.errors].map(messageOf)).toEqual([]);
    }, 45_000);
  });

  describe("after a channel's slot moved to another master", () => {
    // With the periodic check off, only Pub/Sub delivers: this says whether the adapter follows
    // its channel to the new master by itself.
    it('delivers new events live again on every instance', async () => {
      const from = 0;
      const to = 2;
      const name = await channelToMove('live-after-move', from);
      const a = await startInstance({ verifyInterval: false });
      const b = await startInstance({ verifyInterval: false });
      const onA = await open(a, [name]);
      const onB = await open(b, [name]);
      await subscribed([onA, onB]);
      expect((await a.registry.channel(name).broadcast('before')).delivered).toBe(1);
      await Promise.all([onA.waitForEvents(1), onB.waitForEvents(1)]);

      await redis!.reshard(from, to, 1);
      expect(await redis!.slotOwner(keysOf(name).meta)).toBe(to);
      // A broadcast resolves once its event came back to A's subscribers (or 5 s later with
      // delivered: 0).
      const result = await a.registry.channel(name).broadcast('after');
      const arrivedOnB = await onB.waitForEvents(2, 3000).then(
        () => true,
        () => false,
      );
      expect({ deliveredOnA: result.delivered, arrivedOnB, receivedOnB: dataOf(onB), errors: [...a.errors, ...b.errors].map(messageOf) }).toEqual({
        deliveredOnA: 1,
        arrivedOnB: true,
        receivedOnB: ['before', 'after'],
        errors: [],
      });
      // Queued for A's client: it arrives a moment later.
      await onA.waitForEvents(2, 2000);
      expect(dataOf(onA)).toEqual(['before', 'after']);
    }, 20_000);

    it('lets a new client subscribe on an instance that never subscribed to the channel before the move', async () => {
      const from = 1;
      const to = 0;
      const name = await channelToMove('subscribe-after-move', from);
      const a = await startInstance({ verifyInterval: false });
      const b = await startInstance({ verifyInterval: false });
      // B's Pub/Sub connection learnt the slot map when it connected, before the move…
      await redis!.reshard(from, to, 1);
      await a.registry.channel(name).broadcast('stored after the move');

      // …then its first subscriber to the moved channel arrives. It must be subscribed (told its
      // position) promptly, not have its stream closed.
      const started = Date.now();
      const client = await open(b, [name]);
      let closed = false;
      void client.ended.then(() => {
        closed = true;
      });
      await waitUntil(() => client.lastEventId() !== undefined || closed || Date.now() - started > 8000, 'the subscription settles', 10_000);
      expect({ subscribedWithin2s: client.lastEventId() !== undefined && Date.now() - started < 2000, closed, errors: b.errors.map(messageOf) }).toEqual({
        subscribedWithin2s: true,
        closed: false,
        errors: [],
      });
      await a.registry.channel(name).broadcast('live');
      await client.waitForEvents(1, 3000);
      expect(dataOf(client)).toEqual(['live']);
    }, 20_000);
  });
});
