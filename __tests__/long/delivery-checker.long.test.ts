// The delivery guarantee under faults, judged by the independent checker
// (helpers/delivery-checker.ts, issue #21): seeded random episodes.
//
// An episode: two registries (each its own RedisAdapter, through its own fault proxy, to one
// redis-server), or one in-memory registry; each behind an HTTP fault proxy. Two to four clients
// in one to three of three channels connect, reload (a new connection with the last id), get cut
// after a random number of frames, stay away and come back, on either process, while broadcasts
// race them; in half the episodes the route writes before it subscribes. Faults: client
// connections cut or stalled (HTTP proxy); a Redis reply lost after Redis ran the command (the
// client resends); Pub/Sub messages duplicated or swapped; garbage published on the channels'
// Pub/Sub names; Redis SIGSTOP/SIGCONT; Redis restarted with or without its data; FLUSHALL;
// CLIENT KILL; a registry restarted (in memory: its log is lost). Then everything heals, every client comes back, a last
// event is broadcast on each channel, and the checker judges every client's whole stream.
//
// Then CHECKER_CLUSTER_EPISODES (default 30) episodes on a Redis Cluster of three masters: two
// registries on their own Cluster clients; client cuts, stalls, reloads, registry restarts, CLIENT
// KILL on a node, and a channel's slot moved to another master step by step (MIGRATING/IMPORTING,
// ASK) while broadcasts go on.
//
// CHECKER_SEED (default: the day's number) and CHECKER_EPISODES (default 1000) choose where and how
// long (CHECKER_CLUSTER_SEED, default CHECKER_SEED + 1000000, for the Cluster part); a failure
// prints its seed (CHECKER_SEED=<seed> CHECKER_EPISODES=1 replays it) and its trace; the totals are
// printed at the end. CHECKER_VERBOSE=1 prints a line per episode, 2 its whole trace.
import { randomUUID } from 'node:crypto';
import express from 'express';
import Redis, { Cluster } from 'ioredis';
import { ChannelRegistry, MemoryAdapter, sse } from 'express-sse-hub';
import { RedisAdapter } from 'express-sse-hub/redis';
import { DeliveryChecker, type RecordingClient } from '../helpers/delivery-checker';
import { FaultProxy } from '../helpers/proxy';
import { CLUSTER_ADMIN_NAME, HAS_REDIS_CLUSTER_BINARIES, keySlot, startRedisCluster, type TestCluster } from '../helpers/redis-cluster';
import { HAS_REDIS, startRedis, type TestRedis } from '../helpers/redis';
import { queryString, startServer, type TestServer } from '../helpers/server';
import { report } from '../helpers/report';
import { prng } from '../helpers/prng';

const EPISODES = Number(process.env.CHECKER_EPISODES ?? 1000);
const SEED = Number(process.env.CHECKER_SEED ?? Math.floor(Date.now() / 86_400_000));
/** Episodes on a Redis Cluster (3 masters), after the others. */
const CLUSTER_EPISODES = Number(process.env.CHECKER_CLUSTER_EPISODES ?? 30);
const CLUSTER_SEED = Number(process.env.CHECKER_CLUSTER_SEED ?? SEED + 1_000_000);
/** Share of episodes on the in-memory registry. */
const MEMORY_SHARE = 0.25;


const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A message that is not an event: bytes, JSON that is not an object, another version, fields of the wrong type. */
function garbage(random: () => number): Buffer {
  const shapes = [
    () => Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256))),
    () => Buffer.from(''),
    () => Buffer.from('not json at all'),
    () => Buffer.from(['null', '42', '[1,2,3]', '"a string"', '{', '{}', '{"v":"1"'][Math.floor(random() * 7)]!),
    () => Buffer.from(JSON.stringify({ v: '2', e: 'k3f9a2b1', o: '1', t: 'from a newer version' })),
    () => Buffer.from(JSON.stringify({ v: '1', e: 5, o: '1', t: 'an epoch that is a number' })),
    () => Buffer.from(JSON.stringify({ v: '1', e: 'k3f9a2b1', o: '-4', t: 'a negative offset' })),
    () => Buffer.from(JSON.stringify({ v: '1', e: 'k3f9a2b1', o: '1', t: 7 })),
    () => Buffer.from(JSON.stringify({ v: '1', e: 'k3f9a2b1', o: '1', t: 'x', n: 'two\nlines' })),
    () => Buffer.from(`{"v":"1","t":"${'x'.repeat(200_000)}`),
  ];
  return shapes[Math.floor(random() * shapes.length)]!();
}

const FAULTS = [
  'cut',
  'stall',
  'cut-mid-replay',
  'reload',
  'away',
  'reply-lost',
  'pubsub-duplicate',
  'pubsub-swap',
  'sigstop',
  'restart-with-data',
  'restart-empty',
  'flushall',
  'client-kill',
  'registry-restart',
  'slot-move',
  'garbage',
] as const;
type Fault = (typeof FAULTS)[number];
/** Faults that lose data (a registry restart only in memory). */
const LOSING = new Set<Fault>(['restart-empty', 'flushall', 'registry-restart']);
/** Faults on a Cluster: no proxy between the adapter and the nodes, no restart of a node. */
const CLUSTER = new Set<Fault>(['cut', 'stall', 'cut-mid-replay', 'reload', 'away', 'registry-restart', 'slot-move', 'client-kill']);
const REDIS_ONLY = new Set<Fault>(['garbage', 'slot-move', 'reply-lost', 'pubsub-duplicate', 'pubsub-swap', 'sigstop', 'restart-with-data', 'restart-empty', 'flushall', 'client-kill']);

const totals = {
  episodes: 0,
  redis: 0,
  memory: 0,
  cluster: 0,
  lossy: 0,
  acked: 0,
  rejected: 0,
  frames: 0,
  events: 0,
  resets: 0,
  connections: 0,
  unattributed: 0,
  /** Pub/Sub messages the registries skipped as not events (the garbage fault's). */
  invalid: 0,
  faults: Object.fromEntries(FAULTS.map((f) => [f, 0])) as Record<Fault, number>,
  violations: 0,
  failedSeeds: [] as number[],
};

interface Node {
  registry: ChannelRegistry;
  server: TestServer;
  /** Between the registry and Redis (Redis mode). */
  redisProxy: FaultProxy | undefined;
  /** Between the clients and the server. */
  httpProxy: FaultProxy;
  port: number;
}

let redis: TestRedis | undefined;
let admin: Redis | undefined;
let cluster: TestCluster | undefined;

async function episode(seed: number, onCluster = false): Promise<string | undefined> {
  const random = prng(seed);
  const began = Date.now();
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const mode = onCluster ? 'cluster' : redis === undefined || random() < MEMORY_SHARE ? 'memory' : 'redis';
  // Most episodes lose no data (then no reset is allowed and every acknowledged event must reach
  // every client); the others may (Redis restarted empty, FLUSHALL, an in-memory registry
  // restarted, a history so short that it evicts).
  const mayLose = mode !== 'cluster' && random() < 0.35;
  const history = mayLose && random() < 0.25 ? 4 : 1000;
  const tag = randomUUID().slice(0, 8);
  const prefix = `chk-${tag}`;
  const channels = [0, 1, 2].map((i) => `ch${i}`);
  const checker = new DeliveryChecker(`seed ${seed} (${mode}, history ${history})`);
  if (history < 100) checker.lossy('a short history evicts');
  const errors: string[] = [];

  /** Cluster clients to close with their registry (the adapter never closes a client it was given). */
  const clusterClients = new Map<ChannelRegistry, Cluster>();
  const makeRegistry = async (node: Pick<Node, 'redisProxy'>): Promise<ChannelRegistry> => {
    let adapter: RedisAdapter | MemoryAdapter;
    let client: Cluster | undefined;
    if (mode === 'cluster') {
      client = new Cluster(cluster!.nodes.map(({ host, port }) => ({ host, port })));
      adapter = await RedisAdapter.connect({ client, prefix, commandTimeout: 1000, verifyInterval: 300 }).catch((error: unknown) => {
        client!.disconnect();
        throw error;
      });
    } else if (mode === 'redis') {
      adapter = await RedisAdapter.connect({ url: node.redisProxy!.url, prefix, commandTimeout: 400, verifyInterval: 300 });
    } else {
      adapter = new MemoryAdapter();
    }
    const registry = new ChannelRegistry({ adapter, history });
    if (client !== undefined) clusterClients.set(registry, client);
    registry.on('error', (error) => errors.push(error.message));
    return registry;
  };
  // Half the episodes' route writes before it subscribes, as the first seed's does (a
  // `connected` event; here a comment, which is not an event the checker would have to explain).
  const greets = random() < 0.5;
  const serve = async (node: Pick<Node, 'registry'>, port = 0): Promise<TestServer> => {
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false }), (req, res) => {
      if (greets) res.sse.comment('connected');
      node.registry.subscribe(res, queryString(req.query.channels).split(','));
    });
    return startServer(app, port);
  };
  const startNode = async (): Promise<Node> => {
    let redisProxy: FaultProxy | undefined;
    if (mode === 'redis') {
      const { port } = new URL(redis!.url);
      redisProxy = await FaultProxy.start({ host: '127.0.0.1', port: Number(port) });
      redisProxy.tamperable = true;
    }
    const partial = { redisProxy, registry: await makeRegistry({ redisProxy }) } as Node;
    partial.server = await serve(partial);
    partial.port = Number(new URL(partial.server.url).port);
    partial.httpProxy = await FaultProxy.start({ host: '127.0.0.1', port: partial.port });
    return partial;
  };
  const closeRegistry = async (registry: ChannelRegistry): Promise<void> => {
    totals.invalid += registry.stats().invalidMessages;
    await registry.close({ timeout: 100 }).catch(() => undefined);
    clusterClients.get(registry)?.disconnect();
    clusterClients.delete(registry);
  };
  const nodes: Node[] = [];
  const clients: RecordingClient[] = [];
  /** Clients that stay away for now (not reconnected by the step loop). */
  const away = new Set<RecordingClient>();
  let counter = 0;
  const inFlight = new Set<Promise<unknown>>();
  const broadcast = (node: Node, channel: string): Promise<string | undefined> => {
    counter += 1;
    const data = `${channel}#${counter}`;
    const registry = node.registry;
    const sent = checker.broadcast(channel, data, () => registry.channel(channel).broadcast(data));
    inFlight.add(sent);
    void sent.finally(() => inFlight.delete(sent));
    return sent;
  };
  const connect = async (client: RecordingClient, options: { cutAfter?: number } = {}): Promise<void> => {
    const node = pick(nodes);
    checker.note(`${client.name} connects to ${nodes.indexOf(node)} with "${client.lastEventId}"${options.cutAfter === undefined ? '' : `, cut after ${options.cutAfter} frame(s)`}`);
    totals.connections += 1;
    await client.connect(`${node.httpProxy.httpUrl}/subscribe?channels=${client.channels.join(',')}`, options);
  };
  const count = (fault: Fault): void => {
    totals.faults[fault] += 1;
  };

  try {
    const nodeCount = mode === 'memory' ? 1 : 2;
    for (let i = 0; i < nodeCount; i += 1) nodes.push(await startNode());
    // One event on each channel: its epoch is then known from an acknowledged id.
    for (const channel of channels) await broadcast(nodes[0]!, channel);
    const clientCount = 2 + Math.floor(random() * 3);
    for (let i = 0; i < clientCount; i += 1) {
      const width = 1 + Math.floor(random() * 3);
      const mine = [...channels].sort(() => random() - 0.5).slice(0, width);
      clients.push(checker.client(`client${i}`, mine));
    }
    for (const client of clients) await connect(client);

    const steps = 6 + Math.floor(random() * 10);
    for (let step = 0; step < steps; step += 1) {
      const roll = random();
      const node = pick(nodes);
      const client = pick(clients);
      if (roll < 0.35) {
        const burst = 1 + Math.floor(random() * 4);
        const sends = Array.from({ length: burst }, () => broadcast(pick(nodes), pick(channels)));
        checker.note(`${burst} broadcast(s)`);
        if (random() < 0.7) await Promise.all(sends);
      } else if (roll < 0.45) {
        await sleep(5 + random() * 30);
      } else {
        const candidates =
          mode === 'cluster'
            ? FAULTS.filter((f) => CLUSTER.has(f))
            : FAULTS.filter((f) => f !== 'slot-move' && (mode === 'redis' || !REDIS_ONLY.has(f)) && (mayLose || !LOSING.has(f) || (f === 'registry-restart' && mode === 'redis')));
        const fault = pick(candidates);
        count(fault);
        const at = nodes.indexOf(node);
        switch (fault) {
          case 'cut':
            checker.note(`every client connection to ${at} cut`);
            node.httpProxy.dropAll();
            break;
          case 'stall':
            checker.note(`client connections to ${at} stall`);
            node.httpProxy.pause();
            void broadcast(pick(nodes), pick(channels));
            await sleep(50 + random() * 200);
            node.httpProxy.resume();
            break;
          case 'cut-mid-replay':
            // Reconnect, and cut after a few frames of what comes (the replay, if any).
            await connect(client, { cutAfter: 1 + Math.floor(random() * 4) });
            await Promise.race([client.ended, sleep(150)]);
            break;
          case 'reload':
            checker.note(`${client.name} reloads`);
            client.close();
            await connect(client);
            break;
          case 'away':
            checker.note(`${client.name} goes away`);
            client.close();
            away.add(client);
            break;
          case 'reply-lost': {
            checker.note(`the reply to the next append from ${at} is lost`);
            const lost = node.redisProxy!.loseNextReply(/EVALSHA|EVAL/i);
            await Promise.all([broadcast(node, pick(channels)), Promise.race([lost, sleep(1000)])]);
            break;
          }
          case 'pubsub-duplicate':
            checker.note(`the next Pub/Sub messages to ${at} come twice`);
            node.redisProxy!.duplicatePubsub(1 + Math.floor(random() * 3));
            for (let i = 0; i < 3; i += 1) void broadcast(pick(nodes), pick(channels));
            break;
          case 'pubsub-swap':
            checker.note(`the next Pub/Sub messages to ${at} come out of order`);
            node.redisProxy!.swapPubsub(1 + Math.floor(random() * 2));
            for (let i = 0; i < 3; i += 1) void broadcast(pick(nodes), pick(channels));
            break;
          case 'sigstop':
            checker.note('Redis SIGSTOP');
            redis!.signal!('SIGSTOP');
            void broadcast(pick(nodes), pick(channels));
            await sleep(100 + random() * 500);
            redis!.signal!('SIGCONT');
            checker.note('Redis SIGCONT');
            break;
          case 'restart-with-data':
            checker.note('Redis restarts with its data');
            await Promise.allSettled([...inFlight]);
            checker.note('(broadcasts in flight settled)');
            await redis!.restart(true);
            break;
          case 'restart-empty':
            checker.lossy('Redis restarts without data');
            await redis!.restart(false);
            break;
          case 'flushall':
            checker.lossy('FLUSHALL');
            await admin!.flushall();
            break;
          case 'client-kill': {
            const type = pick(['pubsub', 'normal'] as const);
            if (mode === 'cluster') {
              const { port } = pick(cluster!.nodes);
              checker.note(`CLIENT KILL TYPE ${type} on the Cluster node at ${port}`);
              // Every connection of that type but the test's own (the cluster helper's admin
              // connections, named so: killed mid-command, they would fail the harness, not the hub).
              const one = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
              try {
                const listed = String(await one.call('CLIENT', 'LIST', 'TYPE', type)).split('\n');
                const mine = String(await one.call('CLIENT', 'ID'));
                const victims = listed
                  .filter((line) => !new RegExp(` name=${CLUSTER_ADMIN_NAME} `).test(line))
                  .map((line) => /(?:^| )id=(\d+) /.exec(line)?.[1])
                  .filter((id): id is string => id !== undefined && id !== mine);
                for (const id of victims) await one.call('CLIENT', 'KILL', 'ID', id).catch(() => undefined);
              } catch {
                // The node did not answer: nothing was killed.
              } finally {
                one.disconnect();
              }
            } else {
              checker.note(`CLIENT KILL TYPE ${type}`);
              await admin!.client('KILL', 'TYPE', type, 'SKIPME', 'yes');
            }
            break;
          }
          case 'garbage': {
            // Whatever else publishes on a channel's Pub/Sub name (another version, redis-cli, a
            // bug elsewhere): messages that are not events, never forged ones. The names are asked
            // of Redis, not derived from the adapter's key format.
            const sharded = (await admin!.call('PUBSUB', 'SHARDCHANNELS', `${prefix}*`)) as string[];
            const classic = (await admin!.call('PUBSUB', 'CHANNELS', `${prefix}*`)) as string[];
            const targets = [...sharded.map((name) => ['SPUBLISH', name] as const), ...classic.map((name) => ['PUBLISH', name] as const)];
            if (targets.length === 0) break;
            for (let i = 1 + Math.floor(random() * 3); i > 0; i -= 1) {
              const [command, name] = pick(targets);
              const junk = garbage(random);
              checker.note(`${command} ${name} ${JSON.stringify(junk.toString('latin1').slice(0, 40))}${junk.length > 40 ? ` (${junk.length} bytes)` : ''}`);
              await admin!.call(command, name, junk);
            }
            void broadcast(pick(nodes), pick(channels));
            break;
          }
          case 'slot-move': {
            const channel = pick(channels);
            const slot = keySlot(`{${channel}}`);
            const owner = await cluster!.slotOwner(`${prefix}:{${channel}}:meta`);
            const to = (owner + 1 + Math.floor(random() * 2)) % cluster!.nodes.length;
            checker.note(`the slot of ${channel} (${slot}) moves from master ${owner} to ${to}, step by step, while broadcasts go on`);
            // Handled from the start: a rejection while the broadcasts below go out is not "unhandled".
            const moving = cluster!.moveSlot(slot, to, 20 + Math.floor(random() * 60)).then(
              () => undefined,
              (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
            );
            for (let i = 0; i < 3; i += 1) {
              void broadcast(pick(nodes), channel);
              await sleep(15);
            }
            const failed = await moving;
            if (failed !== undefined) throw failed;
            break;
          }
          case 'registry-restart': {
            checker.note(`registry ${at} restarts`);
            if (mode === 'memory') checker.lossy('an in-memory registry restarts');
            await Promise.allSettled([...inFlight]);
            await closeRegistry(node.registry);
            await node.server.close();
            node.registry = await makeRegistry(node);
            node.server = await serve(node, node.port);
            break;
          }
        }
      }
      // A client away comes back now and then; the others reconnect as a browser would.
      for (const c of [...away]) if (random() < 0.3) away.delete(c);
      for (const c of clients) if (!c.connected && !away.has(c)) await connect(c);
    }

    // Heal, let every broadcast settle, bring everyone back.
    checker.note('heal');
    for (const node of nodes) {
      node.httpProxy.resume();
      node.redisProxy?.resume();
      node.redisProxy?.stopTampering();
    }
    await Promise.allSettled([...inFlight]);
    away.clear();
    const deadline = Date.now() + 15_000;
    // Connected, and with a position: an id from before (the replay starts there), or one told
    // on this connection (a client without an id starts where it joins).
    const positioned = (c: RecordingClient): boolean => c.connected && (c.lastEventId !== '' || c.frames.some((f) => f.connection === c.connections && f.idField !== undefined));
    while (!clients.every(positioned) && Date.now() < deadline) {
      for (const c of clients) if (!c.connected) await connect(c);
      await sleep(20);
    }
    if (!clients.every(positioned)) checker.problem('after the faults healed, not every client could connect within 15 s');
    for (const channel of channels) {
      let id: string | undefined;
      while (id === undefined && Date.now() < deadline) {
        id = await broadcast(nodes[0]!, channel);
        if (id === undefined) await sleep(50);
      }
      if (id !== undefined) checker.last.set(channel, `${channel}#${counter}`);
    }
    checker.note('the last events are broadcast');
    while (!clients.every((c) => checker.hasLast(c)) && Date.now() < deadline) {
      for (const c of clients) if (!c.connected) await connect(c);
      await sleep(20);
    }
    if (mode === 'redis' && !clients.every((c) => checker.hasLast(c))) {
      // What Redis says of the Pub/Sub subscriptions, for the trace.
      const names = channels.map((c) => `${prefix}:{${c}}`);
      const shard: unknown = await admin!.call('PUBSUB', 'SHARDNUMSUB', ...names).catch((e: Error) => e.message);
      const classic: unknown = await admin!.call('PUBSUB', 'NUMSUB', ...names).catch((e: Error) => e.message);
      checker.note(`Redis: PUBSUB SHARDNUMSUB ${JSON.stringify(shard)}, NUMSUB ${JSON.stringify(classic)}`);
    }
    if (checker.last.size < channels.length) checker.problem('after the faults healed, the last events could not be broadcast within 15 s');
  } finally {
    for (const c of clients) c.close();
    for (const node of nodes) {
      await closeRegistry(node.registry);
      await node.server.close();
      await node.httpProxy.close();
      await node.redisProxy?.close();
    }
  }
  const { violations, stats } = checker.check();
  if (process.env.CHECKER_VERBOSE === '2') report(checker.report([]));
  if (process.env.CHECKER_VERBOSE) report(`seed ${seed} ${mode}: ${checker.log.filter((l) => /heal|HARNESS|restart|SIG|lost/.test(l)).join(' | ')} | end ${((Date.now() - began) / 1000).toFixed(3)}`);
  totals.episodes += 1;
  totals[mode] += 1;
  if (checker.losses.length > 0) totals.lossy += 1;
  totals.acked += stats.acked;
  totals.rejected += stats.rejected;
  totals.frames += stats.frames;
  totals.events += stats.events;
  totals.resets += stats.resets;
  totals.unattributed += stats.unattributed;
  if (violations.length === 0) return undefined;
  totals.violations += violations.length;
  totals.failedSeeds.push(seed);
  return `${checker.report(violations)}\nregistry errors: ${[...new Set(errors)].slice(0, 5).join(' | ')}`;
}

beforeAll(async () => {
  if (HAS_REDIS) {
    redis = await startRedis();
    if (redis !== undefined && redis.signal === undefined) redis = undefined; // an external Redis: memory episodes only
    if (redis !== undefined) admin = new Redis(redis.url, { maxRetriesPerRequest: 3 });
  }
});
afterAll(async () => {
  admin?.disconnect();
  if (redis?.ownServer) await redis.stop();
  await cluster?.stop();
});

describe('the delivery guarantee, judged by an independent checker', () => {
  it(`holds in ${EPISODES} seeded episodes with faults (seed ${SEED})`, async () => {
    const started = Date.now();
    const failures: string[] = [];
    for (let i = 0; i < EPISODES; i += 1) {
      const seed = SEED + i;
      const failure = await episode(seed);
      if (failure !== undefined) {
        failures.push(failure);
        report(`delivery checker: VIOLATION at seed ${seed} (replay: CHECKER_SEED=${seed} CHECKER_EPISODES=1)\n${failure}`);
      }
    }
    if (CLUSTER_EPISODES > 0 && (HAS_REDIS_CLUSTER_BINARIES || process.env.CI !== undefined)) {
      cluster = await startRedisCluster({ masters: 3 });
      for (let i = 0; i < CLUSTER_EPISODES && cluster !== undefined; i += 1) {
        const seed = CLUSTER_SEED + i;
        const failure = await episode(seed, true);
        if (failure !== undefined) {
          failures.push(failure);
          report(`delivery checker: VIOLATION at seed ${seed} on the Cluster (replay: CHECKER_EPISODES=0 CHECKER_CLUSTER_SEED=${seed} CHECKER_CLUSTER_EPISODES=1)\n${failure}`);
        }
      }
    }
    const seconds = (Date.now() - started) / 1000;
    report(
      [
        `delivery checker: ${totals.episodes} episodes from seed ${SEED} in ${seconds.toFixed(1)} s (${totals.redis} on Redis, ${totals.cluster} on a Redis Cluster, ${totals.memory} in memory; ${totals.lossy} that may lose data)`,
        `  broadcasts: ${totals.acked} acknowledged, ${totals.rejected} rejected or unsettled; frames ${totals.frames}, events ${totals.events}, resets ${totals.resets}, connections ${totals.connections}, frames with an unattributed position ${totals.unattributed}, messages skipped as not events ${totals.invalid}`,
        `  faults: ${Object.entries(totals.faults)
          .map(([f, n]) => `${f} ${n}`)
          .join(', ')}`,
        `  violations: ${totals.violations} in ${totals.failedSeeds.length} episode(s)${totals.failedSeeds.length === 0 ? '' : `: seeds ${totals.failedSeeds.slice(0, 20).join(', ')}`}`,
      ].join('\n'),
    );
    expect(failures.slice(0, 3)).toEqual([]);
  }, 3_600_000);
});
