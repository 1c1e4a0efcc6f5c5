// A channel as users see it: a name, broadcast(), subscribe(), head() and stats(). It serializes
// a broadcast once and hands it to the adapter; its fan-out (fan-out.ts) delivers what comes back,
// from its own broadcasts or anyone else's, to the connections subscribed here.
import { MemoryAdapter } from '../adapters/memory';
import { debug } from '../common/debug';
import * as diagnostics from '../common/diagnostics';
import { SseError, fieldError, warn } from '../common/errors';
import { kindOf } from '../log/entry';
import { formatPosition, type ClientPosition, type Position } from '../log/position';
import { serializeData, validateEvent, validateId } from '../stream/serializer';
import { SseStream, streamBehind, type StreamTarget } from '../stream/sse-stream';
import type { Stream } from '../stream/stream';
import { newCounters } from './counters';
import { Fanout, type ChannelHooks, type ChannelStats } from './fan-out';
import { resolveChannelOptions, validateChannelName, type ChannelOptions, type ChannelSettings } from './options';
import { subscribe, type SubscribeOptions } from './subscription';

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

/** The stream of an Express response (after `sse()`), or of its `res.sse`. */
export function streamOf(target: StreamTarget): Stream {
  // The event map is a compile-time matter only: any stream is one.
  const face: unknown = target instanceof SseStream ? target : (target as { sse?: unknown } | null)?.sse;
  if (face instanceof SseStream) return streamBehind(face as SseStream<object>);
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

/** Milliseconds a broadcast waits for its own event to be fanned out here. */
const DELIVERY_TIMEOUT_MS = 5000;

/** A channel's fan-out: how the registry and runs reach its connections (not part of the public API). */
export let fanoutOf: (channel: Channel) => Fanout;

/** The hooks the next `new Channel()` takes (set by createChannel only, for one constructor call). */
let nextHooks: ChannelHooks | undefined;

/** A channel tied to its registry's adapter and counters: how a registry makes its channels. */
export function createChannel(name: string, options: ChannelOptions, hooks: ChannelHooks): Channel {
  nextHooks = hooks;
  try {
    return new Channel(name, options);
  } finally {
    nextHooks = undefined;
  }
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
  readonly #fanout: Fanout;
  constructor(name: string, options?: ChannelOptions) {
    const hooks = nextHooks;
    nextHooks = undefined;
    this.name = validateChannelName(name);
    this.#settings = resolveChannelOptions(options);
    this.#hooks = hooks ?? standaloneHooks();
    this.#fanout = new Fanout(this.name, options ?? {}, this.#settings, this.#hooks);
  }

  static {
    fanoutOf = (channel) => channel.#fanout;
  }

  /** Number of connections subscribed here. */
  get size(): number {
    return this.#fanout.size;
  }

  /** True when the channel keeps history. */
  get hasHistory(): boolean {
    return this.#settings.history > 0;
  }

  /** True after its registry's `close()`. */
  get closed(): boolean {
    return this.#fanout.closed;
  }

  /**
   * The id a client that has every event of this channel would send: the newest position in its
   * log, read from the adapter (so the same on every process). `undefined` without history.
   */
  async head(): Promise<string | undefined> {
    if (!this.hasHistory) return undefined;
    return formatPosition((await this.#hooks.adapter.read(this.name, undefined, this.#fanout.log)).head);
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
    const fanout = this.#fanout;
    if (fanout.closed) return { id: undefined, delivered: 0 };
    const kind = kindOf(data, this.#settings.serialize);
    // Every event says who published it (so a reader can tell two events at one offset apart);
    // only a channel with subscribers here waits for its own to come back.
    const origin = this.#hooks.nextOrigin();
    const waits = fanout.size > 0;
    let delivered: Promise<number> | number = 0;
    if (waits) delivered = fanout.expect(origin);
    let position: Position | undefined;
    try {
      position = await this.#hooks.adapter.publish(this.name, { event, text, kind, id: customId, data, origin }, fanout.log);
    } catch (error) {
      fanout.forget(origin);
      fanout.countAdapterError();
      throw error;
    }
    fanout.countEvent();
    if (waits && fanout.waitsFor(origin)) delivered = this.#awaitDelivery(origin, delivered as Promise<number>);
    return { id: position === undefined ? customId : formatPosition(position), delivered: await delivered };
  }

  // The in-memory adapter delivers within publish(); a remote one a little later. Bounded: a
  // subscriber may leave meanwhile, and the entry may arrive through a catch-up read instead.
  #awaitDelivery(origin: string, delivered: Promise<number>): Promise<number> {
    const timer = setTimeout(() => {
      if (!this.#fanout.waitsFor(origin)) return;
      debug('broadcast on "%s" not delivered here within %d ms', this.name, DELIVERY_TIMEOUT_MS);
      this.#fanout.forget(origin);
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
    return subscribeAll([this], streamOf(target), options);
  }

  /** Counters for metrics. */
  stats(): ChannelStats {
    return this.#fanout.stats();
  }
}


/**
 * Subscribes one connection to channels (several on one connection through the registry); `from`,
 * a position to start at instead of the client's Last-Event-ID.
 */
export function subscribeAll(channels: readonly Channel[], stream: Stream, options: SubscribeOptions = {}, from?: ClientPosition): () => void {
  return subscribe(
    channels.map((channel) => fanoutOf(channel)),
    stream,
    options,
    (feed) => (feed as Fanout).remove(stream),
    from,
  );
}
