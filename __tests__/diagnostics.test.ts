// The tracing hooks on node:diagnostics_channel, turned into OpenTelemetry spans as the README
// shows, with the SDK's in-memory exporter: a span per broadcast (with its channel and how many
// it reached, or its error), and the point events of a stream's life.
import diagnostics from 'node:diagnostics_channel';
import express from 'express';
import { SpanStatusCode, type Span } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ChannelRegistry, DIAGNOSTICS, sse, type BroadcastContext } from 'express-sse-hub';
import { openStream, startServer, waitUntil, type TestServer } from './helpers/server';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('express-sse-hub');
const spans = new WeakMap<BroadcastContext, Span>();
const broadcasts = diagnostics.tracingChannel<unknown, BroadcastContext>(DIAGNOSTICS.broadcast);
const subscribers = {
  start(context: BroadcastContext) {
    spans.set(context, tracer.startSpan('sse broadcast', { attributes: { 'sse.channel': context.channel } }));
  },
  asyncEnd(context: BroadcastContext) {
    spans.get(context)?.setAttribute('sse.delivered', context.result?.delivered ?? 0);
    spans.get(context)?.end();
  },
  error(context: BroadcastContext) {
    spans.get(context)?.setStatus({ code: SpanStatusCode.ERROR, message: String(context.error) });
    spans.get(context)?.end();
  },
  end() {},
  asyncStart() {},
};

let server: TestServer | undefined;
const seen: [string, unknown][] = [];
const names = [DIAGNOSTICS.streamOpen, DIAGNOSTICS.streamClose, DIAGNOSTICS.refusal, DIAGNOSTICS.reset, DIAGNOSTICS.flush, DIAGNOSTICS.runStart, DIAGNOSTICS.runEnd];
const listeners = names.map((name) => [name, (message: unknown) => seen.push([name, message])] as const);

beforeAll(() => {
  broadcasts.subscribe(subscribers);
  for (const [name, listener] of listeners) diagnostics.subscribe(name, listener);
});
afterAll(async () => {
  broadcasts.unsubscribe(subscribers);
  for (const [name, listener] of listeners) diagnostics.unsubscribe(name, listener);
  await provider.shutdown();
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  exporter.reset();
  seen.length = 0;
});

describe('the diagnostics_channel hooks', () => {
  it('make a span per broadcast with its channel and deliveries, and one with an error for a bad one', async () => {
    const registry = new ChannelRegistry({ history: 10 });
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => registry.subscribe(res, ['news']));
    server = await startServer(app);
    const client = await openStream(`${server.url}/subscribe`);
    await waitUntil(() => registry.channel('news').size === 1, 'the client subscribed');
    await registry.channel('news').broadcast({ title: 'hello' });
    await expect(registry.channel('news').broadcast('x', { event: 'two\nlines' })).rejects.toThrow(TypeError);
    await client.waitForEvents(1);
    const finished = exporter.getFinishedSpans();
    expect(finished.map((s) => [s.name, s.attributes['sse.channel'], s.attributes['sse.delivered'], s.status.code])).toEqual([
      ['sse broadcast', 'news', 1, SpanStatusCode.UNSET],
      ['sse broadcast', 'news', undefined, SpanStatusCode.ERROR],
    ]);
    client.destroy();
    await waitUntil(() => seen.some(([name]) => name === DIAGNOSTICS.streamClose), 'the close was published');
    const kinds = seen.map(([name]) => name);
    expect(kinds).toContain(DIAGNOSTICS.streamOpen);
    expect(kinds).toContain(DIAGNOSTICS.flush);
    await registry.close();
  });

  it('publish refusals, resets and the life of a run', async () => {
    const registry = new ChannelRegistry({ history: 10 });
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false, maxConnections: 1 }), (_req, res) => registry.subscribe(res, ['news']));
    server = await startServer(app);
    const first = await openStream(`${server.url}/subscribe`, { headers: { 'last-event-id': '5.gonegone' } });
    await waitUntil(() => seen.some(([name]) => name === DIAGNOSTICS.reset), 'the reset was published');
    const second = await openStream(`${server.url}/subscribe`);
    await second.ended;
    expect(seen.find(([name]) => name === DIAGNOSTICS.refusal)?.[1]).toMatchObject({ status: 503 });
    expect(seen.find(([name]) => name === DIAGNOSTICS.reset)?.[1]).toMatchObject({ channel: 'news', reason: 'unknown-id' });
    const run = await registry.run('r', async function* () {
      yield 'a';
      await Promise.resolve();
      yield 'b';
    });
    await run.done;
    await waitUntil(() => seen.some(([name]) => name === DIAGNOSTICS.runEnd), 'the run end was published');
    expect(seen.filter(([name]) => name === DIAGNOSTICS.runStart || name === DIAGNOSTICS.runEnd).map(([, m]) => m)).toEqual([
      { id: 'r' },
      { id: 'r', reason: 'done', chunks: 2 },
    ]);
    first.destroy();
    await registry.close();
  });
});
