// The Redis adapter: the only module that imports the Redis client (ioredis, an optional peer
// dependency), published as `express-sse-hub/redis` so the core keeps no runtime dependency.
//
// Design, in short:
// - Every channel with history is a log in Redis: a Stream of its newest events (`…:log`, ids
//   `<offset>-0`) and a hash (`…:meta`) with its epoch and its newest offset. One Lua script
//   appends atomically (next offset, XADD with exact trimming, expiry) and publishes the entry;
//   another reads after a client's position. A log that vanished (Redis lost its data, the keys
//   expired) is recreated with a new epoch, so old positions are recognised as unknown.
// - The unit of ordering is the channel. Its keys and its Pub/Sub channel share a hash tag made
//   of the channel's name, so on Redis Cluster each channel lives on one master and the channels
//   spread over all of them. Sharded Pub/Sub (SPUBLISH/SSUBSCRIBE, Redis 7) keeps each event on
//   its shard instead of copying it to every node.
// - Delivery is at most once per message: what a process misses (a dropped connection, a slot
//   that moved), its channels notice as a gap and read from the log. After the Pub/Sub
//   connection comes back, every subscribed channel catches up (onResync), quiet ones included;
//   a periodic check of the logs' heads catches a message lost without any reconnect.
// - Every wait is bounded: commands time out (`commandTimeout`), close() gives up after it too.
import Redis, { Cluster, type RedisOptions } from 'ioredis';
import { debug } from '../debug';
import { SseError, fieldError } from '../errors';
import { SEALED, type DataKind, type LogEntry, type PublishedEvent, type ReadResult } from '../log';
import { isEpoch, newEpoch, type Position } from '../position';
import type { Adapter, EntryListener, LogOptions, PublishOptions, ReadOptions } from './adapter';
import { MemoryAdapter } from './memory';

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
  /** Milliseconds any Redis command (publish, read, subscribe, close) may take before it fails. @default 5000 */
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

/** Version of the messages and log entries this adapter writes; readers skip other versions. */
const FORMAT = '1';

// Both scripts below start here: a log with no meta is from before (its data was lost or its
// keys expired); it starts again, empty, with the new epoch the caller passed in ARGV[n].
const ENSURE_LOG = (epochArgument: number): string => `
local created = 0
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[${epochArgument}]
  created = 1
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'head', 0)
end`;

// Sets a key's expiry to ttl ms unless it is kept longer already: a run's log, kept long while it
// runs, is not cut short by a reader.
const EXTEND = `
local function extend(key, ttl)
  local left = redis.call('PTTL', key)
  if left >= 0 and left >= ttl then return end
  redis.call('PEXPIRE', key, ttl)
end`;

// KEYS: meta, log. ARGV: history, ttl ms (0: none), new epoch, Pub/Sub channel, sharded (1/0),
// format, text, kind, event ('' for none), has event (1/0), origin ('' for none), seal (1/0).
// Returns epoch and offset; offset -1 when the log is sealed (nothing appended or published).
const APPEND_SCRIPT = `${ENSURE_LOG(3)}
if redis.call('HEXISTS', KEYS[1], 'sealed') == 1 then
  return { epoch, -1 }
end
if ARGV[12] == '1' then
  redis.call('HSET', KEYS[1], 'sealed', 1)
end
local offset = redis.call('HINCRBY', KEYS[1], 'head', 1)
local fields = { 'v', ARGV[6], 't', ARGV[7], 'k', ARGV[8] }
local message = { v = ARGV[6], e = epoch, o = tostring(offset), t = ARGV[7], k = ARGV[8] }
if ARGV[10] == '1' then
  table.insert(fields, 'n'); table.insert(fields, ARGV[9]); message.n = ARGV[9]
end
if ARGV[11] ~= '' then
  table.insert(fields, 'r'); table.insert(fields, ARGV[11]); message.r = ARGV[11]
end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], tostring(offset) .. '-0', unpack(fields))
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
if ARGV[5] == '1' then
  redis.call('SPUBLISH', ARGV[4], cjson.encode(message))
else
  redis.call('PUBLISH', ARGV[4], cjson.encode(message))
end
return { epoch, offset }
`;

// Who published the log's event at an offset ('' when there is none, or no origin).
const ORIGIN_AT = `
local function originAt(offset)
  local found = redis.call('XRANGE', KEYS[2], tostring(offset) .. '-0', tostring(offset) .. '-0')
  if #found == 0 then return '' end
  local fields = found[1][2]
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'r' then return fields[i + 1] end
  end
  return ''
end`;

// KEYS: meta, log. ARGV: new epoch ('' to not create a missing log), ttl ms (0: none), mode
// ('head' | 'after'), then epoch and offset pairs of the client's positions. Returns epoch
// ('' for a missing log), head, matched index (0-based, -1), evicted (1/0), entries, the origin
// of the event at the matched position ('' for none), sealed (1/0), created (1/0).
const READ_SCRIPT = `${ORIGIN_AT}
${EXTEND}
if ARGV[1] == '' and redis.call('EXISTS', KEYS[1]) == 0 then
  return { '', 0, -1, 0, {}, '', 0, 0 }
end
${ENSURE_LOG(1)}
if tonumber(ARGV[2]) > 0 then
  extend(KEYS[1], tonumber(ARGV[2]))
  extend(KEYS[2], tonumber(ARGV[2]))
end
local sealed = redis.call('HEXISTS', KEYS[1], 'sealed')
local head = tonumber(redis.call('HGET', KEYS[1], 'head'))
if ARGV[3] == 'head' then
  return { epoch, head, -1, 0, {}, '', sealed, created }
end
local matched = -1
local offset = 0
for i = 4, #ARGV - 1, 2 do
  local o = tonumber(ARGV[i + 1])
  if ARGV[i] == epoch and o <= head then
    matched = (i - 4) / 2
    offset = o
    break
  end
end
if matched == -1 then
  return { epoch, head, -1, 0, redis.call('XRANGE', KEYS[2], '-', '+'), '', sealed, created }
end
local oldest = head - redis.call('XLEN', KEYS[2]) + 1
if offset < oldest - 1 then
  return { epoch, head, matched, 1, redis.call('XRANGE', KEYS[2], '-', '+'), '', sealed, created }
end
local origin = ''
if offset >= oldest then
  origin = originAt(offset)
end
return { epoch, head, matched, 0, redis.call('XRANGE', KEYS[2], '(' .. tostring(offset) .. '-0', '+'), origin, sealed, created }
`;

// KEYS: meta, log. ARGV: ttl ms (0: none). Keeps a subscribed channel's log alive and returns
// its epoch and head (nil when it does not exist).
const HEAD_SCRIPT = `${EXTEND}
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  return false
end
if tonumber(ARGV[1]) > 0 then
  extend(KEYS[1], tonumber(ARGV[1]))
  extend(KEYS[2], tonumber(ARGV[1]))
end
return { epoch, redis.call('HGET', KEYS[1], 'head') }
`;

// KEYS: meta, log. ARGV: epoch seen, new epoch, offset seen, origin seen ('' for unknown). A
// process saw that event in the log, which no longer holds it there: Redis came back from an
// older snapshot and would hand those offsets out again, with other events. The log starts a new
// epoch (unless another process renewed it already), so every position in the old one is unknown
// and clients get a reset instead of wrong events.
const RENEW_SCRIPT = `${ORIGIN_AT}
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  return 0
end
local rolled = tonumber(redis.call('HGET', KEYS[1], 'head')) < tonumber(ARGV[3])
if not rolled and ARGV[4] ~= '' then
  local origin = originAt(ARGV[3])
  rolled = origin ~= '' and origin ~= ARGV[4]
end
if not rolled then
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'head', 0)
return 1
`;

type StreamEntry = [id: string, fields: string[]];
type ReadReply = [epoch: string, head: number, matched: number, evicted: number, entries: StreamEntry[], origin: string, sealed: number, created: number];

interface Scripted {
  sseAppend(...args: (string | number)[]): Promise<[string, number]>;
  sseRead(...args: (string | number)[]): Promise<ReadReply>;
  sseHead(...args: (string | number)[]): Promise<[string, string] | null>;
  sseRenew(...args: (string | number)[]): Promise<number>;
}

type Client = (Redis | Cluster) & Scripted;

interface WireMessage {
  /** format version */
  v?: string;
  /** epoch ('' without history) */
  e?: string;
  /** offset, as text ('0' without history) */
  o?: string;
  /** event name */
  n?: string;
  /** text */
  t?: string;
  /** kind */
  k?: DataKind;
  /** custom id (only without history) */
  c?: string;
  /** origin: the publishing call */
  r?: string;
}

function describeUrl(url: string): string {
  // Never print a password.
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Says what a Redis error means for the user: a cluster redirection is not an outage. */
function explain(error: unknown): string {
  const message = messageOf(error);
  if (/^(MOVED|ASK) /.test(message)) {
    return `Redis answered "${message}": this is a Redis Cluster node; pass a Cluster client (RedisAdapter.connect({ client: new Cluster([...]) }))`;
  }
  if (/CROSSSLOT|CLUSTERDOWN/.test(message)) return `Redis Cluster refused the command (${message})`;
  return message;
}

function entryOf(entry: StreamEntry, epoch: string): LogEntry | undefined {
  const [id, list] = entry;
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) fields[list[i]!] = list[i + 1]!;
  if (fields.v !== FORMAT) return undefined;
  return {
    epoch,
    offset: Number(id.slice(0, id.indexOf('-'))),
    event: fields.n,
    text: fields.t ?? '',
    kind: (fields.k as DataKind | undefined) ?? 'text',
    id: undefined,
    origin: fields.r,
  };
}

// Resolves once `connection` is ready: connects a lazy one, waits for one that is connecting.
function ready(connection: Redis | Cluster): Promise<void> {
  if (connection.status === 'ready') return Promise.resolve();
  if (connection.status === 'wait') return connection.connect();
  return new Promise((resolve, reject) => {
    const done = (): void => {
      connection.off('ready', done);
      connection.off('end', failed);
      resolve();
    };
    const failed = (): void => {
      connection.off('ready', done);
      connection.off('end', failed);
      reject(new Error('the connection ended'));
    };
    connection.on('ready', done);
    connection.on('end', failed);
  });
}

function isPositive(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/**
 * Shares channels, their logs and replay between processes and machines through Redis (a single
 * server or a Cluster). Create it with `RedisAdapter.connect()` and pass it to
 * `new ChannelRegistry({ adapter })`; `registry.close()` closes the connections it made.
 */
export class RedisAdapter implements Adapter {
  readonly #commands: Client;
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
  readonly #listeners = new Map<string, EntryListener>();
  /** SSUBSCRIBEs on a Cluster waiting for their confirmation, woken when ioredis resubscribed (see #ssubscribe). */
  readonly #subscribing = new Set<() => void>();
  /** Newest position each subscribed channel with history received, for the periodic check. */
  readonly #seen = new Map<string, Position>();
  /** Log options of each subscribed channel, for the periodic check. */
  readonly #options = new Map<string, LogOptions>();
  #verifier: NodeJS.Timeout | undefined;
  /** When the next check runs (performance.now()), while one is scheduled. */
  #nextCheck = Number.POSITIVE_INFINITY;
  #lost = false;
  #closed = false;
  /** The last connection error, to say why a connect failed (ioredis itself only says "closed"). */
  #lastError: Error | undefined;
  #reportedFormat = false;
  onResync?: (channels?: readonly string[]) => void;
  onError?: (error: Error) => void;

  /**
   * Connects (or, with your `client`, checks the connection), sets up Pub/Sub and resolves when
   * both are ready; rejects with `ERR_SSE_ADAPTER_UNAVAILABLE` otherwise.
   */
  static async connect(options: RedisAdapterOptions = {}): Promise<RedisAdapter> {
    const { url = 'redis://127.0.0.1:6379', connectTimeout = 5000, client } = options;
    if (client === undefined && typeof url !== 'string') throw fieldError('ERR_SSE_INVALID_OPTION', 'url', 'a redis:// URL', url);
    if (client !== undefined && !(client instanceof Redis || client instanceof Cluster)) {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'client', 'an ioredis Redis or Cluster instance', client);
    }
    if (!isPositive(connectTimeout)) throw fieldError('ERR_SSE_INVALID_OPTION', 'connectTimeout', 'a positive integer (ms)', connectTimeout);
    const adapter = new RedisAdapter(options);
    const where = client === undefined ? describeUrl(url) : client instanceof Cluster ? 'the Redis Cluster' : 'the Redis client';
    try {
      await withTimeout(adapter.#start(options.sharded ?? 'auto'), connectTimeout, 'connecting');
    } catch (cause) {
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
    if (client !== undefined) {
      this.#commands = client as Client;
      this.#ownsCommands = false;
    } else {
      // Commands fail at once while Redis is away (a broadcast rejects with a clear error rather
      // than queueing without bound), and each within commandTimeout (a frozen Redis).
      this.#commands = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true, ...redisOptions, enableOfflineQueue: false, commandTimeout }) as Client;
      this.#ownsCommands = true;
    }
    this.#commands.defineCommand('sseAppend', { numberOfKeys: 2, lua: APPEND_SCRIPT });
    this.#commands.defineCommand('sseRead', { numberOfKeys: 2, lua: READ_SCRIPT });
    this.#commands.defineCommand('sseHead', { numberOfKeys: 2, lua: HEAD_SCRIPT });
    this.#commands.defineCommand('sseRenew', { numberOfKeys: 2, lua: RENEW_SCRIPT });
    this.#listen(this.#commands);
  }

  // A listener must exist or ioredis prints every failed reconnect attempt; the last error says
  // why a connect failed.
  #listen(connection: Redis | Cluster): void {
    connection.on('error', (error: Error) => {
      this.#lastError = error;
    });
  }

  // A connection of its own for Pub/Sub (a subscribed connection can run nothing else). It keeps
  // its SUBSCRIBEs queued while Redis is away; our own timeout bounds each wait.
  #createSubscriber(): Redis | Cluster {
    const commands = this.#commands;
    let subscriber: Redis | Cluster;
    if (commands instanceof Cluster) subscriber = commands.duplicate(undefined, { lazyConnect: true, shardedSubscribers: this.#sharded });
    else if (!this.#ownsCommands) subscriber = commands.duplicate({ lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: null });
    else subscriber = new Redis(this.#url, { lazyConnect: true, ...this.#redisOptions, enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.#listen(subscriber);
    subscriber.on('close', () => {
      if (this.#closed || this.#lost) return;
      this.#lost = true;
      this.onError?.(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', 'lost the Pub/Sub connection to Redis; reconnecting (broadcasts may fail until it is back)'));
    });
    subscriber.on('ready', () => {
      if (!this.#lost || this.#closed) return;
      this.#lost = false;
      void this.#recover();
    });
    subscriber.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
    subscriber.on('smessage', (channel: string, message: string) => this.#onMessage(channel, message));
    if (subscriber instanceof Cluster && this.#sharded) this.#followSlots(subscriber);
    return subscriber;
  }

  // Sharded Pub/Sub on a Cluster: ioredis keeps one subscriber connection per master and, each
  // time its slot map changes (or a subscriber connection was replaced), subscribes every channel
  // again on its slot's master and emits 'subscribersReady'. But it refreshes that map only when
  // told to, and a slot that moves tells it nothing: Redis just unsubscribes the slot's channels
  // on the old master (an unsolicited SUNSUBSCRIBE, which ioredis reports as a 'nodeError').
  // Refresh then, and after every resubscription let every channel catch up from its log: what
  // was published meanwhile never reached this process.
  #followSlots(subscriber: Cluster): void {
    subscriber.on('nodeError', (error: Error) => {
      if (!this.#closed && /\bsunsubscribe\b/.test(error.message)) subscriber.refreshSlotsCache();
    });
    subscriber.on('subscribersReady', () => {
      for (const wake of this.#subscribing) wake();
      if (this.#closed || this.#lost || this.#listeners.size === 0) return;
      debug('Redis Cluster subscribers were set up again; every channel catches up from its log');
      this.onResync?.();
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
    this.#subscriber = this.#createSubscriber();
    await this.#subscriber.connect();
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
    return commands instanceof Cluster ? commands.nodes('master')[0]! : commands;
  }

  // A channel's keys and its Pub/Sub channel share the hash tag {name}: one slot per channel.
  #pubsubChannel(channel: string): string {
    return `${this.#prefix}:{${channel}}`;
  }

  #keys(channel: string): [meta: string, log: string] {
    const tagged = this.#pubsubChannel(channel);
    return [`${tagged}:meta`, `${tagged}:log`];
  }

  async publish(channel: string, event: PublishedEvent, options: PublishOptions): Promise<Position | undefined> {
    let appended: [string, number];
    try {
      if (options.history > 0) {
        appended = await this.#commands.sseAppend(
          ...this.#keys(channel),
          options.history,
          options.ttl,
          newEpoch(),
          this.#pubsubChannel(channel),
          this.#sharded ? '1' : '0',
          FORMAT,
          event.text,
          event.kind,
          event.event ?? '',
          event.event === undefined ? '0' : '1',
          event.origin ?? '',
          options.seal === true ? '1' : '0',
        );
      } else {
        const message: WireMessage = { v: FORMAT, e: '', o: '0', t: event.text, k: event.kind };
        if (event.event !== undefined) message.n = event.event;
        if (event.id !== undefined) message.c = event.id;
        if (event.origin !== undefined) message.r = event.origin;
        const text = JSON.stringify(message);
        const commands = this.#commands as Redis;
        await (this.#sharded ? commands.spublish(this.#pubsubChannel(channel), text) : commands.publish(this.#pubsubChannel(channel), text));
        return undefined;
      }
    } catch (cause) {
      throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not publish on "${channel}": ${explain(cause)}; the event may not have been sent`, { cause });
    }
    const [epoch, offset] = appended;
    if (Number(offset) === -1) throw new SseError('ERR_SSE_LOG_SEALED', `"${channel}": ${SEALED}`);
    return { epoch, offset: Number(offset) };
  }

  async subscribe(channel: string, listener: EntryListener): Promise<void> {
    const first = !this.#listeners.has(channel);
    this.#listeners.set(channel, listener);
    if (!first) return;
    try {
      await withTimeout(this.#subscribeTo([channel]), this.#commandTimeout, `subscribing to "${channel}"`);
    } catch (cause) {
      throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not subscribe to "${channel}" on Redis: ${explain(cause)}`, { cause });
    }
  }

  #subscribeTo(channels: readonly string[]): Promise<unknown> {
    const names = channels.map((c) => this.#pubsubChannel(c));
    const subscriber = this.#subscriber!;
    if (!this.#sharded) return (subscriber as Redis).subscribe(...names);
    if (!(subscriber instanceof Cluster)) return subscriber.ssubscribe(...names);
    // On a Cluster one SSUBSCRIBE per channel: channels of different slots cannot share one.
    return Promise.all(names.map((name) => this.#ssubscribe(subscriber, name)));
  }

  // ioredis sends a Cluster's SSUBSCRIBE to the master its slot map names. When the slot has moved
  // since, that master answers MOVED, and ioredis refreshes its map and subscribes the channel
  // again on the right master ('subscribersReady') but never settles the command: then subscribe
  // once more, for a confirmation.
  async #ssubscribe(subscriber: Cluster, name: string): Promise<void> {
    let wake: (() => void) | undefined;
    const resubscribed = new Promise<'resubscribed'>((resolve) => {
      wake = () => resolve('resubscribed');
    });
    this.#subscribing.add(wake!);
    try {
      if ((await Promise.race([subscriber.ssubscribe(name), resubscribed])) === 'resubscribed') await subscriber.ssubscribe(name);
    } finally {
      this.#subscribing.delete(wake!);
    }
  }

  unsubscribe(channel: string): void {
    if (!this.#listeners.delete(channel)) return;
    this.#seen.delete(channel);
    this.#options.delete(channel);
    if (this.#closed) return;
    const subscriber = this.#subscriber as Redis;
    const name = this.#pubsubChannel(channel);
    (this.#sharded ? subscriber.sunsubscribe(name) : subscriber.unsubscribe(name)).catch(() => undefined);
  }

  async read(channel: string, after: readonly Position[] | undefined, options: ReadOptions): Promise<ReadResult> {
    if (this.#listeners.has(channel) && !this.#options.has(channel)) {
      this.#options.set(channel, options);
      if (options.ttl > 0) this.#scheduleCheck();
    }
    const pairs: (string | number)[] = [];
    for (const position of after ?? []) pairs.push(position.epoch, position.offset);
    let reply: ReadReply;
    try {
      const create = options.create !== false;
      reply = await this.#commands.sseRead(...this.#keys(channel), create ? newEpoch() : '', create ? options.ttl : 0, after === undefined ? 'head' : 'after', ...pairs);
    } catch (cause) {
      throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not read the log of "${channel}": ${explain(cause)}`, { cause });
    }
    const [epoch, head, matched, evicted, entries, origin, sealed, created] = reply;
    const events: LogEntry[] = [];
    for (const raw of entries) {
      const entry = entryOf(raw, epoch);
      if (entry !== undefined) events.push(entry);
      else this.#reportFormat(`a log entry of "${channel}"`);
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
    let renewed: number;
    try {
      renewed = await this.#commands.sseRenew(...this.#keys(channel), seen.epoch, newEpoch(), seen.offset, origin ?? '');
    } catch (cause) {
      throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not start a new epoch for "${channel}": ${explain(cause)}`, { cause });
    }
    if (renewed === 1) debug('the log of "%s" no longer holds %d.%s: it went back in time, and starts a new epoch', channel, seen.offset, seen.epoch);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#verifier);
    this.#listeners.clear();
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

  #onMessage(pubsubChannel: string, raw: string): void {
    const start = this.#prefix.length + 2;
    if (!pubsubChannel.startsWith(`${this.#prefix}:{`) || !pubsubChannel.endsWith('}')) return;
    const channel = pubsubChannel.slice(start, -1);
    const listener = this.#listeners.get(channel);
    if (listener === undefined) return;
    let message: WireMessage;
    try {
      message = JSON.parse(raw) as WireMessage;
    } catch {
      this.#reportFormat(`a message on ${pubsubChannel}`);
      return;
    }
    // Another format (a newer version during a rolling upgrade): skipped. With history, the
    // channel notices the gap at the next message it understands and reads the log.
    if (message.v !== FORMAT || typeof message.t !== 'string') {
      this.#reportFormat(`a message on ${pubsubChannel}`);
      return;
    }
    const offset = Number(message.o ?? '0');
    const epoch = message.e ?? '';
    if (offset > 0 && !isEpoch(epoch)) return;
    if (offset > 0) this.#see(channel, { epoch, offset });
    listener({
      epoch,
      offset,
      event: message.n,
      text: message.t,
      kind: message.k ?? 'text',
      id: offset > 0 ? undefined : message.c,
      origin: message.r,
    });
  }

  #see(channel: string, position: Position): void {
    if (!this.#listeners.has(channel)) return;
    const seen = this.#seen.get(channel);
    if (seen === undefined || seen.epoch !== position.epoch || seen.offset < position.offset) this.#seen.set(channel, position);
  }

  #reportFormat(what: string): void {
    if (this.#reportedFormat) return;
    this.#reportedFormat = true;
    this.onError?.(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `skipped ${what} in a format this version does not read (is a newer version publishing?); reported once`));
  }

  // The Pub/Sub connection is back: subscribe again to every channel (confirmed), then let every
  // channel catch up from its log, since messages published meanwhile were not received.
  async #recover(): Promise<void> {
    const channels = [...this.#listeners.keys()];
    try {
      if (channels.length > 0) await withTimeout(this.#subscribeTo(channels), this.#commandTimeout, 'subscribing again');
    } catch (cause) {
      this.onError?.(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `reconnected to Redis but could not subscribe again: ${explain(cause)}`, { cause }));
    }
    debug('Redis Pub/Sub is back; %d channel(s) catch up from their logs', channels.length);
    this.onResync?.();
  }

  // For every subscribed channel: keeps its log from expiring while someone is subscribed here,
  // and compares what the channel received with the log's head. One behind it lost a message
  // without any reconnect (a slot moved, a node failed over) and catches up.
  async #check(): Promise<void> {
    if (this.#closed || this.#lost || this.#options.size === 0) return;
    const behind: string[] = [];
    await Promise.all(
      [...this.#options].map(async ([channel, options]) => {
        try {
          const head = await this.#commands.sseHead(...this.#keys(channel), options.ttl);
          const seen = this.#seen.get(channel);
          if (head === null || seen === undefined || this.#verifyInterval === false) return;
          if (head[0] !== seen.epoch || Number(head[1]) > seen.offset) behind.push(channel);
        } catch {
          // Redis is away: the reconnect will resync everything.
        }
      }),
    );
    if (behind.length > 0 && !this.#closed) {
      // Messages went missing: on a sharded Cluster, maybe because a slot moved to another master.
      if (this.#sharded && this.#subscriber instanceof Cluster) this.#subscriber.refreshSlotsCache();
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
