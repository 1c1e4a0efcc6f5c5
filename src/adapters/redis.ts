// The Redis adapter: the only module that imports the Redis client (ioredis, an optional peer
// dependency), published as `express-sse-hub/redis` so the core keeps no runtime dependency.
//
// Design, in short:
// - One Lua script publishes an event atomically: it takes the next id from a global counter
//   derived from Redis' clock (microseconds, never going backwards), appends the event to the
//   channel's stream, trims it to N entries (remembering the newest id trimmed) and PUBLISHes it. Redis runs scripts one at a time, so
//   the order of ids is the order of delivery on every process.
// - Every process, the publisher included, delivers events only when they come back from
//   Pub/Sub, so all processes show all events in the same order.
// - Replay reads the stream after the client's id (XRANGE with an exclusive start, Redis 6.2+).
//   Ids that predate the data (Redis restarted without persistence) or that trimming removed are
//   reported as a reset.
// - After the Pub/Sub connection comes back, each channel is caught up from its stream.
// All keys share the hash tag {prefix}, so the scripts also run on Redis Cluster.
import { randomUUID } from 'node:crypto';
import Redis, { type RedisOptions } from 'ioredis';
import { SseError, fieldError } from '../errors';
import type { Adapter, AdapterEvent, DataKind, DeliverFunction, PublishResult, PublishedEvent, ReplayResult, ResetReason } from './adapter';
import { MemoryAdapter } from './memory';

/** Options of `RedisAdapter.connect()`. */
export interface RedisAdapterOptions {
  /** Where Redis is, as a `redis://` or `rediss://` URL. @default "redis://127.0.0.1:6379" */
  readonly url?: string;
  /** Further ioredis options (TLS, password, …), applied to both connections. */
  readonly redisOptions?: RedisOptions;
  /** Prefix of every key and Pub/Sub channel; processes sharing channels use the same one. @default "sse" */
  readonly prefix?: string;
  /** Milliseconds `connect()` waits for Redis before giving up. @default 5000 */
  readonly connectTimeout?: number;
  /** Milliseconds a broadcast waits for its own event to come back from Pub/Sub. @default 5000 */
  readonly publishTimeout?: number;
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

const PUBLISH_SCRIPT = `
local maxlen = tonumber(ARGV[2])
local msg = { n = ARGV[9], t = ARGV[7], k = ARGV[8] }
if ARGV[3] == '1' then msg.e = ARGV[4] end
if ARGV[5] == '1' then msg.c = ARGV[6] end
local ids = ''
if maxlen > 0 then
  local t = redis.call('TIME')
  local id = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', KEYS[1]) or '0')
  if id <= last then id = last + 1 end
  ids = string.format('%.0f', id)
  redis.call('SET', KEYS[1], ids)
  redis.call('SET', KEYS[2], ids, 'NX')
  if ARGV[3] == '1' then
    redis.call('XADD', KEYS[3], ids .. '-0', 't', ARGV[7], 'k', ARGV[8], 'e', ARGV[4])
  else
    redis.call('XADD', KEYS[3], ids .. '-0', 't', ARGV[7], 'k', ARGV[8])
  end
  -- Exact trimming that remembers the newest id it removed, so a replay can tell an evicted
  -- position from one that is still complete (MAXLEN ~ records nothing).
  local len = redis.call('XLEN', KEYS[3])
  if len > maxlen then
    local old = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', len - maxlen)
    redis.call('SET', KEYS[4], string.match(old[#old][1], '^(%d+)'))
    redis.call('XTRIM', KEYS[3], 'MAXLEN', maxlen)
  end
  msg.i = ids
end
redis.call('PUBLISH', ARGV[1], cjson.encode(msg))
return ids
`;

const READ_SCRIPT = `
local want = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local since = tonumber(redis.call('GET', KEYS[2]) or '0')
local reset = ''
if want > last or (want > 0 and want < since) then
  reset = 'unknown-id'
elseif want < tonumber(redis.call('GET', KEYS[4]) or '0') then
  reset = 'evicted'
end
if reset == '' then
  return { '', redis.call('XRANGE', KEYS[3], '(' .. ARGV[1] .. '-0', '+') }
end
return { reset, redis.call('XRANGE', KEYS[3], '-', '+') }
`;

type StreamEntry = [id: string, fields: string[]];

interface RedisWithScripts extends Redis {
  ssePublish(...args: (string | number)[]): Promise<string>;
  sseRead(...args: (string | number)[]): Promise<[string, StreamEntry[]]>;
}

interface WireMessage {
  /** position, when the event has one */
  i?: string;
  /** nonce of the publishing call */
  n: string;
  /** event name */
  e?: string;
  /** custom id */
  c?: string;
  /** text */
  t: string;
  /** kind */
  k: DataKind;
}

interface Waiter {
  resolve(delivered: number): void;
}

// A position is the decimal text of a safe integer (what the scripts produce).
const POSITION = /^(0|[1-9]\d{0,15})$/;

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

function eventOf(entry: StreamEntry): AdapterEvent {
  const [id, list] = entry;
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) fields[list[i]!] = list[i + 1]!;
  return {
    seq: Number(id.slice(0, id.indexOf('-'))),
    id: undefined,
    event: fields.e,
    text: fields.t ?? '',
    kind: (fields.k as DataKind | undefined) ?? 'text',
  };
}

/**
 * Shares channels, history and replay between processes and machines through Redis: Pub/Sub
 * for delivery, one Stream per channel for history. Create it with `RedisAdapter.connect()` and
 * pass it to `new ChannelRegistry({ adapter })`; `registry.close()` closes its connections.
 */
export class RedisAdapter implements Adapter {
  readonly #commands: RedisWithScripts;
  readonly #subscriber: Redis;
  readonly #prefix: string;
  readonly #publishTimeout: number;
  readonly #instance = randomUUID();
  readonly #channels = new Map<string, DeliverFunction>();
  /** Newest position delivered per channel, for dedupe and catch-up after a reconnect. */
  readonly #delivered = new Map<string, number>();
  readonly #waiters = new Map<string, Waiter>();
  #nonce = 0;
  #newest = 0;
  #lost = false;
  /** Live messages held while channels are caught up after a reconnect. */
  #held: [string, WireMessage][] | undefined;
  #closed = false;
  /** The last connection error, to say why a connect failed (ioredis itself only says "closed"). */
  #lastError: Error | undefined;
  onError?: (error: Error) => void;

  /** Connects to Redis (both connections) and resolves when it is ready, or rejects with `ERR_SSE_ADAPTER_UNAVAILABLE`. */
  static async connect(options: RedisAdapterOptions = {}): Promise<RedisAdapter> {
    const { url = 'redis://127.0.0.1:6379', connectTimeout = 5000 } = options;
    if (typeof url !== 'string') throw fieldError('ERR_SSE_INVALID_OPTION', 'url', 'a redis:// URL', url);
    if (!(Number.isSafeInteger(connectTimeout) && connectTimeout > 0)) {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'connectTimeout', 'a positive integer (ms)', connectTimeout);
    }
    const adapter = new RedisAdapter(options);
    try {
      await withTimeout(Promise.all([adapter.#commands.connect(), adapter.#subscriber.connect()]), connectTimeout, 'connecting');
    } catch (cause) {
      adapter.#commands.disconnect();
      adapter.#subscriber.disconnect();
      const reason = adapter.#lastError?.message ?? (cause instanceof Error ? cause.message : String(cause));
      throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not connect to Redis at ${describeUrl(url)} (${reason})`, { cause });
    }
    return adapter;
  }

  private constructor(options: RedisAdapterOptions) {
    const { url = 'redis://127.0.0.1:6379', redisOptions = {}, prefix = 'sse', publishTimeout = 5000 } = options;
    if (typeof prefix !== 'string' || prefix === '' || /[{}]/.test(prefix)) {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'prefix', 'a non-empty string without braces', prefix);
    }
    if (!(Number.isSafeInteger(publishTimeout) && publishTimeout > 0)) {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'publishTimeout', 'a positive integer (ms)', publishTimeout);
    }
    this.#prefix = `{${prefix}}`;
    this.#publishTimeout = publishTimeout;
    const common: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 1, ...redisOptions };
    // Commands fail at once while Redis is away (a broadcast rejects with a clear error rather
    // than queueing without bound); the subscriber queues its SUBSCRIBEs until it is back.
    this.#commands = new Redis(url, { ...common, enableOfflineQueue: false }) as RedisWithScripts;
    this.#subscriber = new Redis(url, { ...common, enableOfflineQueue: true });
    this.#commands.defineCommand('ssePublish', { numberOfKeys: 4, lua: PUBLISH_SCRIPT });
    this.#commands.defineCommand('sseRead', { numberOfKeys: 4, lua: READ_SCRIPT });
    for (const client of [this.#commands, this.#subscriber]) {
      // Connection errors are reported through the close/ready transitions below; a listener
      // must exist or ioredis prints every failed reconnect attempt.
      client.on('error', (error: Error) => {
        this.#lastError = error;
      });
    }
    this.#subscriber.on('close', () => {
      if (this.#closed || this.#lost) return;
      this.#lost = true;
      this.onError?.(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', 'lost the connection to Redis; reconnecting (broadcasts fail until it is back)'));
    });
    this.#subscriber.on('ready', () => {
      if (!this.#lost || this.#closed) return;
      this.#lost = false;
      void this.#catchUp();
    });
    this.#subscriber.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
  }

  get lastEventId(): string {
    return String(this.#newest);
  }

  #key(kind: string, channel?: string): string {
    return channel === undefined ? `${this.#prefix}:${kind}` : `${this.#prefix}:${kind}:${channel}`;
  }

  async publish(channel: string, event: PublishedEvent, history: number): Promise<PublishResult> {
    if (history > 0 && event.id !== undefined) {
      throw fieldError('ERR_SSE_INVALID_ID', 'id', 'omitted on a channel with history (Redis assigns ids that order every process)', event.id);
    }
    const nonce = `${this.#instance}:${(this.#nonce += 1)}`;
    const subscribed = this.#channels.has(channel);
    let timer: NodeJS.Timeout | undefined;
    const echo = subscribed
      ? new Promise<number>((resolve) => {
          this.#waiters.set(nonce, { resolve });
          timer = setTimeout(() => {
            if (!this.#waiters.delete(nonce)) return;
            this.onError?.(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `event published on "${channel}" but not received back within ${this.#publishTimeout} ms; local subscribers get it after the reconnect`));
            resolve(0);
          }, this.#publishTimeout);
        })
      : Promise.resolve(0);
    let id: string;
    try {
      id = await this.#commands.ssePublish(
        this.#key('last'),
        this.#key('since'),
        this.#key('stream', channel),
        this.#key('trimmed', channel),
        this.#key('ch', channel),
        history,
        event.event === undefined ? '0' : '1',
        event.event ?? '',
        event.id === undefined ? '0' : '1',
        event.id ?? '',
        event.text,
        event.kind,
        nonce,
      );
    } catch (cause) {
      clearTimeout(timer);
      this.#waiters.delete(nonce);
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not publish on "${channel}": Redis is unreachable (${reason}); the event was not sent`, { cause });
    }
    const delivered = await echo;
    clearTimeout(timer);
    if (id !== '') this.#newest = Math.max(this.#newest, Number(id));
    return { id: id === '' ? event.id : id, delivered };
  }

  subscribe(channel: string, deliver: DeliverFunction): void {
    const first = !this.#channels.has(channel);
    this.#channels.set(channel, deliver);
    if (first) {
      this.#subscriber.subscribe(this.#key('ch', channel)).catch((cause: unknown) => {
        this.onError?.(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not subscribe to "${channel}" on Redis`, { cause }));
      });
    }
  }

  unsubscribe(channel: string): void {
    if (!this.#channels.delete(channel)) return;
    this.#delivered.delete(channel);
    if (this.#closed) return;
    this.#subscriber.unsubscribe(this.#key('ch', channel)).catch(() => undefined);
  }

  async readAfter(channel: string, lastEventId: string, history: number): Promise<ReplayResult> {
    void history;
    const known = POSITION.test(lastEventId);
    const [reset, entries] = await this.#commands.sseRead(
      this.#key('last'),
      this.#key('since'),
      this.#key('stream', channel),
      this.#key('trimmed', channel),
      known ? lastEventId : '0',
    );
    const events = entries.map(eventOf);
    if (!known) return { events, reset: 'unknown-id' };
    return { events, reset: reset === '' ? undefined : (reset as ResetReason) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [nonce, waiter] of this.#waiters) {
      this.#waiters.delete(nonce);
      waiter.resolve(0);
    }
    this.#channels.clear();
    await Promise.all(
      [this.#commands, this.#subscriber].map(async (client) => {
        if (client.status !== 'ready') {
          client.disconnect();
          return;
        }
        try {
          await client.quit();
        } catch {
          client.disconnect();
        }
      }),
    );
  }

  #onMessage(pubsubChannel: string, raw: string): void {
    const prefix = this.#key('ch', '');
    if (!pubsubChannel.startsWith(prefix)) return;
    const channel = pubsubChannel.slice(prefix.length);
    let message: WireMessage;
    try {
      message = JSON.parse(raw) as WireMessage;
    } catch (cause) {
      this.onError?.(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `ignored a malformed message on ${pubsubChannel}`, { cause }));
      return;
    }
    if (this.#held !== undefined) {
      this.#held.push([channel, message]);
      return;
    }
    this.#deliverMessage(channel, message);
  }

  #deliverMessage(channel: string, message: WireMessage): void {
    const seq = message.i === undefined ? 0 : Number(message.i);
    const deliver = this.#channels.get(channel);
    let delivered = 0;
    // Dedupe: a catch-up read and Pub/Sub may both carry an event.
    if (deliver !== undefined && !(seq > 0 && seq <= (this.#delivered.get(channel) ?? 0))) {
      if (seq > 0) {
        this.#delivered.set(channel, seq);
        this.#newest = Math.max(this.#newest, seq);
      }
      delivered = deliver({ seq, id: message.c, event: message.e, text: message.t, kind: message.k });
    }
    const waiter = this.#waiters.get(message.n);
    if (waiter !== undefined) {
      this.#waiters.delete(message.n);
      waiter.resolve(delivered);
    }
  }

  // After the Pub/Sub connection comes back: hold live messages, read what each channel missed
  // from its stream, deliver it in order, then release the held messages (deduplicated).
  async #catchUp(): Promise<void> {
    this.#held = [];
    try {
      const missed: [string, AdapterEvent][] = [];
      for (const [channel, since] of this.#delivered) {
        const entries = (await this.#commands.xrange(this.#key('stream', channel), `(${since}-0`, '+')) as StreamEntry[];
        for (const entry of entries) missed.push([channel, eventOf(entry)]);
      }
      missed.sort((a, b) => a[1].seq - b[1].seq);
      for (const [channel, event] of missed) {
        this.#deliverMessage(channel, { i: String(event.seq), n: '', e: event.event, t: event.text, k: event.kind });
      }
    } catch (cause) {
      this.onError?.(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', 'reconnected to Redis but could not read what was missed; clients get it when they reconnect', { cause }));
    } finally {
      const held = this.#held ?? [];
      this.#held = undefined;
      for (const [channel, message] of held) this.#deliverMessage(channel, message);
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
