// The demo's resumable runs: POST /ai/runs, GET /ai/runs/:id, POST /ai/runs/:id/stop, on one
// process and across two processes sharing Redis, through the HTTP surface only.
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { ChannelRegistry } from 'express-sse-hub';
import { RedisAdapter } from 'express-sse-hub/redis';
import { createDemoApp, type Demo } from '../demo/app';
import { CANNED_ANSWER } from '../demo/feeds';
import { describeRedis, useRedis } from './helpers/redis';
import { openStream, startServer, type TestServer, type TestStream } from './helpers/server';

const tokensOf = (stream: TestStream): string[] => stream.events.filter((e) => e.event === 'token').map((e) => (JSON.parse(e.data) as { token: string }).token);

async function startRun(server: TestServer, pace = 5): Promise<{ id: string; url: string }> {
  const response = await request(server.url).post(`/ai/runs?pace=${pace}`).send({ prompt: 'Explain SSE' });
  expect(response.status).toBe(201);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const body = response.body as { id: string; url: string };
  expect(Object.keys(body).sort()).toEqual(['id', 'url']);
  expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
  expect(body.url).toBe(`/ai/runs/${body.id}`);
  return body;
}

describe('the demo: resumable runs', () => {
  let demo: Demo;
  let server: TestServer;
  beforeEach(async () => {
    demo = createDemoApp({ clockIntervalMs: 1000, tokenPaceMs: 5, runLimit: { windowMs: 60_000, limit: 5 } });
    server = await startServer(demo.app);
  });
  afterEach(async () => {
    await demo.close();
    await server.close();
  });

  it('POST /ai/runs → 201 { id, url }; GET url streams token events with ids, then [DONE]; past its end → 204', async () => {
    const { url } = await startRun(server);
    const stream = await openStream(`${server.url}${url}`);
    await stream.ended;
    expect(tokensOf(stream).join('')).toBe(CANNED_ANSWER);
    expect(stream.events.filter((e) => e.event === 'token').every((e) => e.id !== undefined)).toBe(true);
    expect(stream.events.at(-1)).toMatchObject({ event: undefined, data: '[DONE]' });
    const past = await openStream(`${server.url}${url}`, { headers: { 'last-event-id': stream.lastEventId()! } });
    await past.ended;
    expect(past.response.statusCode).toBe(204);
  });

  it('with Last-Event-ID (or ?lastEventId=) sends only what follows', async () => {
    const { url } = await startRun(server, 10);
    const first = await openStream(`${server.url}${url}`);
    await first.waitForEvents(5);
    first.destroy();
    const seen = tokensOf(first);
    const rest = await openStream(`${server.url}${url}?lastEventId=${encodeURIComponent(first.lastEventId()!)}`);
    await rest.ended;
    expect([...seen, ...tokensOf(rest)].join('')).toBe(CANNED_ANSWER);
  });

  it('POST /ai/runs/:id/stop → 200; followers get the end and the stream closes; later GETs see it finished', async () => {
    const { id, url } = await startRun(server, 20);
    const a = await openStream(`${server.url}${url}`);
    await a.waitForEvents(2);
    const stop = await request(server.url).post(`/ai/runs/${id}/stop`);
    expect(stop.status).toBe(200);
    expect(stop.body).toEqual({ stopped: true });
    await a.ended;
    expect(a.events.at(-1)).toMatchObject({ event: 'end', data: '{"reason":"stopped"}' });
    const later = await openStream(`${server.url}${url}`);
    await later.ended;
    expect(later.events.at(-1)).toMatchObject({ event: 'end' });
    expect(tokensOf(later)).toEqual(tokensOf(a));
    expect((await request(server.url).post(`/ai/runs/${id}/stop`)).body).toEqual({ stopped: false });
  });

  it('answers 404 JSON for an unknown run, 400 for a bad prompt, 429 past the rate limit', async () => {
    const unknown = await request(server.url).get(`/ai/runs/${randomUUID()}`).set('Accept', 'text/event-stream');
    expect(unknown.status).toBe(404);
    expect((unknown.body as { error: string }).error).toMatch(/no such run/);
    const bad = await request(server.url).post('/ai/runs').send({ prompt: 'x'.repeat(501) });
    expect(bad.status).toBe(400);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await request(server.url).post('/ai/runs').send({ prompt: 'hi' })).status);
    expect(statuses).toEqual([201, 201, 201, 201, 429, 429]); // the bad prompt counted too
  });

  it('serves the AI SDK view at /ai/chat/:id/stream', async () => {
    const { id } = await startRun(server);
    const stream = await openStream(`${server.url}/ai/chat/${id}/stream`);
    await stream.ended;
    expect(stream.response.headers['x-vercel-ai-ui-message-stream']).toBe('v1');
    const deltas = stream.events.filter((e) => e.data.includes('"text-delta"')).map((e) => (JSON.parse(e.data) as { delta: string }).delta);
    expect(deltas.join('')).toBe(CANNED_ANSWER);
    expect(stream.events.at(-1)!.data).toBe('[DONE]');
  });
});

describeRedis('the demo with REDIS_URL: a run started on one instance', () => {
  const redis = useRedis();
  const demos: Demo[] = [];
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(demos.splice(0).map((d) => d.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function instance(prefix: string): Promise<TestServer> {
    const adapter = await RedisAdapter.connect({ url: redis().url, prefix });
    const demo = createDemoApp({ registry: new ChannelRegistry({ adapter, history: 200 }), clockIntervalMs: 1000, tokenPaceMs: 5 });
    demos.push(demo);
    const server = await startServer(demo.app);
    servers.push(server);
    return server;
  }

  it('is followed and stopped from another', async () => {
    const prefix = `demo-runs-${randomUUID()}`;
    const [a, b] = [await instance(prefix), await instance(prefix)];
    const { id, url } = await startRun(a, 15);
    const onB = await openStream(`${b.url}${url}`);
    const onA = await openStream(`${a.url}${url}`);
    await Promise.all([onA.waitForEvents(3), onB.waitForEvents(3)]);
    expect((await request(b.url).post(`/ai/runs/${id}/stop`)).body).toEqual({ stopped: true });
    await Promise.all([onA.ended, onB.ended]);
    expect(onB.events.at(-1)).toMatchObject({ event: 'end', data: '{"reason":"stopped"}' });
    expect(tokensOf(onB)).toEqual(tokensOf(onA));
    expect(CANNED_ANSWER.startsWith(tokensOf(onB).join(''))).toBe(true);
  });
});
