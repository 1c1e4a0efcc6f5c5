// The Redis adapter: shares channels, their logs and replay between processes and machines.
//
// - Every channel with history is a log in Redis (keys.ts, scripts.ts): appended and read by Lua
//   scripts, atomically, one round trip each. A log that vanished (Redis lost its data, the keys
//   expired) is recreated with a new epoch, so old positions are recognised as unknown.
// - An append is idempotent: it carries a publish id, and one sent again (its reply lost, resent
//   after a reconnect) returns its first position instead of being stored twice. So a publish
//   that fails on the connection is retried, within commandTimeout.
// - New entries reach other processes by Pub/Sub (pubsub.ts); a periodic check of the logs'
//   heads catches a message lost without any reconnect.
// - Every wait is bounded by commandTimeout, whoever made the connection.
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { debug } from '../../common/debug';
import { SseError, fieldError } from '../../common/errors';
import { SEALED, type LogEntry, type PublishedEvent, type ReadResult } from '../../log/entry';
import { newEpoch, type Position } from '../../log/position';
import { checkOptionNames, checkOptionsObject } from '../../common/checks';
import type { Adapter, EntryListener, LogOptions, PublishOptions, ReadOptions } from '../adapter';
import { MemoryAdapter } from '../memory';
import {
  commandConnection,
  describeUrl,
  explain,
  isClient,
  isCluster,
  isConnectionFailure,
  messageOf,
  ready,
  subscriberConnection,
  withTimeout,
} from './connections';
import { channelKeys, type ChannelKeys } from './keys';
import { PubSub } from './pubsub';
import { defineScripts, type ReadReply, type ScriptedClient } from './scripts';
import { FORMAT, decodeEntry, encodeMessage } from './wire';

/** Options of `RedisAdapter.connect()`. */
export interface RedisAdapterOptions {
  /**
   * Your own ioredis client: a `Redis` or a `Cluster` (Sentinel, TLS and the rest come with it).
   * The adapter duplicates it for Pub/Sub and never closes it; `url` and `redisOptions` are then
   * ignored.
   */
  readonly client?: Redis | Cluster;
  /** Where Redis is, as a `redis://` or `rediss://` URL, when no `client` is given. @default "redis://127.0.0.1:6379" */
  readonly url?: string;
  /** Further ioredis options (TLS, password, …) for the connections made from `url`. */
  readonly redisOptions?: RedisOptions;
  /** Prefix of every key and Pub/Sub channel; processes sharing channels use the same one. @default "sse" */
  readonly prefix?: string;
  /** Milliseconds `connect()` waits for Redis before giving up. @default 5000 */
  readonly connectTimeout?: number;
  /**
   * Milliseconds any Redis operation (publish, read, subscribe, close) may take before it fails,
   * on your own client too. A publish that fails on the connection is retried within it.
   * @default 5000
   */
  readonly commandTimeout?: number;
  /**
   * Sharded Pub/Sub (SPUBLISH/SSUBSCRIBE): `'auto'` uses it on Redis 7 and newer. Every process
   * sharing channels must agree.
   * @default 'auto'
   */
  readonly sharded?: boolean | 'auto';
  /**
   * Milliseconds between checks that each subscribed channel has seen its log's newest event (a
   * safety net for a Pub/Sub message lost without a reconnect). `false` turns it off.
   * @default 10000
   */
  readonly verifyInterval?: number | false;
}

/** Options of `createRedisAdapter()`. */
export interface CreateRedisAdapterOptions extends RedisAdapterOptions {
  /**
   * What to do when Redis cannot be reached at start-up: `'throw'` (default) rejects with
   * `ERR_SSE_ADAPTER_UNAVAILABLE`; `'memory'` warns and returns an in-process `MemoryAdapter`,
   * so the app runs alone (local-only mode).
   */
  readonly onUnavailable?: 'throw' | 'memory';
}

const KNOWN_OPTIONS = new Set(['client', 'url', 'redisOptions', 'prefix', 'connectTimeout', 'commandTimeout', 'sharded', 'verifyInterval']);
/** Milliseconds between attempts of a publish that failed on the connection. */
const RETRY_PAUSE_MS = 50;

function isPositive(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/**
 * Shares channels, their logs and replay between processes and machines through Redis (a single
 * server or a Cluster). Create it with `RedisAdapter.connect()` and pass it to
 * `new ChannelRegistry({ adapter })`; `registry.close()` closes the connections it made.
 */
export class RedisAdapter implements Adapter {
  readonly #commands: ScriptedClient;
  #pubsub: PubSub | undefined;
  /** The Pub/Sub connection, made once it is known whether Pub/Sub is sharded. */
  #subscriber: Redis | Cluster | undefined;
  readonly #url: string;
  readonly #redisOptions: RedisOptions;
  /** Whether the commands connection is the user's (never closed here). */
  readonly #ownsCommands: boolean;
  readonly #prefix: string;
  readonly #commandTimeout: number;
  readonly #verifyInterval: number | false;
  #sharded = false;
  /** Newest position each subscribed channel with history received, for the periodic check. */
  readonly #seen = new Map<string, Position>();
  /** Log options of each subscribed channel, for the periodic check. */
  readonly #options = new Map<string, LogOptions>();
  #verifier: NodeJS.Timeout | undefined;
  /** When the next check runs (performance.now()), while one is scheduled. */
  #nextCheck = Number.POSITIVE_INFINITY;
  #closed = false;
  /** The last connection error, to say why a connect failed (ioredis itself only says "closed"). */
  #lastError: Error | undefined;
  /** Names this adapter's publishes: a random part per adapter, a counter per publish. */
  readonly #publisher = randomBytes(6).toString('base64url');
  #publishes = 0;
  onResync?: (channels?: readonly string[]) => void;
  onError?: (error: Error) => void;
  onInvalid?: (what: string, why: string) => void;

  /**
   * Connects (or, with your `client`, checks the connection), sets up Pub/Sub and resolves when
   * both are ready; rejects with `ERR_SSE_ADAPTER_UNAVAILABLE` otherwise.
   */
  static async connect(options: RedisAdapterOptions = {}): Promise<RedisAdapter> {
    checkOptionsObject(options, 'RedisAdapter.connect()');
    checkOptionNames(options, KNOWN_OPTIONS, 'RedisAdapter.connect()');
    return RedisAdapter.#connect(options);
  }

  static async #connect(options: RedisAdapterOptions): Promise<RedisAdapter> {
    const { url = 'redis://127.0.0.1:6379', connectTimeout = 5000, client } = options;
    if (client === undefined && typeof url !== 'string') throw fieldError('ERR_SSE_INVALID_OPTION', 'url', 'a redis:// URL', url);
    if (client !== undefined && !isClient(client)) {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'client', 'an ioredis Redis or Cluster instance', client);
    }
    if (!isPositive(connectTimeout)) throw fieldError('ERR_SSE_INVALID_OPTION', 'connectTimeout', 'a positive integer (ms)', connectTimeout);
    const adapter = new RedisAdapter(options);
    const where = client === undefined ? describeUrl(url) : isCluster(client) ? 'the Redis Cluster' : 'the Redis client';
    try {
      await withTimeout(adapter.#start(options.sharded ?? 'auto'), connectTimeout, 'connecting');
    } catch (cause) {
      // #start may still be under way: closed, it releases whatever it makes from here on.
      adapter.#closed = true;
      adapter.#disconnect();
      const reason = adapter.#lastError?.message ?? explain(cause);
      throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not connect to ${where} (${reason})`, { cause });
    }
    return adapter;
  }

  private constructor(options: RedisAdapterOptions) {
    const { url = 'redis://127.0.0.1:6379', redisOptions = {}, prefix = 'sse', commandTimeout = 5000, verifyInterval = 10_000, client } = options;
    if (typeof prefix !== 'string' || prefix === '' || /[{}]/.test(prefix)) {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'prefix', 'a non-empty string without braces', prefix);
    }
    if (!isPositive(commandTimeout)) throw fieldError('ERR_SSE_INVALID_OPTION', 'commandTimeout', 'a positive integer (ms)', commandTimeout);
    if (verifyInterval !== false && !isPositive(verifyInterval)) {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'verifyInterval', 'false or a positive integer (ms)', verifyInterval);
    }
    const { sharded = 'auto' } = options;
    if (sharded !== 'auto' && typeof sharded !== 'boolean') throw fieldError('ERR_SSE_INVALID_OPTION', 'sharded', "true, false or 'auto'", sharded);
    this.#prefix = prefix;
    this.#commandTimeout = commandTimeout;
    this.#verifyInterval = verifyInterval;
    this.#url = url;
    this.#redisOptions = redisOptions;
    this.#ownsCommands = client === undefined;
    this.#commands = defineScripts(client ?? commandConnection(url, redisOptions, commandTimeout));
    this.#listen(this.#commands);
  }

  // A listener must exist or ioredis prints every failed reconnect attempt; the last error says
  // why a connect failed.
  #listen(connection: Redis | Cluster): void {
    connection.on('error', (error: Error) => {
      this.#lastError = error;
    });
  }

  /** The commands connection (a Redis or a Cluster), for data kept beside the channels' (`express-sse-hub/durable-streams`). */
  get client(): Redis | Cluster {
    return this.#commands;
  }

  /** True when events travel by sharded Pub/Sub (SPUBLISH/SSUBSCRIBE). */
  get sharded(): boolean {
    return this.#sharded;
  }

  async #start(sharded: boolean | 'auto'): Promise<void> {
    await ready(this.#commands);
    if (sharded === 'auto') {
      const info = String(await this.#anyNode().info('server'));
      const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? '0');
      this.#sharded = major >= 7;
    } else {
      this.#sharded = sharded;
    }
    if (this.#closed) return; // connect() gave up meanwhile: make nothing more
    const connection = subscriberConnection(this.#commands, this.#ownsCommands ? { url: this.#url, options: this.#redisOptions } : undefined, this.#sharded);
    this.#listen(connection);
    this.#subscriber = connection;
    this.#pubsub = new PubSub(connection, this.#prefix, this.#sharded, this.#commandTimeout, {
      resync: (channels) => this.onResync?.(channels),
      error: (error) => this.onError?.(error),
      invalid: (what, why) => this.onInvalid?.(what, why),
      seen: (channel, position) => this.#see(channel, position),
    });
    await connection.connect();
    if (this.#closed) {
      connection.disconnect();
      return;
    }
    debug('Redis adapter connected (%s Pub/Sub)', this.#sharded ? 'sharded' : 'classic');
    this.#scheduleCheck();
  }

  // The periodic check of subscribed channels (see #check) runs every verifyInterval, and often
  // enough to keep their logs from expiring (a third of the shortest historyTtl).
  #scheduleCheck(): void {
    if (this.#closed) return;
    let delay = this.#verifyInterval === false ? Number.POSITIVE_INFINITY : this.#verifyInterval;
    for (const { ttl } of this.#options.values()) if (ttl > 0) delay = Math.min(delay, Math.max(1, Math.floor(ttl / 3)));
    // Only ever brought forward: channels joining all the time must not postpone it forever.
    if (this.#verifier !== undefined && this.#nextCheck <= performance.now() + delay) return;
    clearTimeout(this.#verifier);
    this.#verifier = undefined;
    this.#nextCheck = Number.POSITIVE_INFINITY;
    if (delay === Number.POSITIVE_INFINITY) return;
    this.#nextCheck = performance.now() + delay;
    this.#verifier = setTimeout(() => {
      this.#verifier = undefined;
      this.#nextCheck = Number.POSITIVE_INFINITY;
      void this.#check().finally(() => this.#scheduleCheck());
    }, delay);
    this.#verifier.unref();
  }

  #anyNode(): Redis {
    const commands = this.#commands;
    return isCluster(commands) ? commands.nodes('master')[0]! : commands;
  }

  #keys(channel: string): ChannelKeys {
    return channelKeys(this.#prefix, channel);
  }

  // Every command the adapter sends is bounded by commandTimeout, on the user's own client too.
  #bounded<T>(command: Promise<T>, what: string): Promise<T> {
    return withTimeout(command, this.#commandTimeout, what);
  }

  async publish(channel: string, event: PublishedEvent, options: PublishOptions): Promise<Position | undefined> {
    if (options.history === 0) {
      const commands = this.#commands as Redis;
      const { pubsub } = this.#keys(channel);
      const message = encodeMessage(event);
      try {
        await this.#bounded(this.#sharded ? commands.spublish(pubsub, message) : commands.publish(pubsub, message), `publishing on "${channel}"`);
      } catch (cause) {
        throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not publish on "${channel}": ${explain(cause)}; the event may have been published`, { cause });
      }
      return undefined;
    }
    const { meta, log, publishes, pubsub } = this.#keys(channel);
    // The same arguments on every attempt: the publish id makes a repeat return the first position.
    const args = [
      meta,
      log,
      publishes,
      options.history,
      options.ttl,
      newEpoch(),
      pubsub,
      this.#sharded ? '1' : '0',
      FORMAT,
      event.text,
      event.kind,
      event.event ?? '',
      event.event === undefined ? '0' : '1',
      event.origin ?? '',
      options.seal === true ? '1' : '0',
      `${this.#publisher}.${(this.#publishes += 1).toString(36)}`,
      options.create === false ? '0' : '1',
    ];
    const started = performance.now();
    let appended: [string, number];
    for (let attempt = 1; ; attempt += 1) {
      const left = this.#commandTimeout - (performance.now() - started);
      try {
        appended = await withTimeout(this.#commands.sseAppend(...args), Math.max(1, left), `publishing on "${channel}"`);
        break;
      } catch (cause) {
        const remaining = this.#commandTimeout - (performance.now() - started);
        if (this.#closed || !isConnectionFailure(cause) || remaining <= RETRY_PAUSE_MS) {
          const maybe = isConnectionFailure(cause) ? '; the event may have been published' : '; nothing was published';
          throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not publish on "${channel}" (${attempt} attempt(s) in ${this.#commandTimeout} ms): ${explain(cause)}${maybe}`, { cause });
        }
        debug('publish on "%s" failed on the connection (%s); trying again', channel, messageOf(cause));
        await this.#pause(RETRY_PAUSE_MS, remaining);
      }
    }
    const [epoch, offset] = appended;
    if (Number(offset) === -1) throw new SseError('ERR_SSE_LOG_SEALED', `"${channel}": ${SEALED}`);
    if (Number(offset) === -2) throw new SseError('ERR_SSE_LOG_LOST', `"${channel}": the log no longer exists (Redis lost it, or it expired); nothing was appended`);
    return { epoch, offset: Number(offset) };
  }

  // Before the next attempt: a pause, then until the connection is ready (both within `bound`).
  async #pause(ms: number, bound: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.#commands.status === 'ready') return;
    await withTimeout(ready(this.#commands), Math.max(1, bound - ms), 'waiting for Redis').catch(() => undefined);
  }

  subscribe(channel: string, listener: EntryListener): Promise<void> {
    if (this.#pubsub === undefined || this.#closed) return Promise.reject(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', 'the Redis adapter is closed'));
    return this.#pubsub.subscribe(channel, listener);
  }

  unsubscribe(channel: string): void {
    if (this.#pubsub?.unsubscribe(channel) !== true) return;
    this.#seen.delete(channel);
    this.#options.delete(channel);
  }

  async read(channel: string, after: readonly Position[] | undefined, options: ReadOptions): Promise<ReadResult> {
    if (this.#pubsub?.has(channel) === true && !this.#options.has(channel)) {
      this.#options.set(channel, options);
      if (options.ttl > 0) this.#scheduleCheck();
    }
    const pairs: (string | number)[] = [];
    for (const position of after ?? []) pairs.push(position.epoch, position.offset);
    const { meta, log, publishes } = this.#keys(channel);
    const create = options.create !== false;
    let reply: ReadReply;
    try {
      reply = await this.#bounded(
        this.#commands.sseRead(meta, log, publishes, newEpoch(), create ? '1' : '0', create ? options.ttl : 0, after === undefined ? 'head' : 'after', ...pairs),
        `reading the log of "${channel}"`,
      );
    } catch (cause) {
      throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not read the log of "${channel}": ${explain(cause)}`, { cause });
    }
    const [epoch, head, matched, evicted, entries, origin, sealed, created] = reply;
    const events: LogEntry[] = [];
    for (const raw of Array.isArray(entries) ? entries : []) {
      const decoded = decodeEntry(raw, epoch);
      if ('entry' in decoded) events.push(decoded.entry);
      else this.onInvalid?.(`an entry of the log of "${channel}"`, decoded.skipped);
    }
    if (epoch !== '') this.#see(channel, { epoch, offset: Number(head) });
    return {
      head: { epoch, offset: Number(head) },
      matched: Number(matched),
      evicted: Number(evicted) === 1,
      events,
      matchedOrigin: origin === '' ? undefined : origin,
      sealed: Number(sealed) === 1,
      created: Number(created) === 1,
    };
  }

  async renew(channel: string, seen: Position, origin: string | undefined): Promise<void> {
    const { meta, log, publishes } = this.#keys(channel);
    let renewed: number;
    try {
      renewed = await this.#bounded(this.#commands.sseRenew(meta, log, publishes, seen.epoch, newEpoch(), seen.offset, origin ?? ''), `renewing the log of "${channel}"`);
    } catch (cause) {
      throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not start a new epoch for "${channel}": ${explain(cause)}`, { cause });
    }
    if (renewed === 1) debug('the log of "%s" no longer holds %d.%s: it went back in time, and starts a new epoch', channel, seen.offset, seen.epoch);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#verifier);
    this.#pubsub?.close();
    const connections: (Redis | Cluster)[] = [];
    if (this.#subscriber !== undefined) connections.push(this.#subscriber);
    if (this.#ownsCommands) connections.push(this.#commands);
    await Promise.all(
      connections.map(async (connection) => {
        if (connection.status !== 'ready') {
          connection.disconnect();
          return;
        }
        try {
          await withTimeout(connection.quit(), this.#commandTimeout, 'closing');
        } catch {
          connection.disconnect();
        }
      }),
    );
  }

  #disconnect(): void {
    clearTimeout(this.#verifier);
    this.#subscriber?.disconnect();
    if (this.#ownsCommands) this.#commands.disconnect();
  }

  #see(channel: string, position: Position): void {
    if (this.#pubsub?.has(channel) !== true) return;
    const seen = this.#seen.get(channel);
    if (seen === undefined || seen.epoch !== position.epoch || seen.offset < position.offset) this.#seen.set(channel, position);
  }

  // For every subscribed channel: keeps its log from expiring while someone is subscribed here,
  // and compares what the channel received with the log's head. One behind it lost a message
  // without any reconnect (a slot moved, a node failed over) and catches up.
  async #check(): Promise<void> {
    if (this.#closed || this.#pubsub === undefined || this.#pubsub.lost || this.#options.size === 0) return;
    const behind: string[] = [];
    await Promise.all(
      [...this.#options].map(async ([channel, options]) => {
        const { meta, log, publishes } = this.#keys(channel);
        try {
          const head = await this.#bounded(this.#commands.sseHead(meta, log, publishes, options.ttl), `checking the log of "${channel}"`);
          const seen = this.#seen.get(channel);
          if (head === null || seen === undefined || this.#verifyInterval === false) return;
          if (head[0] !== seen.epoch || Number(head[1]) > seen.offset) behind.push(channel);
        } catch {
          // Redis is away: the reconnect will resync everything.
        }
      }),
    );
    if (behind.length > 0 && !this.#closed) {
      this.#pubsub.refreshSlots();
      debug('%d channel(s) behind their logs; catching up', behind.length);
      this.onResync?.(behind);
    }
  }
}

/**
 * `RedisAdapter.connect()`, or, with `onUnavailable: 'memory'`, a local-only `MemoryAdapter`
 * and a process warning when Redis cannot be reached at start-up.
 */
export async function createRedisAdapter(options: CreateRedisAdapterOptions = {}): Promise<Adapter> {
  checkOptionsObject(options, 'createRedisAdapter()');
  checkOptionNames(options, new Set([...KNOWN_OPTIONS, 'onUnavailable']), 'createRedisAdapter()');
  const { onUnavailable = 'throw', ...rest } = options;
  if (onUnavailable !== 'throw' && onUnavailable !== 'memory') {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'onUnavailable', '"throw" or "memory"', onUnavailable);
  }
  try {
    return await RedisAdapter.connect(rest);
  } catch (error) {
    if (onUnavailable === 'throw') throw error;
    process.emitWarning(`${(error as Error).message}; running local-only: channels are not shared with other processes`, 'SseWarning');
    return new MemoryAdapter();
  }
}
