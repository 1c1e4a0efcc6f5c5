import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import Redis from 'ioredis';
import { ChannelRegistry, sse } from 'express-sse-hub';
import { RedisAdapter } from 'express-sse-hub/redis';
import { FaultProxy } from './helpers/proxy';
import { describeRedis, useRedis } from './helpers/redis';
import { openStream, startServer, type TestServer, type TestStream } from './helpers/server';

interface Instance {
  readonly registry: ChannelRegistry;
  readonly adapter: RedisAdapter;
  readonly server: TestServer;
  close(): Promise<void>;
}

function tokens(count: number, paceMs: number) {
  return async function* (signal: AbortSignal): AsyncGenerator<{ token: string }> {
    for (let i = 0; i < count; i += 1) {
      await sleep(paceMs, undefined, { signal });
      yield { token: `w${i} ` };
    }
  };
}

const expectedTokens = (count: number): string[] => Array.from({ length: count }, (_, i) => `w${i} `);
const tokenTexts = (stream: TestStream): string[] => stream.events.filter((e) => e.event === 'token').map((e) => (JSON.parse(e.data) as { token: string }).token);

describeRedis('runs on Redis: started on one instance, followed and stopped from another', () => {
  const redis = useRedis();
  let prefix: string;
  let instances: Instance[] = [];

  async function instance(ttl = 60_000, options: { maxDuration?: number; sharded?: boolean | 'auto'; verifyInterval?: number; url?: string } = {}): Promise<Instance> {
    const { maxDuration = 600_000, sharded = 'auto', verifyInterval = 10_000, url = redis().url } = options;
    const adapter = await RedisAdapter.connect({ url, prefix, sharded, verifyInterval });
    const registry = new ChannelRegistry({ adapter, runs: { ttl, maxDuration } });
    registry.on('error', () => undefined);
    const app = express();
    app.get('/runs/:id', sse({ heartbeat: false }), (req, res) => void registry.followRun(res, String(req.params.id)));
    const server = await startServer(app);
    const started: Instance = {
      registry,
      adapter,
      server,
      close: async () => {
        await registry.close({ timeout: 500 });
        await server.close();
      },
    };
    instances.push(started);
    return started;
  }

  beforeEach(() => {
    prefix = `runs-${randomUUID()}`;
  });
  afterEach(async () => {
    await Promise.all(instances.map((i) => i.close()));
    instances = [];
  });

  it('a follower on another instance gets the whole run; a resume there gets exactly the rest, then 204', async () => {
    const [a, b] = [await instance(), await instance()];
    const run = await a.registry.run('r1', tokens(50, 3));
    // Followed on B before the first token exists: the log is there from the start.
    const early = await openStream(`${b.server.url}/runs/r1`);
    const partial = await openStream(`${b.server.url}/runs/r1`);
    await partial.waitForEvents(10);
    partial.destroy();
    const rest = await openStream(`${a.server.url}/runs/r1`, { headers: { 'last-event-id': partial.lastEventId()! } });
    await Promise.all([early.ended, rest.ended]);
    expect(tokenTexts(early)).toEqual(expectedTokens(50));
    expect(early.events.at(-1)!.data).toBe('[DONE]');
    expect([...tokenTexts(partial), ...tokenTexts(rest)]).toEqual(expectedTokens(50));
    expect((await run.done).reason).toBe('done');
    const after = await openStream(`${b.server.url}/runs/r1`, { headers: { 'last-event-id': early.lastEventId()! } });
    await after.ended;
    expect(after.response.statusCode).toBe(204);
  });

  it('stopRun() on another instance aborts the producer there and ends every follower', async () => {
    const [a, b] = [await instance(), await instance()];
    const run = await a.registry.run('r2', tokens(10_000, 5));
    const onA = await openStream(`${a.server.url}/runs/r2`);
    const onB = await openStream(`${b.server.url}/runs/r2`);
    await Promise.all([onA.waitForEvents(3), onB.waitForEvents(3)]);
    expect(await b.registry.stopRun('r2')).toBe(true);
    expect(run.signal.aborted).toBe(true);
    await Promise.all([onA.ended, onB.ended]);
    for (const stream of [onA, onB]) {
      expect(stream.events.at(-1)).toMatchObject({ event: 'end', data: '{"reason":"stopped"}' });
      expect(tokenTexts(stream)).toEqual(expectedTokens(tokenTexts(stream).length));
    }
    expect(tokenTexts(onA)).toEqual(tokenTexts(onB));
    expect(await b.registry.stopRun('r2')).toBe(false);
  });

  it('a run whose process died is ended by stopRun() elsewhere after a bounded wait', async () => {
    const [a, b] = [await instance(), await instance()];
    await a.registry.run('orphan', tokens(10_000, 5));
    const onB = await openStream(`${b.server.url}/runs/orphan`);
    await onB.waitForEvents(3);
    // A dies: its Redis connections go, its run is never ended by it.
    await a.adapter.close();
    const started = performance.now();
    expect(await b.registry.stopRun('orphan')).toBe(true);
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThan(1500);
    await onB.ended;
    expect(onB.events.at(-1)).toMatchObject({ event: 'end', data: '{"reason":"stopped"}' });
  });

  it('two processes starting one id at once: exactly one run, one end', async () => {
    const [a, b] = [await instance(), await instance()];
    const results = await Promise.allSettled([a.registry.run('dup', tokens(5, 1)), b.registry.run('dup', tokens(5, 1))]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = results.find((r) => r.status === 'rejected')!;
    expect(rejected.reason).toMatchObject({ code: 'ERR_SSE_RUN_EXISTS' });
    const stream = await openStream(`${a.server.url}/runs/dup`);
    await stream.ended;
    expect(tokenTexts(stream)).toEqual(expectedTokens(5));
  });

  it('a stop request the producer never gets still stops it: the end seals the log, its next chunk is refused', async () => {
    // A listens on classic Pub/Sub, B publishes sharded: B's stop request cannot reach A (nor does
    // the end B writes: A's follower finds it when A checks its logs, every 300 ms here).
    const a = await instance(60_000, { sharded: false, verifyInterval: 300 });
    const b = await instance(60_000, { sharded: true });
    const run = await a.registry.run('deaf', tokens(10_000, 5));
    const onA = await openStream(`${a.server.url}/runs/deaf`);
    await onA.waitForEvents(3);
    expect(await b.registry.stopRun('deaf')).toBe(true);
    expect(await run.done).toMatchObject({ reason: 'stopped' });
    expect(run.signal.aborted).toBe(true);
    await onA.ended;
    expect(onA.events.at(-1)).toMatchObject({ event: 'end', data: '{"reason":"stopped"}' });
    // Nothing after the end: a client holding it gets 204.
    const after = await openStream(`${a.server.url}/runs/deaf`, { headers: { 'last-event-id': onA.lastEventId()! } });
    await after.ended;
    expect(after.response.statusCode).toBe(204);
  });

  it('a run whose process died with nobody stopping it is ended by its followers\' watchdog after runs.maxDuration', async () => {
    const [a, b] = [await instance(60_000, { maxDuration: 1500 }), await instance(60_000, { maxDuration: 1500 })];
    await a.registry.run('abandoned', tokens(10_000, 20));
    const onB = await openStream(`${b.server.url}/runs/abandoned`);
    await onB.waitForEvents(3);
    // A dies: its Redis connections go; its run can store neither chunks nor an end.
    await a.adapter.close();
    const died = performance.now();
    await onB.ended;
    const waited = performance.now() - died;
    expect(onB.events.at(-1)).toMatchObject({ event: 'end', data: '{"reason":"timeout"}' });
    expect(waited).toBeGreaterThan(1500);
  });

  it('reads do not keep an ended run longer than runs.ttl', async () => {
    const [a] = [await instance(5000)];
    await (await a.registry.run('kept', tokens(3, 1))).done;
    const client = new Redis(redis().url);
    try {
      const key = `${prefix}:{\u0000run:kept}:meta`;
      for (let i = 0; i < 3; i += 1) {
        const stream = await openStream(`${a.server.url}/runs/kept`);
        await stream.ended;
      }
      expect(await a.registry.stopRun('kept')).toBe(false);
      const left = await client.pttl(key);
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThanOrEqual(5000);
    } finally {
      client.disconnect();
    }
  });

  it('an expired run frees its Redis keys and answers 404', async () => {
    const [a] = [await instance(300)];
    await (await a.registry.run('brief', tokens(5, 1))).done;
    const client = new Redis(redis().url);
    try {
      const keys = await client.keys(`${prefix}:*`);
      expect(keys.sort()).toEqual([`${prefix}:{\u0000run:brief}:ids`, `${prefix}:{\u0000run:brief}:log`, `${prefix}:{\u0000run:brief}:meta`]);
      const deadline = Date.now() + 3000;
      while ((await client.keys(`${prefix}:*`)).length > 0 && Date.now() < deadline) await sleep(50);
      expect(await client.keys(`${prefix}:*`)).toEqual([]);
      // Made-up ids create nothing.
      const stream = await openStream(`${a.server.url}/runs/brief`);
      await stream.ended;
      expect(stream.response.statusCode).toBe(404);
      expect(await client.keys(`${prefix}:*`)).toEqual([]);
    } finally {
      client.disconnect();
    }
  });

  describe('when the producing process loses its Redis connection mid-run', () => {
    it('goes on: every chunk is stored once, in order, and followers get the whole answer', async () => {
      const { port } = new URL(redis().url);
      const link = await FaultProxy.start({ host: '127.0.0.1', port: Number(port) });
      try {
        const a = await instance(60_000, { url: link.url });
        const b = await instance();
        const run = await a.registry.run('blip', tokens(40, 10));
        const follower = await openStream(`${b.server.url}/runs/blip`);
        for (const after of [8, 20, 30]) {
          await follower.waitForEvents(after);
          link.dropAll(); // every connection of the producer, as a network failure or CLIENT KILL would
        }
        await follower.ended;
        expect(await run.done).toEqual({ reason: 'done', chunks: 40 });
        expect(tokenTexts(follower)).toEqual(expectedTokens(40));
        expect(follower.events.at(-1)!.data).toBe('[DONE]');
        const admin = new Redis(redis().url);
        expect(await admin.xlen(`${prefix}:{\u0000run:blip}:log`)).toBe(41);
        admin.disconnect();
      } finally {
        await link.close();
      }
    });
  });

  describe('when Redis loses the run\'s log mid-answer (FLUSHALL, a restart without data)', () => {
    it('ends the run with "error", and a later follower never gets the rest of the answer as if it were whole', async () => {
      const a = await instance();
      const admin = new Redis(redis().url);
      try {
        const run = await a.registry.run('flushed', tokens(200, 5));
        const early = await openStream(`${a.server.url}/runs/flushed`);
        await early.waitForEvents(5);
        await admin.flushall();
        expect((await run.done).reason).toBe('error');
        const late = await openStream(`${a.server.url}/runs/flushed`);
        await late.ended;
        expect(late.events.map((e) => e.data)).not.toContain('[DONE]');
        expect(late.events.at(-1)).toMatchObject({ event: 'end', data: '{"reason":"error"}' });
        expect(tokenTexts(late)).toEqual([]);
      } finally {
        admin.disconnect();
      }
    });
  });
});
