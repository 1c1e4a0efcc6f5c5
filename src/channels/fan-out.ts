// A channel's fan-out: its connections and its place in the log. When entries come back from the
// adapter (its own broadcasts or anyone else's, on any process) it queues the same frame for every
// connection that is live here. With history it keeps one position: the newest entry it fanned
// out. An entry is fanned out only if it is the next one after that position; an older one is a
// duplicate, a newer one means entries were missed (a Pub/Sub message lost, a reconnect), and the
// fan-out reads them from the log first. Connections still catching up have their own cursor
// (see subscription.ts). The public face of a channel is channel.ts.
import type { Adapter, LogOptions } from '../adapters/adapter';
import { debug } from '../common/debug';
import * as diagnostics from '../common/diagnostics';
import { SseError } from '../common/errors';
import { dataOf, type LogEntry, type ReadResult } from '../log/entry';
import { formatPosition, type Position } from '../log/position';
import type { Connection } from '../stream/connection';
import { formatEvent } from '../stream/serializer';
import type { PositionSource, Stream } from '../stream/stream';
import type { Counters } from './counters';
import { frameOf, frameWithId, type Frame } from './frame';
import type { ChannelOptions, ChannelSettings } from './options';
import type { Authorize, ChannelEvent, Feed, ResetReason, Subscription } from './subscription';

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
  onJoin(fanout: Fanout): void;
  /** A connection left; `dropped` when the slow-client policy disconnected it. */
  onLeave(fanout: Fanout, stream: Stream, dropped: boolean): void;
}

const UNREAD = Symbol('unread');

/** How long a channel keeps trying to catch up from its log before it gives its connections up. */
const SYNC_ATTEMPTS = 5;
const SYNC_RETRY_MS = 200;


export class Fanout implements Feed, PositionSource {
  readonly name: string;
  /** What the channel was created with (over its registry's defaults). */
  readonly options: ChannelOptions;
  /** Its registry's weak reference to the channel, made the first time it was left empty. */
  weakRef: WeakRef<object> | undefined;
  readonly #settings: ChannelSettings;
  readonly #log: LogOptions;
  readonly #hooks: ChannelHooks;
  readonly #adapter: Adapter;
  /** Connections live here without a filter: the hot path, with no object of their own. */
  readonly #live = new Set<Stream>();
  /** Every other connection (with a filter, or still catching up), with its Subscription. */
  readonly #subscriptions = new Map<Stream, Subscription>();
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

  constructor(name: string, options: ChannelOptions, settings: ChannelSettings, hooks: ChannelHooks) {
    this.name = name;
    this.options = options;
    this.#settings = settings;
    this.#log = { history: settings.history, ttl: settings.historyTtl };
    this.#hooks = hooks;
    this.#adapter = hooks.adapter;
  }

  get size(): number {
    return this.#live.size + this.#subscriptions.size;
  }

  get hasHistory(): boolean {
    return this.#settings.history > 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get position(): Position | undefined {
    return this.#position;
  }

  get maxBufferedBytes(): number {
    return this.#settings.maxBufferedBytes;
  }

  get authorize(): Authorize | undefined {
    return this.#hooks.authorize;
  }

  get authorizeTimeout(): number {
    return this.#hooks.authorizeTimeout;
  }

  /** How its log is kept. */
  get log(): LogOptions {
    return this.#log;
  }

  /** A broadcast from here with `origin` is under way: resolves with how many it reached here. */
  expect(origin: string): Promise<number> {
    return new Promise<number>((resolve) => this.#waiting.set(origin, resolve));
  }

  /** True while the broadcast with `origin` waits for its entry. */
  waitsFor(origin: string): boolean {
    return this.#waiting.has(origin);
  }

  /** The broadcast with `origin` will not be fanned out here (it failed, or waited too long). */
  forget(origin: string): void {
    const resolve = this.#waiting.get(origin);
    if (resolve === undefined) return;
    this.#waiting.delete(origin);
    resolve(0);
  }

  /** A broadcast from here was stored. */
  countEvent(): void {
    this.#events += 1;
    this.#hooks.counters.events += 1;
  }

  /** A publish failed. */
  countAdapterError(): void {
    this.#hooks.counters.adapterErrors += 1;
  }

  /** Removes a connection (it closed, or unsubscribed). */
  remove(stream: Stream): void {
    this.#remove(stream);
  }

  // ——— Feed (what subscriptions use) ———

  report(error: Error): void {
    this.#hooks.onError(error);
  }

  has(stream: Stream): boolean {
    return this.#live.has(stream) || this.#subscriptions.has(stream);
  }

  isCurrent(subscription: Subscription): boolean {
    return this.#subscriptions.get(subscription.stream) === subscription;
  }

  add(stream: Stream, subscription: Subscription | undefined): void {
    stream.onClose(this);
    if (this.hasHistory) stream.addPositionSource(this);
    if (subscription === undefined) this.#live.add(stream);
    else this.#subscriptions.set(stream, subscription);
    if (this.#delivery === undefined) this.#startDelivery();
    this.#hooks.onJoin(this);
  }

  settle(subscription: Subscription): void {
    if (subscription.filter !== undefined || !this.isCurrent(subscription)) return;
    this.#subscriptions.delete(subscription.stream);
    this.#live.add(subscription.stream);
  }

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

  deliver(subscription: Subscription, entry: LogEntry): boolean {
    if (subscription.filter !== undefined && !this.#passes(subscription, entry)) return false;
    if (this.#enqueue(subscription.stream, frameOf(entry)) === 0) return false;
    this.#hooks.counters.deliveries += 1;
    return true;
  }

  reset(stream: Stream, reason: ResetReason): void {
    this.#resets += 1;
    this.#hooks.counters.resets[reason] += 1;
    const frame = formatEvent(JSON.stringify({ channel: this.name, lastEventId: stream.lastEventId ?? null, reason }), { event: RESET_EVENT });
    stream.enqueue(frame);
    if (diagnostics.reset.hasSubscribers) diagnostics.reset.publish({ channel: this.name, stream, reason });
  }

  countReplay(): void {
    this.#replays += 1;
    this.#hooks.counters.replays += 1;
  }

  /** Where `stream` is in this channel, on the wire. */
  tokenFor(connection: Connection): string | undefined {
    const stream = connection as Stream;
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

  /** The adapter lost messages and is back: read what was missed. */
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
        // The position may have moved past entries it never fanned out (its first read of the
        // log): connections catching up behind it read them.
        for (const subscription of this.#subscriptions.values()) if (!subscription.live) subscription.nudge(this);
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
  #enqueue(stream: Stream, frame: Frame): number {
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

  /** The fan-out is the close hook of every connection subscribed to it: told which one closed. */
  connectionClosed(connection: Connection): void {
    this.#remove(connection as Stream);
  }

  #remove(stream: Stream): void {
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

  /** The connections subscribed here. */
  *streams(): IterableIterator<Stream> {
    yield* this.#live;
    yield* this.#subscriptions.keys();
  }

  /** Refuses further broadcasts and subscriptions. */
  markClosed(): void {
    this.#closed = true;
    this.#settleWaiters();
  }
}
