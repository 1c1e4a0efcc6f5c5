// The Redis connections: ioredis (an optional peer dependency, loaded here and nowhere else), how
// the adapter's own connections are made, and the waits on them, each one bounded.
import type * as IORedis from 'ioredis';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { requirePeer } from '../../common/peer';

export const ioredis = requirePeer<typeof IORedis>('ioredis', 'express-sse-hub/redis');

export function isClient(value: unknown): value is Redis | Cluster {
  return value instanceof ioredis.Redis || value instanceof ioredis.Cluster;
}

export function isCluster(value: unknown): value is Cluster {
  return value instanceof ioredis.Cluster;
}

/** The connection commands go through, made from a URL: fails fast while Redis is away. */
export function commandConnection(url: string, options: RedisOptions, commandTimeout: number): Redis {
  // Commands fail at once while Redis is away (a broadcast retries, then rejects with a clear
  // error, rather than queueing without bound), and each within commandTimeout (a frozen Redis).
  return new ioredis.Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true, ...options, enableOfflineQueue: false, commandTimeout });
}

/**
 * A connection of its own for Pub/Sub (a subscribed connection can run nothing else). It keeps its
 * SUBSCRIBEs queued while Redis is away; the adapter's own timeout bounds each wait.
 *
 * ioredis would subscribe a returning connection again by itself, without listening for the
 * reply: if that connection ends before Redis answers (the adapter closed, Redis hung), each of
 * those commands rejects with nobody to hear it, and Node's default for an unhandled rejection
 * ends the process. So `autoResubscribe` is off: the adapter subscribes again itself (pubsub.ts),
 * bounded, and reports a failure.
 */
export function subscriberConnection(commands: Redis | Cluster, own: { url: string; options: RedisOptions } | undefined, sharded: boolean): Redis | Cluster {
  if (isCluster(commands)) return commands.duplicate(undefined, { lazyConnect: true, shardedSubscribers: sharded });
  const settings = { enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: false } as const;
  if (own === undefined) return commands.duplicate({ lazyConnect: true, ...settings });
  return new ioredis.Redis(own.url, { lazyConnect: true, ...own.options, ...settings });
}

/** One wait per connection that is not ready, however many callers wait on it. */
const waits = new WeakMap<Redis | Cluster, Promise<void>>();

/**
 * Resolves once `connection` is ready: connects a lazy one, waits for one that is connecting.
 * Every caller shares one pair of listeners: while Redis is away, each broadcast and read waits
 * here, and a listener each would pile up (Node warns past 10) until Redis came back.
 */
export function ready(connection: Redis | Cluster): Promise<void> {
  if (connection.status === 'ready') return Promise.resolve();
  if (connection.status === 'wait') return connection.connect();
  let wait = waits.get(connection);
  if (wait === undefined) {
    wait = new Promise((resolve, reject) => {
      const settle = (): void => {
        connection.off('ready', done);
        connection.off('end', failed);
        waits.delete(connection);
      };
      const done = (): void => {
        settle();
        resolve();
      };
      const failed = (): void => {
        settle();
        reject(new Error('the connection ended'));
      };
      connection.on('ready', done);
      connection.on('end', failed);
    });
    waits.set(connection, wait);
  }
  return wait;
}

/** The message of the error a wait that ran out of time rejects with. */
const TIMED_OUT = 'timed out after';

/** `promise`, or a rejection after `ms` (the timer cleared either way). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} ${TIMED_OUT} ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * True for a failure of the connection rather than an answer of Redis: the command may or may
 * not have run, and sending it again is safe only if it is idempotent.
 */
export function isConnectionFailure(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name !== 'ReplyError';
}

/** Says what a Redis error means for the user: a cluster redirection is not an outage. */
export function explain(error: unknown): string {
  const message = messageOf(error);
  if (/^(MOVED|ASK) /.test(message)) {
    return `Redis answered "${message}": this is a Redis Cluster node; pass a Cluster client (RedisAdapter.connect({ client: new Cluster([...]) }))`;
  }
  if (/CROSSSLOT|CLUSTERDOWN/.test(message)) return `Redis Cluster refused the command (${message})`;
  return message;
}

export function describeUrl(url: string): string {
  // Never print a password.
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
