import type { Request, Response } from 'express';
import { SseError, fieldError, warn } from './errors';
import { dataOf, wireIdOf, type Adapter, type AdapterEvent, type DataKind, type ResetReason } from './adapters/adapter';
import { MemoryAdapter } from './adapters/memory';
import { checkOptionNames, checkOptionsObject } from './options';
import { formatEvent, serializeData, validateEvent, validateId, type Serializer } from './serializer';
import type { Connection } from './connection';
import { debug } from './debug';
import { SseStream } from './stream';

/** Options of a channel. Read once when the channel is created. */
export interface ChannelOptions {
  /**
   * How many past events to keep for `Last-Event-ID` replay. Every event then gets an id.
   * `false` or `0` keeps none.
   * @default false
   */
  readonly history?: number | false;
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

/** What a subscriber's filter sees of an event. */
export interface ChannelEvent {
  readonly channel: string;
  readonly data: unknown;
  readonly event: string | undefined;
  readonly id: string | undefined;
}

/** Options of `channel.subscribe()`. */
export interface SubscribeOptions {
  /** Delivers only the events for which it returns true. A filter that throws delivers nothing. */
  readonly filter?: (event: ChannelEvent) => boolean;
  /**
   * Replays history after the client's `Last-Event-ID` (or `lastEventId` query parameter).
   * @default true
   */
  readonly replay?: boolean;
}

/** Per-call fields of `channel.broadcast()`. */
export interface BroadcastOptions {
  /** Event name; omitted: `message`. */
  readonly event?: string;
  /** Event id; with history on, one is assigned when omitted. */
  readonly id?: string | number;
}

/** Counters of one channel, for metrics. */
export interface ChannelStats {
  readonly subscribers: number;
  /** Events broadcast. */
  readonly events: number;
  /** Bytes handed to connections (frame size × recipients), replays included. */
  readonly bytes: number;
  /** Connections dropped by the slow-client policy while subscribed here. */
  readonly dropped: number;
  /** Subscriptions that replayed history. */
  readonly replays: number;
  /** Replays that started with a `reset` event. */
  readonly resets: number;
}

/** The reconnecting client's id was unknown or too old: it gets this event, then what history remains. */
export const RESET_EVENT = 'reset';

export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;

/** What a registry gives its channels. */
export interface ChannelHooks {
  readonly adapter: Adapter;
  onError(error: Error): void;
  /** A connection joined the channel. */
  onJoin(channel: Channel, stream: SseStream): void;
  /** A connection left; `dropped` when the slow-client policy disconnected it. */
  onLeave(channel: Channel, stream: SseStream, dropped: boolean): void;
  /** The registry's authorize option. */
  readonly authorize?: Authorize;
}

/**
 * Decides whether the request may subscribe to a channel: `true` allows; `false`, any other value,
 * a rejected promise or a throw refuses. May return a promise (a database lookup).
 */
export type Authorize = (req: Request, channel: string) => boolean | Promise<boolean>;

function isThenable(value: unknown): boolean {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

// What a channel keeps per connection. A plain subscriber is just the connection itself: no object of its own. One with a filter, or one whose history replay is still
// running, gets this wrapper. The channel itself is the close hook of its streams, so there is no
// closure per subscriber either: idle connections are mostly their per-connection objects.
class Subscriber {
  readonly stream: SseStream;
  readonly filter: ((event: ChannelEvent) => boolean) | undefined;
  /** Live events that arrived while history was being read; undefined once live. */
  held: AdapterEvent[] | undefined;

  constructor(stream: SseStream, filter: Subscriber['filter'], held: AdapterEvent[] | undefined) {
    this.stream = stream;
    this.filter = filter;
    this.held = held;
  }
}

type Entry = SseStream | Subscriber;

function streamOfEntry(entry: Entry): SseStream {
  return entry instanceof Subscriber ? entry.stream : entry;
}

interface ChannelSettings {
  readonly history: number;
  readonly maxBufferedBytes: number;
  readonly serialize: Serializer;
}

interface Frame {
  readonly text: string;
  readonly bytes: number;
}

// One frame per event and process, whoever receives it: stored events keep theirs for replays.
const frames = new WeakMap<AdapterEvent, Frame>();

function frameOf(event: AdapterEvent): Frame {
  let frame = frames.get(event);
  if (frame === undefined) {
    const text = formatEvent(event.text, { event: event.event, id: wireIdOf(event) });
    frame = { text, bytes: Buffer.byteLength(text) };
    frames.set(event, frame);
  }
  return frame;
}

const KNOWN_OPTIONS = new Set(['history', 'maxBufferedBytes', 'serialize']);
const KNOWN_SUBSCRIBE_OPTIONS = new Set(['filter', 'replay']);

export function resolveChannelOptions(options: ChannelOptions = {}, what = 'channel'): ChannelSettings {
  checkOptionsObject(options, what);
  checkOptionNames(options, KNOWN_OPTIONS, what);
  const { history = false, maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES, serialize = JSON.stringify } = options;
  if (history !== false && !(Number.isSafeInteger(history) && history >= 0)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'history', 'false or a non-negative integer (events)', history);
  }
  if (maxBufferedBytes !== false && !(Number.isSafeInteger(maxBufferedBytes) && maxBufferedBytes > 0)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'maxBufferedBytes', 'false or a positive integer (bytes)', maxBufferedBytes);
  }
  if (typeof serialize !== 'function') throw fieldError('ERR_SSE_INVALID_OPTION', 'serialize', 'a function', serialize);
  return {
    history: history === false ? 0 : history,
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
export function streamOf(target: Response | SseStream): SseStream {
  if (target instanceof SseStream) return target;
  const stream: unknown = (target as Partial<Response> | null)?.sse;
  if (stream instanceof SseStream) return stream as SseStream;
  throw new SseError('ERR_SSE_NO_STREAM', 'subscribe() needs a response that went through the sse() middleware (res.sse is missing)');
}

function noop(): void {}

function standaloneHooks(): ChannelHooks {
  return {
    adapter: new MemoryAdapter(),
    onError: warn,
    onJoin: () => undefined,
    onLeave: () => undefined,
  };
}

/**
 * A named group of subscribers. `broadcast()` serializes an event once and queues the same
 * frame for every subscriber; frames broadcast in one event-loop turn reach each connection in
 * one write. Create channels with `registry.channel(name)`, or `new Channel(name)` standalone.
 */
export class Channel {
  readonly name: string;
  readonly #settings: ChannelSettings;
  readonly #hooks: ChannelHooks;
  readonly #adapter: Adapter;
  readonly #subscribers = new Map<SseStream, Entry>();
  readonly #deliver = (event: AdapterEvent): number => this.#deliverEvent(event);
  #closed = false;
  #lastEventId: string | undefined;
  #events = 0;
  #bytes = 0;
  #dropped = 0;
  #replays = 0;
  #resets = 0;

  constructor(name: string, options?: ChannelOptions, hooks?: ChannelHooks) {
    this.name = validateChannelName(name);
    this.#settings = resolveChannelOptions(options);
    this.#hooks = hooks ?? standaloneHooks();
    this.#adapter = this.#hooks.adapter;
  }

  /** Number of connections subscribed here. */
  get size(): number {
    return this.#subscribers.size;
  }

  /** True when the channel keeps history. */
  get hasHistory(): boolean {
    return this.#settings.history > 0;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The id of the newest event broadcast here (`undefined` before the first, or without ids). */
  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  /**
   * Sends an event to every subscriber (on every process, with a shared adapter). The data is
   * serialized and the frame built once, then shared. Resolves with the number of local
   * subscribers it was queued for (0 once the channel is closed). Rejects with a `TypeError` for
   * an invalid event name, id or data, and then sends nothing; with an `SseError` when the
   * adapter cannot publish.
   */
  async broadcast(data: unknown, options: BroadcastOptions = {}): Promise<number> {
    const { event, id } = options;
    const text = serializeData(data, this.#settings.serialize);
    if (event !== undefined) validateEvent(event);
    const chosenId = id === undefined ? undefined : validateId(id);
    // After close() there is nobody left to deliver to. Resolving 0 rather than rejecting keeps
    // a fire-and-forget broadcast racing a shutdown from becoming an unhandled rejection.
    if (this.#closed) return 0;
    const kind: DataKind = typeof data === 'string' ? 'text' : this.#settings.serialize === JSON.stringify ? 'json' : 'other';
    const result = await this.#adapter.publish(this.name, { event, text, kind, id: chosenId, data }, this.#settings.history);
    this.#events += 1;
    // The newest event's id, even when it has none: a stale one would misstate where the channel is.
    this.#lastEventId = result.id;
    return result.delivered;
  }

  #deliverEvent(event: AdapterEvent): number {
    let count = 0;
    let view: ChannelEvent | undefined;
    const frame = frameOf(event);
    for (const entry of this.#subscribers.values()) {
      let stream: SseStream;
      if (!(entry instanceof Subscriber)) stream = entry;
      else {
        if (entry.held !== undefined) {
          entry.held.push(event);
          count += 1;
          continue;
        }
        if (entry.filter !== undefined) {
          view ??= this.#view(event);
          if (!this.#passes(entry, view)) continue;
        }
        stream = entry.stream;
      }
      if (stream.enqueue(frame.text, frame.bytes)) {
        count += 1;
        this.#bytes += frame.bytes;
      }
    }
    return count;
  }

  #view(event: AdapterEvent): ChannelEvent {
    return { channel: this.name, data: dataOf(event), event: event.event, id: wireIdOf(event) };
  }

  #passes(subscriber: Subscriber, view: ChannelEvent): boolean {
    try {
      return subscriber.filter!(view) === true;
    } catch (cause) {
      this.#hooks.onError(
        new SseError('ERR_SSE_FILTER_FAILED', `a subscriber filter on channel "${this.name}" threw; the event was not sent to it`, { cause }),
      );
      return false;
    }
  }

  /**
   * Adds a connection (an Express response that went through `sse()`, or its `res.sse`). It is
   * removed automatically when it closes. If the client sent `Last-Event-ID` and the channel
   * keeps history, the newer events are replayed first, then live events follow with no gap and
   * no duplicate. Subscribing a connection twice is harmless. Returns a function that unsubscribes.
   */
  subscribe(target: Response | SseStream, options: SubscribeOptions = {}): () => void {
    return Channel.subscribeAll([this], streamOf(target), options);
  }

  /**
   * Subscribes one stream to several channels, replaying their histories merged in id order.
   * @internal
   */
  static subscribeAll(channels: readonly Channel[], stream: SseStream, options: SubscribeOptions = {}): () => void {
    checkOptionsObject(options, 'subscribe()');
    checkOptionNames(options, KNOWN_SUBSCRIBE_OPTIONS, 'subscribe()');
    const { filter, replay = true } = options;
    if (filter !== undefined && typeof filter !== 'function') {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'filter', 'a function', filter);
    }
    for (const channel of channels) {
      if (channel.#closed) throw new SseError('ERR_SSE_REGISTRY_CLOSED', `channel "${channel.name}" is closed`);
    }
    if (stream.closed || channels.length === 0) return noop;
    const authorize = channels[0]!.#hooks.authorize;
    if (authorize === undefined) return Channel.#join(channels, stream, filter, replay);
    return Channel.#authorizeThenJoin(authorize, channels, stream, filter, replay);
  }

  // Asks the registry's authorize hook about every channel, before any header goes out.
  // Synchronous answers decide at once; a promise claims the stream (nobody opens it) until it
  // settles. Refused (false, anything but true): 403; a hook that throws or rejects: 500; the
  // registry closed meanwhile: 503. No channel is joined then, and no stream byte is sent.
  static #authorizeThenJoin(
    authorize: Authorize,
    channels: readonly Channel[],
    stream: SseStream,
    filter: Subscriber['filter'],
    replay: boolean,
  ): () => void {
    const req = stream.request as Request;
    const hooks = channels[0]!.#hooks;
    const fail = (cause: unknown): void => {
      hooks.onError(new SseError('ERR_SSE_AUTHORIZE_FAILED', 'the authorize hook threw; the subscription was refused', { cause }));
      stream.refuse(500, 'express-sse-hub: the subscription could not be authorized\n');
    };
    const decide = (verdicts: readonly unknown[]): (() => void) => {
      if (stream.closed) return noop;
      if (channels.some((channel) => channel.#closed)) {
        stream.refuse(503, 'express-sse-hub: the server is shutting down; retry later\n', stream.retryAfter);
        return noop;
      }
      const refused = channels.find((_, i) => verdicts[i] !== true);
      if (refused === undefined) return Channel.#join(channels, stream, filter, replay);
      debug('refused a subscription to "%s" (authorize)', refused.name);
      if (stream.opened) {
        // The stream went out before the hook answered (a route-mounted sse() and a route that
        // awaited before subscribing): the client cannot be told 403 any more.
        hooks.onError(
          new SseError(
            'ERR_SSE_AUTHORIZE_FAILED',
            `subscription to "${refused.name}" refused after the stream was opened, so the client got 200, not 403; subscribe before awaiting, or mount sse() app-wide`,
          ),
        );
      }
      stream.refuse(403, `express-sse-hub: not allowed to subscribe to channel "${refused.name}"\n`);
      return noop;
    };
    let verdicts: unknown[];
    try {
      verdicts = channels.map((channel) => authorize(req, channel.name));
    } catch (cause) {
      fail(cause);
      return noop;
    }
    if (!verdicts.some(isThenable)) return decide(verdicts);
    stream.claim();
    let unsubscribe: (() => void) | undefined;
    let cancelled = false;
    Promise.all(verdicts)
      .then(
        (settled) => {
          if (!cancelled) unsubscribe = decide(settled);
        },
        (cause: unknown) => {
          if (!cancelled) fail(cause);
        },
      )
      .catch((error: unknown) => {
        // open() itself threw (a connectionKey function, a route that answered meanwhile).
        hooks.onError(error instanceof Error ? error : new Error(String(error)));
        stream.refuse(500, 'express-sse-hub: the event stream could not be opened\n');
      });
    return () => {
      cancelled = true;
      unsubscribe?.();
    };
  }

  static #join(channels: readonly Channel[], stream: SseStream, filter: Subscriber['filter'], replay: boolean): () => void {
    stream.open();
    if (stream.closed) return noop; // refused by a connection limit
    const lastEventId = replay ? stream.lastEventId : undefined;
    const joined: Channel[] = [];
    for (const channel of channels) {
      if (channel.#subscribers.has(stream)) continue;
      stream.limitBacklog(channel.#settings.maxBufferedBytes);
      const held = lastEventId !== undefined && channel.hasHistory ? [] : undefined;
      stream.onClose(channel);
      if (channel.#subscribers.size === 0) channel.#adapter.subscribe(channel.name, channel.#deliver);
      channel.#subscribers.set(stream, filter === undefined && held === undefined ? stream : new Subscriber(stream, filter, held));
      joined.push(channel);
      channel.#hooks.onJoin(channel, stream);
    }
    if (lastEventId !== undefined) {
      const replaying = joined.filter((c) => c.#subscriberOf(stream)?.held !== undefined);
      if (replaying.length > 0) void Channel.#replay(replaying, stream, lastEventId);
    }
    if (joined.length === 0) return noop;
    // Only the caller holds this function: unused, it is garbage at once.
    return () => {
      for (const channel of joined) channel.#remove(stream);
    };
  }

  /** The wrapper of a subscriber that has a filter or is replaying; undefined for a plain one. */
  #subscriberOf(stream: SseStream): Subscriber | undefined {
    const entry = this.#subscribers.get(stream);
    return entry instanceof Subscriber ? entry : undefined;
  }

  // Registered first, live events held; then history is read, written, and the held events
  // after it released: no gap, no duplicate, whatever arrives while the read is in flight.
  static async #replay(channels: readonly Channel[], stream: SseStream, lastEventId: string): Promise<void> {
    try {
      const results = await Promise.all(channels.map((c) => c.#adapter.readAfter(c.name, lastEventId, c.#settings.history)));
      const resets: string[] = [];
      const pending: { event: AdapterEvent; channel: Channel; subscriber: Subscriber }[] = [];
      channels.forEach((channel, i) => {
        const result = results[i]!;
        const subscriber = channel.#subscriberOf(stream);
        if (subscriber === undefined) return; // unsubscribed meanwhile
        channel.#replays += 1;
        if (result.reset !== undefined) {
          channel.#resets += 1;
          resets.push(channel.#resetFrame(lastEventId, result.reset));
        }
        let newest = -1;
        for (const event of result.events) {
          pending.push({ event, channel, subscriber });
          newest = Math.max(newest, event.seq);
        }
        // Held live events the read already returned are skipped: no duplicate.
        for (const event of subscriber.held ?? []) if (event.seq > newest) pending.push({ event, channel, subscriber });
        subscriber.held = undefined;
        // Live from now on: without a filter, the stream alone is enough.
        if (subscriber.filter === undefined) channel.#subscribers.set(stream, subscriber.stream);
      });
      // One connection may be in several channels: merge their events in id order, so the
      // client's Last-Event-ID ends on the newest and a later reconnect misses nothing.
      if (channels.length > 1) pending.sort((a, b) => a.event.seq - b.event.seq);
      for (const frame of resets) stream.enqueue(frame);
      for (const { event, channel, subscriber } of pending) {
        if (subscriber.filter !== undefined && !channel.#passes(subscriber, channel.#view(event))) continue;
        const frame = frameOf(event);
        if (stream.enqueue(frame.text, frame.bytes)) channel.#bytes += frame.bytes;
      }
    } catch (cause) {
      const error = new SseError('ERR_SSE_REPLAY_FAILED', 'replaying history failed; the connection was closed so the client retries', { cause });
      channels[0]!.#hooks.onError(error);
      stream.close();
    }
  }

  /**
   * The channel is the close hook of every stream subscribed to it: told which one closed.
   * @internal
   */
  connectionClosed(connection: Connection): void {
    this.#remove(connection as SseStream);
  }

  #resetFrame(lastEventId: string, reason: ResetReason): string {
    return formatEvent(JSON.stringify({ channel: this.name, lastEventId, reason }), { event: RESET_EVENT });
  }

  #remove(stream: SseStream): void {
    const entry = this.#subscribers.get(stream);
    if (entry === undefined) return;
    this.#subscribers.delete(stream);
    stream.offClose(this);
    if (this.#subscribers.size === 0) this.#adapter.unsubscribe(this.name);
    const dropped = streamOfEntry(entry).dropped;
    if (dropped) this.#dropped += 1;
    this.#hooks.onLeave(this, stream, dropped);
  }

  /** Counters for metrics. */
  stats(): ChannelStats {
    return {
      subscribers: this.#subscribers.size,
      events: this.#events,
      bytes: this.#bytes,
      dropped: this.#dropped,
      replays: this.#replays,
      resets: this.#resets,
    };
  }

  /** @internal The streams subscribed here. */
  streams(): IterableIterator<SseStream> {
    return this.#subscribers.keys();
  }

  /** @internal Refuses further broadcasts and subscriptions. */
  markClosed(): void {
    this.#closed = true;
  }
}
