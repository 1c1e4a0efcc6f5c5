// Cuts at every frame boundary of a replay, exhaustively, judged by the independent delivery
// checker (helpers/delivery-checker.ts, issue #21). A client in one, two or three channels is told
// where it starts (an id-only frame) and cut; a backlog is broadcast; then it reconnects with the
// id of the last frame it received, and its connection is cut after frame k1, then after frame
// k2 at every following reconnect, for every k1 and k2 up to the length of the replay, until it
// has the backlog. Then a live event on each channel must come next. Memory adapter (one
// process) and Redis (two registries on separate connections to one redis-server; every
// reconnect goes to the other one). Every scenario is fresh channels, and is checked for: no
// duplicate, no reorder, no gap, no reset (nothing was lost), every id with a position in every
// channel, every acknowledged event delivered.
//
// And on Redis, a broadcast from the other process that lands while a reconnect's replay reads
// the log (the reading process's commands slowed down through a proxy, its Pub/Sub not; another
// client keeps the channels live there): the event is both in the replay's read and fanned out
// meanwhile, and must come once, with every reconnect cut after 1, 2, … frames.
import { randomUUID } from 'node:crypto';
import express from 'express';
import { ChannelRegistry, MemoryAdapter, sse } from 'express-sse-hub';
import { RedisAdapter } from 'express-sse-hub/redis';
import { DeliveryChecker, type RecordingClient } from './helpers/delivery-checker';
import { FaultProxy } from './helpers/proxy';
import { HAS_REDIS, startRedis, type TestRedis } from './helpers/redis';
import { queryString, startServer, type TestServer } from './helpers/server';
import { report } from './helpers/report';

interface Node {
  readonly registry: ChannelRegistry;
  readonly server: TestServer;
  /** Called right after a connection subscribed (its replay's read is then on its way). */
  onSubscribe: (() => void) | undefined;
}

async function node(adapter: MemoryAdapter | RedisAdapter): Promise<Node> {
  const registry = new ChannelRegistry({ adapter, history: 100 });
  registry.on('error', () => undefined);
  const app = express();
  const made: Node = { registry, server: undefined as unknown as TestServer, onSubscribe: undefined };
  app.get('/subscribe', sse({ heartbeat: false }), (req, res) => {
    registry.subscribe(res, queryString(req.query.channels).split(','));
    made.onSubscribe?.();
  });
  (made as { server: TestServer }).server = await startServer(app);
  return made;
}

/** Backlogs, interleaved across channels, by number of channels. */
const BACKLOG: Record<number, number[]> = {
  1: [0, 0, 0],
  2: [0, 1, 1, 0, 1],
  3: [0, 1, 1, 2, 0, 2, 1],
};

interface Scenario {
  readonly width: number;
  readonly firstCut: number;
  readonly thenCut: number;
  /** A broadcast on one channel races each reconnect. */
  readonly racing: boolean;
}

let scenarios = 0;
let connections = 0;

async function runScenario(nodes: readonly Node[], s: Scenario, label: string): Promise<void> {
  const tag = randomUUID().slice(0, 8);
  const channels = Array.from({ length: s.width }, (_, i) => `cut-${tag}-${i}`);
  const checker = new DeliveryChecker(`${label} width ${s.width}, cut after ${s.firstCut} then ${s.thenCut}${s.racing ? ', racing broadcasts' : ''}`);
  let n = 0;
  let hop = 0;
  const send = (channel: string, on = nodes[0]!): Promise<string | undefined> => {
    n += 1;
    const data = `${channel.slice(-1)}:${n}`;
    checker.note(`broadcast ${data} on ${channel}`);
    return checker.broadcast(channel, data, () => on.registry.channel(channel).broadcast(data));
  };
  const url = (): string => `${nodes[hop++ % nodes.length]!.server.url}/subscribe?channels=${channels.join(',')}`;
  const client: RecordingClient = checker.client('client', channels);
  try {
    for (const channel of channels) await send(channel);
    // First connection: cut right after the id-only frame that says where it starts.
    checker.note('connect (first), cut after the id-only frame');
    await client.connect(url(), { cutAfter: 1 });
    connections += 1;
    await client.ended;
    const backlog = BACKLOG[s.width]!.map((i) => channels[i]!);
    const wanted: string[] = [];
    for (const channel of backlog) {
      await send(channel);
      wanted.push(`${channel.slice(-1)}:${n}`);
    }
    const has = (): boolean => {
      const got = new Set(client.eventData());
      return wanted.every((w) => got.has(w));
    };
    let cut = s.firstCut;
    let stuck = 0;
    for (let attempt = 0; attempt < 40 && !has(); attempt += 1) {
      const before = `${client.frames.length}|${client.lastEventId}`;
      checker.note(`reconnect with "${client.lastEventId}", cut after ${cut} frame(s)`);
      const target = url();
      const connected = client.connect(target, { cutAfter: cut });
      if (s.racing) {
        const channel = channels[attempt % channels.length]!;
        const racing = send(channel, nodes[attempt % nodes.length]);
        wanted.push(`${channel.slice(-1)}:${n}`);
        await racing;
      }
      await connected;
      connections += 1;
      await Promise.race([client.ended, client.waitFor(has, 'the backlog', 3000).catch(() => undefined)]);
      client.close();
      cut = s.thenCut;
      // A connection that brought nothing new twice in a row: the checker says why.
      stuck = `${client.frames.length}|${client.lastEventId}` === before ? stuck + 1 : 0;
      if (stuck >= 2) break;
    }
    // Live events must follow, each next in its channel.
    checker.note(`reconnect with "${client.lastEventId}" for the last events`);
    await client.connect(url());
    connections += 1;
    for (const channel of channels) {
      await send(channel);
      checker.last.set(channel, `${channel.slice(-1)}:${n}`);
    }
    await client.waitFor(() => checker.hasLast(client), 'the last events', 3000).catch(() => undefined);
  } finally {
    client.close();
  }
  scenarios += 1;
  const { violations } = checker.check();
  if (violations.length > 0) throw new Error(checker.report(violations));
}

function allScenarios(width: number): Scenario[] {
  const frames = BACKLOG[width]!.length;
  const list: Scenario[] = [];
  for (let firstCut = 1; firstCut <= frames + 1; firstCut += 1) {
    for (let thenCut = 1; thenCut <= frames + 1; thenCut += 1) list.push({ width, firstCut, thenCut, racing: false });
    list.push({ width, firstCut, thenCut: firstCut, racing: true });
  }
  return list;
}

/**
 * A broadcast from the other process lands while the replay reads the log: the reading process's
 * commands are slowed down (its Pub/Sub is not), so its read sees the event in the log and its
 * Pub/Sub brings the same event during the read. The event must come once. Each reconnect is cut
 * after `cut` frames.
 */
async function runReadRace(reader: Node, writer: Node, width: number, cut: number): Promise<void> {
  const tag = randomUUID().slice(0, 8);
  const channels = Array.from({ length: width }, (_, i) => `race-${tag}-${i}`);
  const checker = new DeliveryChecker(`redis read race, width ${width}, cut after ${cut}`);
  let n = 0;
  const send = (channel: string): Promise<string | undefined> => {
    n += 1;
    const data = `${channel.slice(-1)}:${n}`;
    checker.note(`broadcast ${data} on ${channel} (from the other process)`);
    return checker.broadcast(channel, data, () => writer.registry.channel(channel).broadcast(data));
  };
  const url = `${reader.server.url}/subscribe?channels=${channels.join(',')}`;
  const client = checker.client('client', channels);
  // Another client stays connected to the reading process: its channels are live there, so the
  // racing event is fanned out at once, while the replay's read is still on its way.
  const holder = checker.client('holder', channels);
  const racing: Promise<unknown>[] = [];
  try {
    for (const channel of channels) await send(channel);
    await holder.connect(url);
    await holder.waitFor(() => holder.lastEventId !== '', 'the holder is told where it is');
    checker.note('connect (first), cut after the id-only frame');
    await client.connect(url, { cutAfter: 1 });
    await client.ended;
    for (const i of BACKLOG[width]!) await send(channels[i]!);
    reader.onSubscribe = () => {
      for (const channel of channels) racing.push(send(channel));
    };
    for (let attempt = 0; attempt < 3; attempt += 1) {
      checker.note(`reconnect with "${client.lastEventId}", cut after ${cut} frame(s), while the other process broadcasts`);
      await client.connect(url, { cutAfter: cut });
      connections += 1;
      await Promise.race([client.ended, new Promise((r) => setTimeout(r, 300))]);
      client.close();
      await Promise.all(racing);
    }
    reader.onSubscribe = undefined;
    await client.connect(url);
    connections += 1;
    for (const channel of channels) {
      await send(channel);
      checker.last.set(channel, `${channel.slice(-1)}:${n}`);
    }
    await client.waitFor(() => checker.hasLast(client), 'the last events', 3000).catch(() => undefined);
    await holder.waitFor(() => checker.hasLast(holder), 'the last events', 3000).catch(() => undefined);
  } finally {
    reader.onSubscribe = undefined;
    client.close();
    holder.close();
  }
  scenarios += 1;
  const { violations } = checker.check();
  if (violations.length > 0) throw new Error(checker.report(violations));
}

afterAll(() => {
  report(`delivery cuts: ${scenarios} scenarios, ${connections} connections, 0 violations`);
});

describe('a replay cut at every frame boundary (memory adapter)', () => {
  let nodes: Node[] = [];
  beforeAll(async () => {
    nodes = [await node(new MemoryAdapter())];
  });
  afterAll(async () => {
    for (const n of nodes) {
      await n.registry.close({ timeout: 100 });
      await n.server.close();
    }
  });
  it.each([1, 2, 3])('resumes exactly in %i channel(s), wherever it is cut, as often as it is cut', async (width) => {
    for (const s of allScenarios(width)) await runScenario(nodes, s, 'memory');
  });
});

(HAS_REDIS ? describe : describe.skip)('a replay cut at every frame boundary (Redis, two registries)', () => {
  let redis: TestRedis | undefined;
  let nodes: Node[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    const prefix = `cuts-${randomUUID()}`;
    nodes = [
      await node(await RedisAdapter.connect({ url: redis!.url, prefix })),
      await node(await RedisAdapter.connect({ url: redis!.url, prefix })),
    ];
  });
  afterAll(async () => {
    for (const n of nodes) {
      await n.registry.close({ timeout: 100 });
      await n.server.close();
    }
    if (redis?.ownServer) await redis.stop();
  });
  it.each([1, 2, 3])('resumes exactly in %i channel(s), on either process, wherever it is cut', async (width) => {
    for (const s of allScenarios(width)) await runScenario(nodes, s, 'redis');
  });

  describe('when a broadcast lands while the replay reads the log', () => {
    let slow: FaultProxy;
    let reader: Node;
    const prefix = `cuts-race-${randomUUID()}`;
    beforeAll(async () => {
      const { port } = new URL(redis!.url);
      slow = await FaultProxy.start({ host: '127.0.0.1', port: Number(port) });
      slow.commandLatency = 25;
      reader = await node(await RedisAdapter.connect({ url: slow.url, prefix }));
    });
    afterAll(async () => {
      await reader.registry.close({ timeout: 100 });
      await reader.server.close();
      await slow.close();
    });
    it.each([1, 2, 3])('delivers it once in %i channel(s)', async (width) => {
      // The writer shares the reader's prefix: a registry of its own on its own connection.
      const writer = await node(await RedisAdapter.connect({ url: redis!.url, prefix }));
      try {
        for (let cut = 1; cut <= BACKLOG[width]!.length + 2; cut += 1) await runReadRace(reader, writer, width, cut);
      } finally {
        await writer.registry.close({ timeout: 100 });
        await writer.server.close();
      }
    });
  });
});
