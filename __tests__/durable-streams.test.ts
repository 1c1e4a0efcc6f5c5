// express-sse-hub/durable-streams beyond the protocol's suite: our offsets, bad input, bounds,
// runs read through the router, and on a real redis-server: streams shared between two
// routers, live readers woken across them, and an append whose Redis reply was lost.
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import fc from 'fast-check';
import Redis from 'ioredis';
import request from 'supertest';
import { ChannelRegistry, MemoryAdapter } from 'express-sse-hub';
import { durableStreams, type DurableStreamsOptions } from 'express-sse-hub/durable-streams';
import { formatOffset, parseOffset } from '../src/durable-streams/offsets';
import { RedisAdapter } from 'express-sse-hub/redis';
import { parseRequestedOffset } from '../src/durable-streams/offsets';
import { FaultProxy } from './helpers/proxy';
import { describeRedis, useRedis } from './helpers/redis';
import { unhandledDuring } from './helpers/unhandled';

const NEXT = 'stream-next-offset';

function appWith(options: DurableStreamsOptions = {}): { app: express.Express; close: () => Promise<void> } {
  const streams = durableStreams(options);
  const app = express();
  app.use('/v1/stream', streams);
  return { app, close: () => streams.close() };
}

describe('offsets', () => {
  const field = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

  test('sort as text exactly as (generation, position) sort as numbers, and read back', () => {
    fc.assert(
      fc.property(field, field, field, field, (g1, p1, g2, p2) => {
        const a = formatOffset({ generation: g1, position: p1 });
        const b = formatOffset({ generation: g2, position: p2 });
        const numeric = g1 === g2 ? Math.sign(p1 - p2) : Math.sign(g1 - g2);
        expect(Math.sign(a < b ? -1 : a > b ? 1 : 0)).toBe(numeric);
        expect(parseOffset(a)).toEqual({ generation: g1, position: p1 });
        expect(a).not.toMatch(/[,&=?/]/);
      }),
    );
  });

  test('the sentinels and nothing else besides our own form are read', () => {
    expect(parseRequestedOffset(undefined)).toEqual({ kind: 'start' });
    expect(parseRequestedOffset('-1')).toEqual({ kind: 'start' });
    expect(parseRequestedOffset('now')).toEqual({ kind: 'now' });
    for (const bad of ['', '0', '1_2', '-2', 'NOW', '0000000000000001_000000000000001', '0000000000000001_00000000000000012', '9999999999999999_0000000000000000']) {
      expect(parseRequestedOffset(bad)).toBeUndefined();
    }
  });
});

describe('durableStreams() on memory', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });
  const make = (options: DurableStreamsOptions = {}): express.Express => {
    const made = appWith(options);
    close = made.close;
    return made.app;
  };

  test('offsets are never handed out again at a URL: a stream created after a delete sorts after every offset of the old one', async () => {
    const app = make();
    await request(app).put('/v1/stream/again').set('Content-Type', 'text/plain').send('old data').expect(201);
    const old = (await request(app).post('/v1/stream/again').set('Content-Type', 'text/plain').send('more old').expect(204)).headers[NEXT] as string;
    await request(app).delete('/v1/stream/again').expect(204);
    const created = (await request(app).put('/v1/stream/again').set('Content-Type', 'text/plain').expect(201)).headers[NEXT] as string;
    expect(created > old).toBe(true);
    const gone = await request(app).get(`/v1/stream/again?offset=${old}`);
    expect(gone.status).toBe(410);
    expect(gone.text).toMatch(/^express-sse-hub: the offset belongs to a stream that was deleted/);
  });

  test('pages are byte-exact and bounded by maxReadBytes; only the last is up to date', async () => {
    const app = make({ maxReadBytes: 10 });
    const data = Buffer.from(Array.from({ length: 95 }, (_, i) => i));
    await request(app).put('/v1/stream/pages').set('Content-Type', 'application/octet-stream').send(data.subarray(0, 37)).expect(201);
    await request(app).post('/v1/stream/pages').set('Content-Type', 'application/octet-stream').send(data.subarray(37)).expect(204);
    const pages: Buffer[] = [];
    let offset = '-1';
    for (;;) {
      const page = await request(app).get(`/v1/stream/pages?offset=${offset}`).buffer(true).parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });
      expect(page.status).toBe(200);
      pages.push(page.body as Buffer);
      offset = page.headers[NEXT] as string;
      if (page.headers['stream-up-to-date'] === 'true') break;
      expect((page.body as Buffer).length).toBe(10);
    }
    expect(pages).toHaveLength(10);
    expect(Buffer.concat(pages)).toEqual(data);
  });

  test('bad offsets, live modes and paths get 400 naming what is wrong; unknown streams 404', async () => {
    const app = make();
    await request(app).put('/v1/stream/s').set('Content-Type', 'text/plain').send('x').expect(201);
    const bad = await request(app).get('/v1/stream/s?offset=12_34');
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/^express-sse-hub: offset must be -1, now or an offset this server sent, got "12_34"/);
    expect((await request(app).get('/v1/stream/s?offset=-1&live=websocket')).text).toMatch(/live must be long-poll or sse, got "websocket"/);
    expect((await request(app).get('/v1/stream/s?live=sse')).status).toBe(400);
    expect((await request(app).get('/v1/stream/a/%2e%2e/s')).status).toBe(400);
    expect((await request(app).get('/v1/stream/')).status).toBe(400);
    const future = formatOffset({ generation: 1, position: 0 }).replace(/^0/, '9');
    expect((await request(app).get(`/v1/stream/s?offset=${future}`)).status).toBe(400);
    for (const method of ['get', 'head', 'delete'] as const) expect((await request(app)[method]('/v1/stream/missing')).status).toBe(404);
    expect((await request(app).post('/v1/stream/missing').set('Content-Type', 'text/plain').send('x')).status).toBe(404);
    const producer = await request(app).post('/v1/stream/s').set('Content-Type', 'text/plain').set('Producer-Id', 'p').set('Producer-Epoch', '1e3').set('Producer-Seq', '0').send('y');
    expect(producer.status).toBe(400);
    expect(producer.text).toMatch(/Producer-Epoch must be a non-negative decimal integer, got "1e3"/);
    expect((await request(app).get('/v1/stream/s')).text).toBe('x');
  });

  test('bodies over maxBodyBytes get 413, streams stop at maxStreamBytes, and nothing is lost', async () => {
    const app = make({ maxBodyBytes: 64, maxStreamBytes: 100 });
    await request(app).put('/v1/stream/b').set('Content-Type', 'text/plain').send('a'.repeat(60)).expect(201);
    const tooBig = await request(app).post('/v1/stream/b').set('Content-Type', 'text/plain').send('b'.repeat(65));
    expect(tooBig.status).toBe(413);
    expect(tooBig.text).toMatch(/the body must be at most 64 bytes/);
    const full = await request(app).post('/v1/stream/b').set('Content-Type', 'text/plain').send('c'.repeat(41));
    expect(full.status).toBe(413);
    expect(full.text).toMatch(/exceed its limit of 100 bytes/);
    await request(app).post('/v1/stream/b').set('Content-Type', 'text/plain').send('d'.repeat(40)).expect(204);
    expect((await request(app).get('/v1/stream/b')).text).toBe('a'.repeat(60) + 'd'.repeat(40));
  });

  test('maxStreams bounds how many streams memory holds (507), and a delete frees a place', async () => {
    const app = make({ maxStreams: 2 });
    await request(app).put('/v1/stream/one').expect(201);
    await request(app).put('/v1/stream/two').expect(201);
    expect((await request(app).put('/v1/stream/three')).status).toBe(507);
    await request(app).delete('/v1/stream/one').expect(204);
    await request(app).put('/v1/stream/three').expect(201);
  });

  test('maxTotalBytes bounds the bytes of every stream together (507); a delete gives them back', async () => {
    const app = make({ maxTotalBytes: 100 });
    await request(app).put('/v1/stream/one').set('Content-Type', 'text/plain').send('a'.repeat(60)).expect(201);
    await request(app).put('/v1/stream/two').set('Content-Type', 'text/plain').send('b'.repeat(30)).expect(201);
    const full = await request(app).post('/v1/stream/two').set('Content-Type', 'text/plain').send('c'.repeat(11));
    expect(full.status).toBe(507);
    expect(full.text).toMatch(/maxTotalBytes/);
    await request(app).delete('/v1/stream/one').expect(204);
    await request(app).post('/v1/stream/two').set('Content-Type', 'text/plain').send('c'.repeat(11)).expect(204);
    expect((await request(app).get('/v1/stream/two')).text).toBe('b'.repeat(30) + 'c'.repeat(11));
  });

  test('a body parser mounted before the router is named, not silently stored as nothing', async () => {
    const streams = durableStreams();
    close = () => streams.close();
    const app = express();
    app.use(express.json());
    app.use('/v1/stream', streams);
    await request(app).put('/v1/stream/j').set('Content-Type', 'application/json').send('[1]').then((res) => {
      expect(res.status).toBe(500);
      expect(res.text).toMatch(/mount the router before body parsers/);
    });
  });

  test('every wait is bounded: a long-poll answers 204 after longPollTimeout, an SSE response ends after sseMaxDuration', async () => {
    const app = make({ longPollTimeout: 50, sseMaxDuration: 200, sseKeepAlive: 50 });
    const created = await request(app).put('/v1/stream/w').set('Content-Type', 'text/plain').expect(201);
    const tail = created.headers[NEXT] as string;
    const poll = await request(app).get(`/v1/stream/w?offset=${tail}&live=long-poll`);
    expect(poll.status).toBe(204);
    expect(poll.headers['stream-up-to-date']).toBe('true');
    expect(poll.headers[NEXT]).toBe(tail);
    const sse = await request(app).get(`/v1/stream/w?offset=${tail}&live=sse`);
    expect(sse.status).toBe(200);
    const controls = sse.text.split('\n\n').filter((event) => event.startsWith('event: control'));
    // The first control event, then keep-alives while it was quiet.
    expect(controls.length).toBeGreaterThanOrEqual(2);
  });

  test('options are checked: a wrong one throws a TypeError naming it', () => {
    expect(() => durableStreams({ maxBodyBytes: 0 })).toThrow(/durableStreams maxBodyBytes must be an integer from 1/);
    expect(() => durableStreams({ runsPath: 'runs' })).toThrow(/durableStreams runsPath must be false or a path of one segment/);
    expect(() => durableStreams({ prefix: 'a{b}' })).toThrow(/durableStreams prefix must be 1 to 64 of/);
    expect(() => durableStreams({ longPolTimeout: 5 } as DurableStreamsOptions)).toThrow(/longPolTimeout/);
  });

  test('a run is read through the router as a closed JSON stream, live readers included', async () => {
    const adapter = new MemoryAdapter();
    const registry = new ChannelRegistry({ adapter });
    const app = make({ adapter, runPollInterval: 10 });
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const run = await registry.run('answer-1', async function* () {
      yield { type: 'text-delta', delta: 'Hel' };
      await gate;
      yield { type: 'text-delta', delta: 'lo' };
    });
    let first = await request(app).get('/v1/stream/_runs/answer-1?offset=-1');
    for (let i = 0; i < 200 && (JSON.parse(first.text) as unknown[]).length === 0; i += 1) {
      await sleep(5);
      first = await request(app).get('/v1/stream/_runs/answer-1?offset=-1');
    }
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('application/json');
    expect(JSON.parse(first.text)).toEqual([{ type: 'text-delta', delta: 'Hel' }]);
    expect(first.headers['stream-closed']).toBeUndefined();
    const live = request(app).get(`/v1/stream/_runs/answer-1?offset=${first.headers[NEXT] as string}&live=long-poll`).then((res) => res);
    release!();
    await run.done;
    const rest = await live;
    expect(rest.status).toBe(200);
    expect(JSON.parse(rest.text)).toEqual([{ type: 'text-delta', delta: 'lo' }]);
    const end = await request(app).get(`/v1/stream/_runs/answer-1?offset=${rest.headers[NEXT] as string}`);
    expect(end.headers['stream-closed']).toBe('true');
    expect(JSON.parse(end.text)).toEqual([]);
    expect((await request(app).post('/v1/stream/_runs/answer-1').set('Content-Type', 'application/json').send('[1]')).status).toBe(405);
    expect((await request(app).get('/v1/stream/_runs/no-such-run')).status).toBe(404);
    await registry.close();
  });
});

describeRedis('durableStreams() on Redis', () => {
  const redis = useRedis();
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function serve(url: string, prefix: string, more: Partial<DurableStreamsOptions> = {}, commandTimeout?: number): Promise<string> {
    const adapter = await RedisAdapter.connect({ url, prefix: `sse-${prefix}`, ...(commandTimeout === undefined ? {} : { commandTimeout }) });
    // Only a wake-up through Pub/Sub can end a long-poll here before the test's own timeout.
    const streams = durableStreams({ adapter, prefix, recheckInterval: 600_000, longPollTimeout: 600_000, ...more });
    const app = express();
    app.use('/v1/stream', streams);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    cleanup.push(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await streams.close();
      await adapter.close();
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/stream`;
  }

  test('answers 503 when Redis does not answer, and an onError that throws becomes a warning, not a crash', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const { port } = new URL(redis().url);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number(port) });
    cleanup.push(() => proxy.close());
    const reported: string[] = [];
    const onError = (error: Error): void => {
      reported.push(error.message);
      throw new Error('a bug in onError');
    };
    const base = await serve(proxy.url, prefix, { onError }, 200);
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      proxy.pause();
      const unhandled = await unhandledDuring(async () => {
        const answer = await fetch(`${base}/frozen`, { method: 'PUT', headers: { 'Content-Type': 'text/plain' }, body: 'a' });
        expect(answer.status).toBe(503);
      });
      expect(unhandled).toEqual([]);
      expect(reported).toHaveLength(1);
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([expect.stringMatching(/^durableStreams onError threw \(a bug in onError\) on: /)]);
    } finally {
      warn.mockRestore();
      proxy.resume();
    }
  });

  test('two routers on one Redis serve the same streams, and a long-poll on one wakes for an append on the other', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const [a, b] = [await serve(redis().url, prefix), await serve(redis().url, prefix)];
    const created = await fetch(`${a}/shared`, { method: 'PUT', headers: { 'Content-Type': 'text/plain' }, body: 'one ' });
    expect(created.status).toBe(201);
    const tail = created.headers.get(NEXT)!;
    const polled = fetch(`${b}/shared?offset=${tail}&live=long-poll`);
    await sleep(100);
    expect((await fetch(`${a}/shared`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'two' })).status).toBe(204);
    const answer = await polled;
    expect(answer.status).toBe(200);
    expect(await answer.text()).toBe('two');
    expect(await (await fetch(`${b}/shared`)).text()).toBe('one two');
  });

  test('an append whose Redis reply was lost, resent by ioredis after the reconnect, is stored once', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const { port } = new URL(redis().url);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number(port) });
    cleanup.push(() => proxy.close());
    const base = await serve(proxy.url, prefix);
    const direct = new Redis(redis().url);
    cleanup.push(async () => {
      await direct.quit();
    });
    expect((await fetch(`${base}/lost`, { method: 'PUT', headers: { 'Content-Type': 'text/plain' }, body: 'a' })).status).toBe(201);
    proxy.holdReplies = true;
    const appended = fetch(`${base}/lost`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'b' });
    // The append reached Redis; its reply is held, then lost with the connection.
    for (let i = 0; i < 500 && (await direct.hget(`{${prefix}:/lost}:m`, 'tail')) !== '2'; i += 1) await sleep(10);
    expect(await direct.hget(`{${prefix}:/lost}:m`, 'tail')).toBe('2');
    proxy.holdReplies = false;
    proxy.dropAll();
    const answer = await appended;
    expect(answer.status).toBe(204);
    expect(await (await fetch(`${base}/lost`)).text()).toBe('ab');
  });
});
