import express from 'express';
import { Gauge, Registry } from 'prom-client';
import { ChannelRegistry, sse } from 'express-sse-hub';
import { collectMetrics, type SseMetrics } from 'express-sse-hub/metrics';
import { parsePrometheus, valueOf, type Family } from './helpers/prometheus';
import { openStream, startServer, waitUntil, type TestServer } from './helpers/server';

/** An app with /subscribe (channel "main", 2 streams per IP) and /metrics, as a user would wire them. */
async function metricsServer(options: { maxBufferedBytes?: number; perChannel?: boolean } = {}) {
  const registry = new ChannelRegistry({ history: 100, maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024 });
  const streams = sse({ heartbeat: false, maxConnectionsPerKey: 2 });
  const prom = new Registry();
  const metrics = collectMetrics({ registry: prom, channels: registry, handlers: [streams], perChannel: options.perChannel });
  const app = express();
  app.get('/subscribe', streams, (_req, res) => {
    registry.subscribe(res, 'main');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(prom.contentType).send(await prom.metrics());
  });
  const server = await startServer(app);
  const scrape = async (): Promise<Map<string, Family>> => {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheus(await response.text());
  };
  return { registry, streams, metrics, server, scrape };
}

describe('collectMetrics()', () => {
  let server: TestServer | undefined;
  let metrics: SseMetrics | undefined;
  afterEach(async () => {
    metrics?.close();
    await server?.close();
    server = metrics = undefined;
  });

  describe('when clients connect, events are broadcast and a slow client is dropped', () => {
    it('moves the gauges and counters of /metrics in Prometheus text format', async () => {
      const setup = await metricsServer({ maxBufferedBytes: 64 * 1024 });
      ({ server, metrics } = setup);
      const before = await setup.scrape();
      expect(before.get('sse_connections')?.type).toBe('gauge');
      expect(before.get('sse_flush_duration_seconds')?.type).toBe('histogram');
      expect(valueOf(before, 'sse_connections')).toBe(0);
      expect(valueOf(before, 'sse_events_total')).toBe(0);
      expect(valueOf(before, 'sse_clients_dropped_total', { reason: 'slow-client' })).toBe(0);

      const stalled = await openStream(`${server.url}/subscribe`);
      stalled.response.pause();
      const reader = await openStream(`${server.url}/subscribe`, { retain: false });
      await waitUntil(() => setup.registry.channel('main').size === 2, 'both subscribed');
      // A third stream from the same IP is over maxConnectionsPerKey.
      expect((await fetch(`${server.url}/subscribe`)).status).toBe(429);
      const open = await setup.scrape();
      expect(valueOf(open, 'sse_connections')).toBe(2);
      expect(valueOf(open, 'sse_subscriptions')).toBe(2);
      expect(valueOf(open, 'sse_connections_refused_total', { reason: 'max_connections_per_key' })).toBe(1);

      const payload = 'x'.repeat(4096);
      const channel = setup.registry.channel('main');
      let sent = 0;
      while (channel.size === 2 && sent < 20_000) {
        await channel.broadcast(payload);
        sent += 1;
        if (sent % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      expect(channel.size).toBe(1);
      await reader.waitForEvents(sent, 20_000);
      const after = await setup.scrape();
      expect(valueOf(after, 'sse_events_total')).toBe(sent);
      expect(valueOf(after, 'sse_clients_dropped_total', { reason: 'slow-client' })).toBe(1);
      expect(valueOf(after, 'sse_connections')).toBe(1);
      // Queued for the reader every time, for the stalled one until the flush that dropped it.
      const deliveries = valueOf(after, 'sse_deliveries_total');
      expect(deliveries).toBeGreaterThan(sent);
      expect(deliveries).toBeLessThanOrEqual(2 * sent);
      expect(valueOf(after, 'sse_bytes_total')).toBeGreaterThan(deliveries * 4096);
      expect(valueOf(after, 'sse_flush_duration_seconds_count')).toBeGreaterThan(0);
      stalled.destroy();
      reader.destroy();
    });
  });

  describe('when a client comes back with an old or unknown Last-Event-ID', () => {
    it('counts the replay and the reset by reason', async () => {
      const setup = await metricsServer();
      ({ server, metrics } = setup);
      const first = await openStream(`${server.url}/subscribe`);
      await waitUntil(() => first.lastEventId() !== undefined, 'a position');
      const position = first.lastEventId()!;
      first.destroy();
      await setup.registry.channel('main').broadcast('missed');
      const again = await openStream(`${server.url}/subscribe`, { headers: { 'last-event-id': position } });
      await waitUntil(() => again.events.some((e) => e.data === 'missed'), 'the replay');
      const stranger = await openStream(`${server.url}/subscribe`, { headers: { 'last-event-id': 'garbage' } });
      await waitUntil(() => stranger.events.some((e) => e.event === 'reset'), 'the reset');
      const families = await setup.scrape();
      // Both sent a Last-Event-ID: both are replays, one of them starting with a reset.
      expect(valueOf(families, 'sse_replays_total')).toBe(2);
      expect(valueOf(families, 'sse_resets_total', { reason: 'unknown-id' })).toBe(1);
      expect(valueOf(families, 'sse_resets_total', { reason: 'evicted' })).toBe(0);
      again.destroy();
      stranger.destroy();
    });
  });

  describe('when perChannel is on', () => {
    it('labels channel series by name, and only then', async () => {
      const setup = await metricsServer({ perChannel: true });
      ({ server, metrics } = setup);
      const client = await openStream(`${server.url}/subscribe`);
      await waitUntil(() => setup.registry.channel('main').size === 1, 'subscribed');
      await setup.registry.channel('main').broadcast('one');
      const families = await setup.scrape();
      expect(valueOf(families, 'sse_channel_subscriptions', { channel: 'main' })).toBe(1);
      expect(valueOf(families, 'sse_channel_events_total', { channel: 'main' })).toBe(1);
      client.destroy();
      const plain = new Registry();
      const collected = collectMetrics({ registry: plain, channels: setup.registry });
      expect(plain.getSingleMetric('sse_events_total')).toBeDefined();
      expect(plain.getSingleMetric('sse_channel_events_total')).toBeUndefined();
      collected.close();
    });
  });

  describe('when an option is wrong', () => {
    it.each([
      [{ registry: {} }, 'registry'],
      [{ registry: new Registry(), channels: [{}] }, 'channels'],
      [{ registry: new Registry(), handlers: [() => undefined] }, 'handlers'],
      [{ registry: new Registry(), prefix: '1x' }, 'prefix'],
      [{ registry: new Registry(), perChannel: 'yes' }, 'perChannel'],
      [{ registry: new Registry(), flushBuckets: [] }, 'flushBuckets'],
      [{ registry: new Registry(), extra: 1 }, 'extra'],
    ])('throws a TypeError naming it (%#)', (options, field) => {
      expect(() => collectMetrics(options as never)).toThrow(TypeError);
      expect(() => collectMetrics(options as never)).toThrow(field);
    });
  });

  describe('when collectMetrics() is called twice on one prom-client registry', () => {
    it('says to close() the first or use a prefix, and leaves the first set as it was', async () => {
      const prom = new Registry();
      const channels = new ChannelRegistry();
      const first = collectMetrics({ registry: prom, channels, perChannel: true });
      const before = await prom.metrics();
      expect(() => collectMetrics({ registry: prom, channels, perChannel: true })).toThrow(
        /already has a metric "sse_connections" .*call close\(\) on the first collectMetrics\(\) result .*or give each a different prefix/,
      );
      expect(await prom.metrics()).toBe(before);
      first.close();
      expect(() => collectMetrics({ registry: prom, channels }).close()).not.toThrow();
    });

    it('registers nothing of a second call that meets a name half-way', async () => {
      const prom = new Registry();
      const channels = new ChannelRegistry();
      const first = collectMetrics({ registry: prom, channels, prefix: 'a_' });
      // Only the per-channel metrics collide: everything the second call registered before them goes.
      new Gauge({ name: 'b_sse_channel_subscriptions', help: 'taken', registers: [prom] });
      expect(() => collectMetrics({ registry: prom, channels, prefix: 'b_', perChannel: true })).toThrow(/already has a metric "b_sse_channel_subscriptions"/);
      const names = [...parsePrometheus(await prom.metrics()).keys()];
      expect(names.filter((name) => name.startsWith('b_'))).toEqual(['b_sse_channel_subscriptions']);
      first.close();
    });
  });

  describe('when a prefix is given and the metrics are closed', () => {
    it('prefixes every name, and close() removes them all', async () => {
      const prom = new Registry();
      const handle = collectMetrics({ registry: prom, channels: new ChannelRegistry(), prefix: 'app_' });
      const families = parsePrometheus(await prom.metrics());
      expect([...families.keys()].every((name) => name.startsWith('app_sse_'))).toBe(true);
      expect(families.size).toBe(12);
      handle.close();
      expect((await prom.metrics()).trim()).toBe('');
    });
  });
});
