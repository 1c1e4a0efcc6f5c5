// A channel: fan-out. It serializes a broadcast once, hands it to the adapter, and when entries
// come back (from its own broadcasts or anyone else's, on any process) it queues the same frame
// for every connection that is live here. With history it keeps one position: the newest entry
// it fanned out. An entry is fanned out only if it is the next one after that position; an older
// one is a duplicate, a newer one means entries were missed (a Pub/Sub message lost, a reconnect),
// and the channel reads them from the log first. Connections still catching up have their own
// cursor (see subscription.ts).
import { dataOf, type Adapter, type LogOptions } from '../adapters/adapter';
import { MemoryAdapter } from '../adapters/memory';
import type { Connection } from '../stream/connection';
import { newCounters, type Counters } from './counters';
import { debug } from '../common/debug';
import * as diagnostics from '../common/diagnostics';
import { SseError, fieldError, warn } from '../common/errors';
import { frameOf, frameWithId, type Frame } from './frame';
import { kindOf, type LogEntry, type ReadResult } from '../log/entry';
import { MAX_TIMER_MS, checkOptionNames, checkOptionsObject, isTimerMs } from '../common/checks';
import { formatPosition, type ClientPosition, type Position } from '../log/position';
import { formatEvent, serializeData, validateEvent, validateId, type Serializer } from '../stream/serializer';
import { SseStream, type StreamTarget } from '../stream/stream';
import {
  subscribe,
  Subscription,
  type Authorize,
  type ChannelEvent,
  type ResetReason,
  type SubscribeOptions,
} from './subscription';

/** Options of a channel. Read once when the channel is created. */
export interface ChannelOptions {
  /**
   * How many past events to keep for `Last-Event-ID` replay. Every event then gets an id that is
   * its position in the channel's log. `false` or `0` keeps none.
   * @default false
   */
  readonly history?: number | false;
  /**
   * Milliseconds a channel's history is kept after its last event while nobody is subscribed
   * (then it is freed, in memory and in Redis). `false` keeps it as long as the adapter lives.
   * @default 86400000 (24 hours)
   */
  readonly historyTtl?: number | false;
  /**
   * Largest number of bytes a connection's socket may still hold from earlier writes when the
   * next write is due. A client past it is disconnected at once (its buffers freed); it
   * reconnects and replays from history. `false` drops nobody below 1 GiB.
   * @default 1048576 (1 MiB)
   */
  readonly maxBufferedBytes?: number | false;
  /**
   * Turns non-string data into text, once per broadcast. Strings are sent as they are.
   * @default JSON.stringify
   */
  readonly serialize?: Serializer;
}

/** Per-call fields of `channel.broadcast()`. */
export interface BroadcastOptions {
  /** Event name; omitted: `message`. */
  readonly event?: string;
  /**
   * Your own event id, only on a channel without history (with history, the id is the event's
   * position in the log, and an id given here throws a `TypeError`).
   */
  readonly id?: string | number;
}

/** What `channel.broadcast()` resolves with. */
export interface BroadcastResult {
  /** The event's id on the wire: its position with history, your `id` without; else undefined. */
  readonly id: string | undefined;
  /** Connections of this process it was queued for. */
  readonly delivered: number;
}

/** Counters of one channel, for metrics. */
export interface ChannelStats {
  readonly subscribers: number;
  /** Events broadcast from this process. */
  readonly events: number;
  /** Bytes handed to connections (frame size × recipients), replays included. */
  readonly bytes: number;
  /** Connections dropped by the slow-client policy while subscribed here. */
  readonly dropped: number;
  /** Subscriptions that replayed history. */
  readonly replays: number;
  /** `reset` events sent. */
  readonly resets: number;
}

/** The event a connection gets when it may have missed events; then what history remains. */
export const RESET_EVENT = 'reset';

export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
export const DEFAULT_HISTORY_TTL_MS = 24 * 60 * 60 * 1000;

/** What a registry gives its channels. */
export interface ChannelHooks {
  readonly adapter: Adapter;
  readonly authorize: Authorize | undefined;
  readonly authorizeTimeout: number;
  /** The registry's running totals, which the channel adds to. */
  readonly counters: Counters;
  onError(error: Error): void;
  /** A unique name for the next broadcast from this process. */
  nextOrigin(): string;
  /** A connection joined the channel. */
  onJoin(channel: Channel): void;
  /** A connection left; `dropped` when the slow-client policy disconnected it. */
  onLeave(channel: Channel, stream: SseStream, dropped: boolean): void;
}

interface ChannelSettings {
  readonly history: number;
  readonly historyTtl: number;
  readonly maxBufferedBytes: number;
  readonly serialize: Serializer;
}

/** The option names of a channel (the registry takes them too, as defaults). */
export const CHANNEL_OPTION_NAMES: readonly string[] = ['history', 'historyTtl', 'maxBufferedBytes', 'serialize'];
const KNOWN_OPTIONS = new Set(CHANNEL_OPTION_NAMES);

export function resolveChannelOptions(options: ChannelOptions = {}, what = 'channel'): ChannelSettings {
  checkOptionsObject(options, what);
  checkOptionNames(options, KNOWN_OPTIONS, what);
  const {
    history = false,
    historyTtl = DEFAULT_HISTORY_TTL_MS,
    maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES,
    serialize = JSON.stringify,
  } = options;
  if (history !== false && !(Number.isSafeInteger(history) && history >= 0)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'history', 'false or a non-negative integer (events)', history);
  }
  if (historyTtl !== false && !isTimerMs(historyTtl)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'historyTtl', `false or an integer from 1 to ${MAX_TIMER_MS} (ms)`, historyTtl);
  }
  if (maxBufferedBytes !== false && !(Number.isSafeInteger(maxBufferedBytes) && maxBufferedBytes > 0)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'maxBufferedBytes', 'false or a positive integer (bytes)', maxBufferedBytes);
  }
  if (typeof serialize !== 'function') throw fieldError('ERR_SSE_INVALID_OPTION', 'serialize', 'a function', serialize);
  return {
    history: history === false ? 0 : history,
    historyTtl: historyTtl === false ? 0 : historyTtl,
    maxBufferedBytes: maxBufferedBytes === false ? Number.POSITIVE_INFINITY : maxBufferedBytes,
    serialize,
  };
}

export function validateChannelName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || name.length > 256) {
    throw fieldError('ERR_SSE_INVALID_CHANNEL', 'channel name', 'a string of 1 to 256 characters', name);
  }
  return name;
}

/** The stream of an Express response (after `sse()`), or a stream itself. */
export function streamOf(target: StreamTarget): SseStream {
  // The event map is a compile-time matter only: any stream is one.
  const stream: unknown = target instanceof SseStream ? target : (target as { sse?: unknown } | null)?.sse;
  if (stream instanceof SseStream) return stream as SseStream;
  throw new SseError('ERR_SSE_NO_STREAM', 'subscribe() needs a response that went through the sse() middleware (res.sse is missing)');
}

let standaloneOrigins = 0;

function standaloneHooks(): ChannelHooks {
  return {
    adapter: new MemoryAdapter(),
    authorize: undefined,
    authorizeTimeout: 0,
    counters: newCounters(),
    onError: warn,
    nextOrigin: () => `standalone:${(standaloneOrigins += 1)}`,
    onJoin: () => undefined,
    onLeave: () => undefined,
  };
}

const UNREAD = Symbol('unread');

/** Milliseconds a broadcast waits for its own event to be fanned out here. */
const DELIVERY_TIMEOUT_MS = 5000;
/** How long a channel keeps trying to catch up from its log before it gives its connections up. */
const SYNC_ATTEMPTS = 5;
const SYNC_RETRY_MS = 200;

/**
 * A named group of subscribers. `broadcast()` serializes an event once and queues the same
 * frame for every subscriber; frames broadcast in one event-loop turn reach each connection in
 * one write. Create channels with `registry.channel(name)`, or `new Channel(name)` standalone.
 */
export class Channel {
  readonly name: string;
  /** @internal What it was created with (over its registry's defaults). */
  readonly options: ChannelOptions;
  /** @internal Its registry's weak reference to it, made the first time it was left empty. */
  weakRef: WeakRef<Channel> | undefined;
  readonly #settings: ChannelSettings;
  readonly #log: LogOptions;
  readonly #hooks: ChannelHooks;
  readonly #adapter: Adapter;
  /** Connections live here without a filter: the hot path, with no object of their own. */
  readonly #live = new Set<SseStream>();
  /** Every other connection (with a filter, or still catching up), with its Subscription. */
  readonly #subscriptions = new Map<SseStream, Subscription>();
  readonly #onEntry = (entry: LogEntry): void => this.#receive(entry);
  /** Broadcasts from here waiting for their own entry to be fanned out: origin → resolve(count). */
  readonly #waiting = new Map<string, (delivered: number) => void>();
  /** The adapter's subscription, while there are subscribers. */
  #delivery: Promise<void> | undefined;
  /**
   * Settles once the channel knows its position after delivery started: first connections wait
   * for it instead of each reading the log's head (a thousand at once on a cold channel).
   */
  #positioned: { promise: Promise<Position | undefined>; resolve: (position: Position | undefined) => void } | undefined;
  #position: Position | undefined;
  /** Who published the entry at #position, when the channel fanned it out itself. */
  #positionOrigin: string | undefined;
  #token: string | undefined;
  /**
   * Log reads in flight for connections, by where the channel was and what they read after: a
   * reconnect storm (10 000 clients back from one restarted instance, all at the same id) makes
   * one read, not 10 000.
   */
  readonly #reads = new Map<string, Promise<ReadResult>>();
  /** Entries that arrived while the channel reads its log; undefined when not reading. */
  #backlog: LogEntry[] | undefined;
  #closed = false;
  #events = 0;
  #bytes = 0;
  #dropped = 0;
  #replays = 0;
  #resets = 0;

  constructor(name: string, options?: ChannelOptions, hooks?: ChannelHooks) {
    this.name = validateChannelName(name);
    this.#settings = resolveChannelOptions(options);
    this.options = options ?? {};
    this.#log = { history: this.#settings.history, ttl: this.#settings.historyTtl };
    this.#hooks = hooks ?? standaloneHooks();
    this.#adapter = this.#hooks.adapter;
  }

  /** Number of connections subscribed here. */
  get size(): number {
    return this.#live.size + this.#subscriptions.size;
  }

  /** True when the channel keeps history. */
  get hasHistory(): boolean {
    return this.#settings.history > 0;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** @internal */
  get position(): Position | undefined {
    return this.#position;
  }

  /** @internal */
  get maxBufferedBytes(): number {
    return this.#settings.maxBufferedBytes;
  }

  /** @internal */
  get authorize(): Authorize | undefined {
    return this.#hooks.authorize;
  }

  /** @internal */
  get authorizeTimeout(): number {
    return this.#hooks.authorizeTimeout;
  }

  /**
   * The id a client that has every event of this channel would send: the newest position in its
   * log, read from the adapter (so the same on every process). `undefined` without history.
   */
  async head(): Promise<string | undefined> {
    if (!this.hasHistory) return undefined;
    return formatPosition((await this.#adapter.read(this.name, undefined, this.#log)).head);
  }

  /**
   * Sends an event to every subscriber (on every process, with a shared adapter). The data is
   * serialized and the frame built once, then shared. Resolves with the event's id and the
   * number of connections of this process it was queued for (`{ id: undefined, delivered: 0 }`
   * once the channel is closed). Rejects with a `TypeError` for an invalid event name, id or data
   * (and sends nothing), with an `SseError` when the adapter cannot publish.
   */
  broadcast(data: unknown, options: BroadcastOptions = {}): Promise<BroadcastResult> {
    const traced = diagnostics.broadcast;
    if (!(traced.start.hasSubscribers || traced.asyncEnd.hasSubscribers || traced.error.hasSubscribers)) return this.#broadcast(data, options);
    const context: diagnostics.BroadcastContext = { channel: this.name, event: (options as BroadcastOptions | null)?.event };
    return traced.tracePromise(() => this.#broadcast(data, options), context);
  }

  async #broadcast(data: unknown, options: BroadcastOptions): Promise<BroadcastResult> {
    const { event, id } = options;
    const text = serializeData(data, this.#settings.serialize);
    if (event !== undefined) validateEvent(event);
    let customId: string | undefined;
    if (id !== undefined) {
      customId = validateId(id);
      if (this.hasHistory) {
        throw fieldError('ERR_SSE_INVALID_ID', 'id', 'omitted on a channel with history (the id is the position in its log)', id);
      }
    }
    // After close() there is nobody left to deliver to. Resolving rather than rejecting keeps a
    // fire-and-forget broadcast racing a shutdown from becoming an unhandled rejection.
    if (this.#closed) return { id: undefined, delivered: 0 };
    const kind = kindOf(data, this.#settings.serialize);
    // Every event says who published it (so a reader can tell two events at one offset apart);
    // only a channel with subscribers here waits for its own to come back.
    const origin = this.#hooks.nextOrigin();
    const waits = this.size > 0;
    let delivered: Promise<number> | number = 0;
    if (waits) delivered = new Promise<number>((resolve) => this.#waiting.set(origin, resolve));
    let position: Position | undefined;
    try {
      position = await this.#adapter.publish(this.name, { event, text, kind, id: customId, data, origin }, this.#log);
    } catch (error) {
      this.#waiting.delete(origin);
      this.#hooks.counters.adapterErrors += 1;
      throw error;
    }
    this.#events += 1;
    this.#hooks.counters.events += 1;
    if (waits && this.#waiting.has(origin)) delivered = this.#awaitDelivery(origin, delivered as Promise<number>);
    return { id: position === undefined ? customId : formatPosition(position), delivered: await delivered };
  }

  // The in-memory adapter delivers within publish(); a remote one a little later. Bounded: a
  // subscriber may leave meanwhile, and the entry may arrive through a catch-up read instead.
  #awaitDelivery(origin: string, delivered: Promise<number>): Promise<number> {
    const timer = setTimeout(() => {
      const resolve = this.#waiting.get(origin);
      if (resolve === undefined) return;
      this.#waiting.delete(origin);
      debug('broadcast on "%s" not delivered here within %d ms', this.name, DELIVERY_TIMEOUT_MS);
      resolve(0);
    }, DELIVERY_TIMEOUT_MS);
    timer.unref();
    return delivered.finally(() => clearTimeout(timer));
  }

  /**
   * Adds a connection (an Express response that went through `sse()`, or its `res.sse`). It is
   * removed automatically when it closes. With history, a client that sent `Last-Event-ID` first
   * gets what it missed, then live events, with no gap and no duplicate. Subscribing a connection
   * twice is harmless. Returns a function that unsubscribes.
   */
  subscribe(target: StreamTarget, options: SubscribeOptions = {}): () => void {
    const stream = streamOf(target);
    return subscribe([this], stream, options, (feed) => (feed as Channel).#remove(stream));
  }

  /**
   * @internal Subscribes through the registry (several channels on one connection); `from`, a
   * position to start at instead of the client's Last-Event-ID.
   */
  static subscribeAll(channels: readonly Channel[], stream: SseStream, options: SubscribeOptions = {}, from?: ClientPosition): () => void {
    return subscribe(channels, stream, options, (feed) => (feed as Channel).#remove(stream), from);
  }

  // ——— Feed (what subscriptions use) ———

  /** @internal */
  report(error: Error): void {
    this.#hooks.onError(error);
  }

  /** @internal */
  has(stream: SseStream): boolean {
    return this.#live.has(stream) || this.#subscriptions.has(stream);
  }

  /** @internal */
  isCurrent(subscription: Subscription): boolean {
    return this.#subscriptions.get(subscription.stream) === subscription;
  }

  /** @internal */
  add(stream: SseStream, subscription: Subscription | undefined): void {
    stream.onClose(this);
    if (this.hasHistory) stream.addPositionSource(this);
    if (subscription === undefined) this.#live.add(stream);
    else this.#subscriptions.set(stream, subscription);
    if (this.#delivery === undefined) this.#startDelivery();
    this.#hooks.onJoin(this);
  }

  /** @internal */
  settle(subscription: Subscription): void {
    if (subscription.filter !== undefined || !this.isCurrent(subscription)) return;
    this.#subscriptions.delete(subscription.stream);
    this.#live.add(subscription.stream);
  }

  /** @internal */
  async read(after: readonly Position[] | undefined): Promise<ReadResult> {
    await this.#delivery;
    if (after === undefined) {
      // A first connection starts where the channel was when it learned its position: it gets
      // everything the channel fans out after that, with no read of its own.
      const position = (await this.#positioned?.promise) ?? this.#position;
      if (position !== undefined) return { head: position, matched: -1, evicted: false, events: [] };
    }
    // A read in flight answers for this one only if the channel fanned out nothing since it
    // started: whatever it misses then still reaches this connection live, as it would have
    // reached the first. (The result is shared and never modified.)
    const key = `${this.#token ?? ''}|${after === undefined ? '' : after.map(formatPosition).join(',')}`;
    const pending = this.#reads.get(key);
    if (pending !== undefined) return pending;
    const read = this.#adapter.read(this.name, after, this.#log);
    this.#reads.set(key, read);
    const forget = (): void => {
      if (this.#reads.get(key) === read) this.#reads.delete(key);
    };
    read.then(forget, forget);
    return read;
  }

  /** @internal */
  deliver(subscription: Subscription, entry: LogEntry): boolean {
    if (subscription.filter !== undefined && !this.#passes(subscription, entry)) return false;
    if (this.#enqueue(subscription.stream, frameOf(entry)) === 0) return false;
    this.#hooks.counters.deliveries += 1;
    return true;
  }

  /** @internal */
  reset(stream: SseStream, reason: ResetReason): void {
    this.#resets += 1;
    this.#hooks.counters.resets[reason] += 1;
    const frame = formatEvent(JSON.stringify({ channel: this.name, lastEventId: stream.lastEventId ?? null, reason }), { event: RESET_EVENT });
    stream.enqueue(frame);
    if (diagnostics.reset.hasSubscribers) diagnostics.reset.publish({ channel: this.name, stream, reason });
  }

  /** @internal */
  countReplay(): void {
    this.#replays += 1;
    this.#hooks.counters.replays += 1;
  }

  /** @internal Where `stream` is in this channel, on the wire. */
  tokenFor(connection: Connection): string | undefined {
    const stream = connection as SseStream;
    if (this.#live.has(stream)) return this.#token;
    const subscription = this.#subscriptions.get(stream);
    if (subscription === undefined) return undefined;
    return subscription.live ? this.#token : subscription.token;
  }

  // ——— delivery ———

  // The first subscriber here: subscribe with the adapter (confirmed before any log is read),
  // then learn the log's head, which is where first connections start.
  #startDelivery(): void {
    const delivery = this.#adapter.subscribe(this.name, this.#onEntry);
    this.#delivery = delivery;
    let resolve: (position: Position | undefined) => void = () => undefined;
    const promise = new Promise<Position | undefined>((done) => (resolve = done));
    this.#positioned = { promise, resolve };
    this.#backlog = [];
    delivery.then(
      () => {
        if (this.#delivery === delivery) this.#catchUp(delivery);
      },
      (cause: unknown) => {
        if (this.#delivery !== delivery) return;
        this.#hooks.counters.adapterErrors += 1;
        this.#hooks.onError(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not subscribe to "${this.name}"; its connections were closed so they retry`, { cause }));
        this.#giveUp();
      },
    );
  }

  #stopDelivery(): void {
    this.#delivery = undefined;
    // Reads in flight are shared within one delivery only: one from before it stopped may miss
    // what is published while nobody here listens.
    this.#reads.clear();
    this.#positioned?.resolve(undefined);
    this.#positioned = undefined;
    this.#position = undefined;
    this.#positionOrigin = undefined;
    this.#token = undefined;
    this.#backlog = undefined;
    this.#adapter.unsubscribe(this.name);
    // Broadcasts in flight will not come back here: nobody is left to deliver them to.
    this.#settleWaiters();
  }

  #settleWaiters(): void {
    for (const resolve of this.#waiting.values()) resolve(0);
    this.#waiting.clear();
  }

  /** @internal The adapter lost messages and is back: read what was missed. */
  resync(): void {
    if (this.#delivery === undefined) return;
    if (!this.hasHistory) {
      // No log to recover from: tell every connection it may have missed events.
      for (const stream of this.streams()) this.reset(stream, 'lost');
      return;
    }
    if (this.#backlog === undefined) {
      this.#backlog = [];
      this.#catchUp(this.#delivery);
    }
  }

  #receive(entry: LogEntry): void {
    if (this.#delivery === undefined) {
      // Arrived after the last subscriber left (a message in flight from a remote adapter).
      this.#resolveWaiter(entry, 0);
      return;
    }
    if (entry.offset === 0) {
      this.#fanOut(entry);
      return;
    }
    if (this.#backlog !== undefined) {
      this.#backlog.push(entry);
      return;
    }
    const position = this.#position!;
    if (entry.epoch === position.epoch) {
      // Another event where this channel's last one was: the log went back in time (see #wentBack).
      const replaced = entry.offset === position.offset && entry.origin !== undefined && this.#positionOrigin !== undefined && entry.origin !== this.#positionOrigin;
      if (entry.offset <= position.offset && !replaced) {
        this.#resolveWaiter(entry, 0);
        return;
      }
      if (entry.offset === position.offset + 1) {
        this.#fanOut(entry);
        return;
      }
    }
    // A gap (or a new epoch): read what is missing first.
    debug('channel "%s" missed entries before %d.%s; reading its log', this.name, entry.offset, entry.epoch);
    this.#backlog = [entry];
    this.#catchUp(this.#delivery);
  }

  // Reads the log after the channel's position and fans out what is missing, then what arrived
  // meanwhile; again while something is still missing. Retries a failing read a few times, then
  // closes every connection here so that clients reconnect and replay from their own position.
  #catchUp(delivery: Promise<void>, attempt = 1, renewed = false): void {
    const position = this.#position;
    // Entries that arrived before this read: one of another epoch than the log's is stale.
    const before = this.#backlog?.length ?? 0;
    this.#adapter.read(this.name, position === undefined ? undefined : [position], this.#log).then(
      (result) => {
        if (this.#delivery !== delivery) return;
        if (position !== undefined && !renewed && this.#adapter.renew !== undefined && this.#wentBack(position, result)) {
          // Once per catch-up: if it still looks so afterwards, the events are reported lost below.
          this.#adapter.renew(this.name, position, this.#positionOrigin).then(
            () => {
              if (this.#delivery === delivery) this.#catchUp(delivery, attempt, true);
            },
            (cause: unknown) => this.#retry(delivery, attempt, cause),
          );
          return;
        }
        this.#apply(result);
        const backlog = this.#backlog ?? [];
        for (let i = 0; i < backlog.length; i += 1) {
          const entry = backlog[i]!;
          const current = this.#position!;
          if ((entry.epoch === current.epoch && entry.offset <= current.offset) || (entry.epoch !== current.epoch && i < before)) {
            this.#resolveWaiter(entry, 0);
            continue;
          }
          if (entry.epoch === current.epoch && entry.offset === current.offset + 1) {
            this.#fanOut(entry);
            continue;
          }
          this.#backlog = backlog.slice(i);
          this.#catchUp(delivery);
          return;
        }
        this.#backlog = undefined;
      },
      (cause: unknown) => this.#retry(delivery, attempt, cause),
    );
  }

  #retry(delivery: Promise<void>, attempt: number, cause: unknown): void {
    if (this.#delivery !== delivery) return;
    if (attempt < SYNC_ATTEMPTS) {
      setTimeout(() => {
        if (this.#delivery === delivery) this.#catchUp(delivery, attempt + 1);
      }, SYNC_RETRY_MS * attempt).unref();
      return;
    }
    this.#hooks.counters.adapterErrors += 1;
    this.#hooks.onError(
      new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not read the log of "${this.name}" to catch up; its connections were closed so they reconnect and replay`, { cause }),
    );
    this.#giveUp();
  }

  // The log no longer holds the event this channel last fanned out: in the same epoch, it is now
  // behind it, or another event sits at its offset. Only a Redis restored from an older snapshot
  // does that; the evidence is this process's own, never a client's (which could be forged).
  #wentBack(position: Position, result: ReadResult): boolean {
    if (result.head.epoch !== position.epoch) return false;
    if (result.matched === -1) return true;
    const origin = this.#positionOrigin;
    return origin !== undefined && result.matchedOrigin !== undefined && result.matchedOrigin !== origin;
  }

  // A read of the log after the channel's position: fan out what it returned.
  #apply(result: ReadResult): void {
    if (this.#position === undefined) {
      this.#setPosition(result.head);
      return;
    }
    if (result.matched === -1 || result.evicted) {
      // The log no longer continues from here (it was lost, or trimmed past us while we were away).
      const reason: ResetReason = result.evicted ? 'evicted' : 'lost';
      debug('channel "%s" lost its place in the log (%s); resetting its connections', this.name, reason);
      for (const stream of this.#live) this.reset(stream, reason);
      for (const subscription of this.#subscriptions.values()) if (subscription.live) this.reset(subscription.stream, reason);
    }
    for (const entry of result.events) this.#fanOut(entry);
    if (result.events.length === 0) this.#setPosition(result.head);
  }

  #setPosition(position: Position): void {
    this.#position = { epoch: position.epoch, offset: position.offset };
    this.#positionOrigin = undefined;
    this.#token = formatPosition(position);
    // Only the first position after delivery started counts (a promise settles once).
    this.#positioned?.resolve(this.#position);
  }

  #fanOut(entry: LogEntry): void {
    const positioned = entry.offset > 0;
    if (positioned) {
      this.#position = entry;
      this.#positionOrigin = entry.origin;
      this.#token = formatPosition(entry);
    }
    const frame = frameOf(entry);
    const { bytes } = frame;
    let count = 0;
    let sent = 0;
    // The hot path: one shared string for every connection in this channel only (with history, a
    // connection in several gets its own id; see #enqueue).
    for (const stream of this.#live) {
      if (positioned && stream.positionSources > 1) {
        if (this.#enqueue(stream, frame) > 0) count += 1;
      } else if (stream.enqueueShared(frame)) {
        count += 1;
        sent += bytes;
      }
    }
    this.#bytes += sent;
    this.#hooks.counters.bytes += sent;
    for (const subscription of this.#subscriptions.values()) {
      if (!subscription.live) subscription.receive(this, entry);
      else if (subscription.filter === undefined || this.#passes(subscription, entry)) {
        if (this.#enqueue(subscription.stream, frame) > 0) count += 1;
      }
    }
    this.#hooks.counters.deliveries += count;
    this.#resolveWaiter(entry, count);
  }


  // Queues `frame` for one connection; returns the bytes queued (0 when it is closed). A
  // connection in several channels with history carries its position in each of them.
  #enqueue(stream: SseStream, frame: Frame): number {
    if (!frame.positioned || stream.positionSources <= 1) {
      if (!stream.enqueueShared(frame)) return 0;
      this.#bytes += frame.bytes;
      this.#hooks.counters.bytes += frame.bytes;
      return frame.bytes;
    }
    const text = frameWithId(frame, stream.positionId()!);
    const bytes = Buffer.byteLength(text);
    if (!stream.enqueue(text, bytes)) return 0;
    this.#bytes += bytes;
    this.#hooks.counters.bytes += bytes;
    return bytes;
  }


  #resolveWaiter(entry: LogEntry, count: number): void {
    if (entry.origin === undefined || this.#waiting.size === 0) return;
    const resolve = this.#waiting.get(entry.origin);
    if (resolve === undefined) return;
    this.#waiting.delete(entry.origin);
    resolve(count);
  }

  #passes(subscription: Subscription, entry: LogEntry): boolean {
    // `data` is parsed only if the filter reads it (many look at the event name alone).
    let data: unknown = UNREAD;
    const view: ChannelEvent = {
      channel: this.name,
      get data(): unknown {
        if (data === UNREAD) data = dataOf(entry);
        return data;
      },
      event: entry.event,
      id: entry.offset > 0 ? formatPosition(entry) : entry.id,
    };
    try {
      return subscription.filter!(view) === true;
    } catch (cause) {
      this.#hooks.onError(
        new SseError('ERR_SSE_FILTER_FAILED', `a subscriber filter on channel "${this.name}" threw; the event was not sent to it`, { cause }),
      );
      return false;
    }
  }

  // Delivery cannot be restored: close every connection so clients reconnect and replay.
  #giveUp(): void {
    const streams = [...this.streams()];
    for (const stream of streams) stream.close();
  }

  /**
   * The channel is the close hook of every connection subscribed to it: told which one closed.
   * @internal
   */
  connectionClosed(connection: Connection): void {
    this.#remove(connection as SseStream);
  }

  #remove(stream: SseStream): void {
    if (!this.#live.delete(stream) && !this.#subscriptions.delete(stream)) return;
    stream.offClose(this);
    if (this.hasHistory) stream.removePositionSource(this);
    if (this.size === 0) this.#stopDelivery();
    const dropped = stream.dropped;
    if (dropped) this.#dropped += 1;
    // A connection in several channels was dropped once.
    const reason = stream.countDrop();
    if (reason !== undefined) this.#hooks.counters.dropped[reason] += 1;
    this.#hooks.onLeave(this, stream, dropped);
  }

  /** Counters for metrics. */
  stats(): ChannelStats {
    return {
      subscribers: this.size,
      events: this.#events,
      bytes: this.#bytes,
      dropped: this.#dropped,
      replays: this.#replays,
      resets: this.#resets,
    };
  }

  /** @internal The connections subscribed here. */
  *streams(): IterableIterator<SseStream> {
    yield* this.#live;
    yield* this.#subscriptions.keys();
  }

  /** @internal Refuses further broadcasts and subscriptions. */
  markClosed(): void {
    this.#closed = true;
    this.#settleWaiters();
  }
}
