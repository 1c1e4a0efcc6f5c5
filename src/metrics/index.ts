// Prometheus metrics through prom-client, exported as `express-sse-hub/metrics`: the only file
// that imports prom-client (an optional peer dependency). Everything is read from counters the
// library keeps anyway, when Prometheus scrapes (prom-client's collect()), so metrics cost nothing
// per event; only the flush histogram is fed as flushes happen, and only while metrics are on.
import type * as PromClient from 'prom-client';
import type { Registry } from 'prom-client';
import { DROP_REASONS, RESET_REASONS } from '../channels/counters';
import { SseError, fieldError } from '../common/errors';
import { observeFlushes } from '../stream/flusher';
import type { SseHandler } from '../stream/middleware';
import { checkOptionNames, checkOptionsObject } from '../common/checks';
import { requirePeer } from '../common/peer';
import { ChannelRegistry } from '../registry';

const { Counter, Gauge, Histogram } = requirePeer<typeof PromClient>('prom-client', 'express-sse-hub/metrics');

/** Options of `collectMetrics()`. */
export interface MetricsOptions {
  /** Your prom-client registry (`new Registry()`, or prom-client's default `register`). */
  readonly registry: Registry;
  /** The channel registries to count (events, deliveries, drops, replays, resets, subscriptions). */
  readonly channels?: ChannelRegistry | readonly ChannelRegistry[];
  /**
   * The `sse()` handlers to count (open streams, refusals by the connection limits). Without any,
   * `sse_connections` counts the connections subscribed to the registries' channels.
   */
  readonly handlers?: readonly SseHandler[];
  /**
   * Also `sse_channel_subscriptions`, `sse_channel_events_total` and `sse_channel_bytes_total`
   * with a `channel` label: one series per channel name, so only for a bounded set of names.
   * @default false
   */
  readonly perChannel?: boolean;
  /** Put before every metric name (`myapp_` gives `myapp_sse_connections`). @default '' */
  readonly prefix?: string;
  /**
   * Buckets of `sse_flush_duration_seconds`, in seconds.
   * @default [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25]
   */
  readonly flushBuckets?: readonly number[];
}

/** What `collectMetrics()` returns. */
export interface SseMetrics {
  /** Stops timing flushes and removes these metrics from the prom-client registry. */
  close(): void;
}

const DEFAULT_FLUSH_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
const KNOWN_OPTIONS = new Set(['registry', 'channels', 'handlers', 'perChannel', 'prefix', 'flushBuckets']);
const METRIC_PREFIX = /^$|^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
/** Refusal reasons, named after the sse() options that cause them. */
const REFUSAL_REASONS = ['max_connections', 'max_connections_per_key'] as const;

// Array.isArray narrows a readonly array to any[].
function isList(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}

/**
 * Registers the library's metrics on a prom-client registry (Prometheus text format through
 * `registry.metrics()`): `sse_connections`, `sse_subscriptions`, `sse_events_total`,
 * `sse_deliveries_total`, `sse_bytes_total`, `sse_clients_dropped_total{reason}`,
 * `sse_connections_refused_total{reason}`, `sse_replays_total`, `sse_resets_total{reason}`,
 * `sse_adapter_errors_total`, `sse_adapter_invalid_messages_total` and the histogram `sse_flush_duration_seconds`. Throws a `TypeError`
 * naming a wrong option.
 */
export function collectMetrics(options: MetricsOptions): SseMetrics {
  checkOptionsObject(options, 'collectMetrics()');
  checkOptionNames(options, KNOWN_OPTIONS, 'collectMetrics()');
  const { registry, channels = [], handlers = [], perChannel = false, prefix = '', flushBuckets = DEFAULT_FLUSH_BUCKETS } = options;
  if (typeof registry !== 'object' || registry === null || typeof (registry as Partial<Registry>).registerMetric !== 'function') {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'registry', "a prom-client Registry (new Registry(), or prom-client's register)", registry);
  }
  const registries: readonly ChannelRegistry[] = channels instanceof ChannelRegistry ? [channels] : channels;
  if (!isList(registries) || !registries.every((r) => r instanceof ChannelRegistry)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'channels', 'a ChannelRegistry or an array of them', channels);
  }
  if (!isList(handlers) || !handlers.every((h) => typeof h === 'function' && typeof (h as Partial<SseHandler>).stats === 'function')) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'handlers', 'an array of sse() handlers', handlers);
  }
  if (typeof perChannel !== 'boolean') throw fieldError('ERR_SSE_INVALID_OPTION', 'perChannel', 'a boolean', perChannel);
  if (typeof prefix !== 'string' || !METRIC_PREFIX.test(prefix)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'prefix', 'a metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)', prefix);
  }
  if (!isList(flushBuckets) || flushBuckets.length === 0 || !flushBuckets.every((b) => typeof b === 'number' && Number.isFinite(b) && b > 0)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'flushBuckets', 'a non-empty array of positive numbers (seconds)', flushBuckets);
  }

  const registers = [registry];
  const names: string[] = [];
  const name = (base: string): string => {
    const full = `${prefix}${base}`;
    if (registry.getSingleMetric(full) !== undefined) {
      // Nothing of this call stays registered: the caller can fix it and call again.
      for (const registered of names) registry.removeSingleMetric(registered);
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        `the prom-client registry already has a metric "${full}" (collectMetrics() was called twice on it): call close() on the first collectMetrics() result before collecting again, or give each a different prefix`,
      );
    }
    names.push(full);
    return full;
  };
  // One scrape reads every metric in turn: the registries' stats (which count distinct connections
  // over all channels) are taken once per scrape, not once per metric.
  let scraped: ReturnType<ChannelRegistry['stats']>[] | undefined;
  const statsOf = (): ReturnType<ChannelRegistry['stats']>[] => {
    if (scraped === undefined) {
      scraped = registries.map((r) => r.stats());
      setImmediate(() => (scraped = undefined));
    }
    return scraped;
  };
  const sum = (pick: (s: ReturnType<ChannelRegistry['stats']>) => number): number => statsOf().reduce((n, s) => n + pick(s), 0);

  // prom-client counters only go up: each scrape adds what the library counted since the last.
  const seen = new Map<string, number>();
  const advance = (counter: PromClient.Counter<string>, key: string, now: number, labels?: Record<string, string>): void => {
    const before = seen.get(key) ?? 0;
    seen.set(key, now);
    // A count below the last one restarted (a per-channel count of a channel created anew).
    const delta = now >= before ? now - before : now;
    if (delta > 0) {
      if (labels === undefined) counter.inc(delta);
      else counter.inc(labels, delta);
    }
  };
  const counter = (base: string, help: string, read: () => number): void => {
    const full = name(base);
    new Counter({
      name: full,
      help,
      registers,
      collect() {
        advance(this, full, read());
      },
    });
  };

  new Gauge({
    name: name('sse_connections'),
    help: 'Event streams open now.',
    registers,
    collect() {
      this.set(handlers.length > 0 ? handlers.reduce((n, h) => n + h.stats().connections, 0) : sum((s) => s.connections));
    },
  });
  new Gauge({
    name: name('sse_subscriptions'),
    help: 'Subscriptions now: connections summed over channels.',
    registers,
    collect() {
      this.set(sum((s) => s.subscriptions));
    },
  });
  counter('sse_events_total', 'Events broadcast from this process.', () => sum((s) => s.events));
  counter('sse_deliveries_total', 'Frames queued to connections (one event to 1 000 connections: 1 000), replays included.', () => sum((s) => s.deliveries));
  counter('sse_bytes_total', 'Bytes of the frames queued to connections by channels.', () => sum((s) => s.bytes));
  counter('sse_replays_total', 'Subscriptions that replayed history after a Last-Event-ID.', () => sum((s) => s.replays));
  counter('sse_adapter_errors_total', 'Adapter failures: errors it reported, failed publishes, subscriptions and log reads.', () => sum((s) => s.adapterErrors));
  counter(
    'sse_adapter_invalid_messages_total',
    'Messages and log entries from the adapter skipped because they do not read as events (another version, another service, garbage).',
    () => sum((s) => s.invalidMessages),
  );

  // Counters by reason. Labelled series appear only once they have a value: every reason starts
  // at 0, so dashboards and rate() see the series before the first one.
  const byReason = <R extends string>(base: string, help: string, reasons: readonly R[], read: (reason: R) => number): void => {
    const full = name(base);
    const metric = new Counter({
      name: full,
      help,
      labelNames: ['reason'],
      registers,
      collect() {
        for (const reason of reasons) advance(this, `${full}:${reason}`, read(reason), { reason });
      },
    });
    for (const reason of reasons) metric.inc({ reason }, 0);
  };
  byReason('sse_clients_dropped_total', 'Subscribed connections dropped, by reason (slow-client: past maxBufferedBytes; write-failed).', DROP_REASONS, (reason) =>
    sum((s) => s.droppedBy[reason]),
  );
  byReason('sse_resets_total', 'reset events sent, by reason (unknown-id, evicted, lost).', RESET_REASONS, (reason) => sum((s) => s.resetsBy[reason]));
  byReason(
    'sse_connections_refused_total',
    'Streams refused by the connection limits, by the sse() option that refused them (503 max_connections, 429 max_connections_per_key).',
    REFUSAL_REASONS,
    (reason) => handlers.reduce((n, h) => n + (reason === 'max_connections' ? h.stats().refusedFull : h.stats().refusedPerKey), 0),
  );

  const histogram = new Histogram({
    name: name('sse_flush_duration_seconds'),
    help: 'Time one flush took: every connection with something queued written once, syscalls included.',
    buckets: [...flushBuckets],
    registers,
  });

  if (perChannel) {
    new Gauge({
      name: name('sse_channel_subscriptions'),
      help: 'Connections subscribed to each channel now.',
      labelNames: ['channel'],
      registers,
      collect() {
        this.reset();
        for (const s of statsOf()) for (const [channel, c] of Object.entries(s.channels)) this.inc({ channel }, c.subscribers);
      },
    });
    const perChannelCounter = (base: string, help: string, pick: (c: { events: number; bytes: number }) => number): void => {
      const full = name(base);
      new Counter({
        name: full,
        help,
        labelNames: ['channel'],
        registers,
        // The channel's own count, as it is: a channel collected and created anew starts again
        // from 0, which Prometheus reads as a counter reset (a delta would lose what came before).
        // Channels gone are gone from the scrape too.
        collect() {
          const now = new Map<string, number>();
          for (const s of statsOf()) for (const [channel, c] of Object.entries(s.channels)) now.set(channel, (now.get(channel) ?? 0) + pick(c));
          this.reset();
          for (const [channel, value] of now) if (value > 0) this.inc({ channel }, value);
        },
      });
    };
    perChannelCounter('sse_channel_events_total', 'Events broadcast from this process, per channel.', (c) => c.events);
    perChannelCounter('sse_channel_bytes_total', 'Bytes queued to connections, per channel.', (c) => c.bytes);
  }

  const stopObserving = observeFlushes((seconds) => histogram.observe(seconds));
  return {
    close: () => {
      stopObserving();
      for (const full of names) registry.removeSingleMetric(full);
    },
  };
}
