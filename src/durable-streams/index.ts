// `express-sse-hub/durable-streams`: the Durable Streams protocol served by an Express router,
// from the same adapters as channels (in memory, Redis, Redis Cluster).
import { Router } from 'express';
import type { Adapter } from '../adapters/adapter';
import { MemoryAdapter } from '../adapters/memory';
import { tellListener, warn } from '../common/errors';
import { MemoryStreamStore } from './memory-store';
import { resolveDurableStreamsOptions, type DurableStreamsOptions } from './options';
import { RedisStreamStore, redisClientOf } from './redis-store';
import { createRouter } from './router';
import { PollOnly, RunLogStore } from './runs-view';
import type { StreamStore } from './store';
import { SharedReads } from './shared-reads';
import { Wakeups } from './wakeups';

export type { DurableStreamsOptions } from './options';



/** The router `durableStreams()` returns: mount it, and close it when the server stops. */
export interface DurableStreamsRouter extends Router {
  /** Stops the store's timers (the adapter's connections are yours to close). */
  close(): Promise<void>;
}

/**
 * An Express router serving the Durable Streams protocol: mount it where streams live
 * (`app.use('/v1/stream', durableStreams({ adapter }))`); each path below the mount is a stream.
 * With a `RedisAdapter`, every process on that Redis (or Cluster) serves the same streams.
 */
export function durableStreams(options: DurableStreamsOptions = {}): DurableStreamsRouter {
  const settings = resolveDurableStreamsOptions(options);
  const adapter: Adapter = options.adapter ?? new MemoryAdapter();
  const given = options.onError;
  const onError = given === undefined ? warn : (error: Error): void => tellListener(given, error, 'durableStreams onError');
  const client = redisClientOf(adapter);
  const store: StreamStore = client === undefined
    ? new MemoryStreamStore({ maxStreamBytes: settings.maxStreamBytes, maxStreams: settings.maxStreams, maxTotalBytes: settings.maxTotalBytes, sweepInterval: 30_000 })
    : new RedisStreamStore(client, { prefix: settings.prefix, maxStreamBytes: settings.maxStreamBytes });
  const wakeups = new Wakeups(adapter, settings.prefix);
  const afterWake = new SharedReads(store, (path) => wakeups.version(path));
  const router = Router() as DurableStreamsRouter;
  if (settings.runsPath !== false) {
    const runStore = new RunLogStore(adapter);
    const runs = createRouter({ store: runStore, afterWake: runStore, wakeups: new PollOnly(), settings: { ...settings, recheckInterval: settings.runPollInterval }, onError, readOnly: true });
    router.use(settings.runsPath, runs);
  }
  router.use(createRouter({ store, afterWake, wakeups, settings, onError }));
  router.close = () => store.close();
  return router;
}
