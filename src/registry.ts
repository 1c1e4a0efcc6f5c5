import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createChannel, fanoutOf, streamOf, subscribeAll, type Channel } from './channels/channel';
import type { ChannelHooks, ChannelStats, Fanout } from './channels/fan-out';
import { CHANNEL_OPTION_NAMES, resolveChannelOptions, validateChannelName, type ChannelOptions } from './channels/options';
import type { Adapter } from './adapters/adapter';
import type { DropReason } from './stream/connection';
import { newCounters, total } from './channels/counters';
import { MemoryAdapter } from './adapters/memory';
import * as diagnostics from './common/diagnostics';
import { SseError, fieldError, tellListener, warn } from './common/errors';
import { checkOptionNames, checkOptionsObject, isTimerMs } from './common/checks';
import { endAll, resolveCloseOptions, type CloseOptions } from './stream/shutdown';
import { RESERVED_PREFIX, RUN_PREFIX, resolveRunDefaults, type Run, type RunDefaults, type RunOptions, type RunSource } from './runs/run';
import { Runs, type FollowOptions, type FollowOutcome } from './runs/runs';
import { faceOf, type SseStream, type StreamTarget } from './stream/sse-stream';
import type { Stream } from './stream/stream';
import type { Authorize, ResetReason, SubscribeOptions } from './channels/subscription';

/** Options of `new ChannelRegistry()`: the transport, and defaults for every channel it creates. */
export interface RegistryOptions extends ChannelOptions {
  /**
   * Where events are sequenced, stored and delivered. A `RedisAdapter` shares channels between
   * processes. `registry.close()` closes it.
   * @default a new MemoryAdapter (in-process)
   */
  readonly adapter?: Adapter;
  /**
   * Asked before a connection joins a channel (`registry.subscribe()` and
   * `registry.channel(name).subscribe()`): `(req, channelName) => boolean | Promise<boolean>`.
   * Only `true` allows. A refusal answers `403` before any stream byte and joins no channel; a hook
   * that throws or rejects answers `500` and emits `error`. Unset: every subscription is allowed.
   */
  readonly authorize?: Authorize;
  /**
   * Milliseconds an async `authorize` may take; past it the subscription is refused with `503`
   * and `Retry-After`, and `error` is emitted.
   * @default 10000
   */
  readonly authorizeTimeout?: number;
  /** Settings of runs (`registry.run()`): their logs' size and lifetime, their longest duration. */
  readonly runs?: RunDefaults;
}

export const DEFAULT_AUTHORIZE_TIMEOUT_MS = 10_000;

/** At most one `error` per this many ms about skipped messages (all are counted). */
const INVALID_REPORT_MS = 10_000;

function sameSettings(a: ChannelOptions, b: ChannelOptions): boolean {
  const x = resolveChannelOptions(a);
  const y = resolveChannelOptions(b);
  return x.history === y.history && x.historyTtl === y.historyTtl && x.maxBufferedBytes === y.maxBufferedBytes && x.serialize === y.serialize;
}

function describeOptions(options: ChannelOptions): string {
  const { history = false, historyTtl, maxBufferedBytes } = options;
  const parts = [`history: ${String(history)}`];
  if (historyTtl !== undefined) parts.push(`historyTtl: ${String(historyTtl)}`);
  if (maxBufferedBytes !== undefined) parts.push(`maxBufferedBytes: ${String(maxBufferedBytes)}`);
  if (options.serialize !== undefined) parts.push('serialize: a function');
  return `{ ${parts.join(', ')} }`;
}

const KNOWN_OPTIONS = new Set(['adapter', 'authorize', 'authorizeTimeout', 'runs', ...CHANNEL_OPTION_NAMES]);

/**
 * Counters of a registry, for metrics. The totals count since the registry was created, channels
 * collected since included; `channels` holds the channels that exist now.
 */
export interface RegistryStats {
  /** Distinct connections subscribed to at least one channel. */
  readonly connections: number;
  /** Subscriptions: connections summed over channels (one connection in three channels: 3). */
  readonly subscriptions: number;
  /** Events broadcast from this process. */
  readonly events: number;
  /** Frames queued to connections, replays included. */
  readonly deliveries: number;
  /** Bytes of those frames. */
  readonly bytes: number;
  /** Connections dropped while subscribed (slow, or a write failed); `droppedBy` splits them. */
  readonly dropped: number;
  readonly droppedBy: Readonly<Record<DropReason, number>>;
  /** Subscriptions that replayed history. */
  readonly replays: number;
  /** `reset` events sent; `resetsBy` splits them by reason. */
  readonly resets: number;
  readonly resetsBy: Readonly<Record<ResetReason, number>>;
  /** Adapter failures: errors it reported, publishes, subscriptions and log reads that failed. */
  readonly adapterErrors: number;
  /**
   * Messages and log entries that reached this process through the adapter and were skipped
   * because they do not read as events (another version, another service, garbage).
   */
  readonly invalidMessages: number;
  /** Runs this process produces now. */
  readonly runs: number;
  /** Channels by name (runs' logs are counted above, not listed here). */
  readonly channels: Readonly<Record<string, ChannelStats>>;
}

/** Events a registry emits. */
export interface RegistryEvents {
  /** A connection was disconnected by the slow-client policy. */
  'client-dropped': [info: { channel: string; stream: SseStream }];
  /** Something went wrong away from any caller (a filter threw, a replay failed). */
  error: [error: Error];
}

/**
 * Named channels on one adapter. `channel(name)` gets or creates; `subscribe()` puts one
 * connection in several channels; `close()` ends every stream for a graceful shutdown.
 */
export class ChannelRegistry extends EventEmitter<RegistryEvents> {
  readonly #defaults: RegistryOptions;
  // An empty channel is only weakly held: if no code keeps a reference, it is collected (its
  // history lives in the adapter, not in the channel); if some code does, channel(name) still
  // returns that same object.
  readonly #channels = new Map<string, Channel | WeakRef<Channel>>();
  readonly #finalizer = new FinalizationRegistry<{ name: string; ref: WeakRef<Channel> }>(({ name, ref }) => {
    if (this.#channels.get(name) === ref) this.#channels.delete(name);
  });
  /** Options of the names created with options (see channel()). */
  readonly #named = new Map<string, ChannelOptions>();
  readonly #hooks: ChannelHooks;
  readonly #adapter: Adapter;
  readonly #runs: Runs;
  readonly #counters = newCounters();
  /** Names this process's broadcasts, so each can find its own event when it comes back. */
  readonly #origin = randomUUID();
  #broadcasts = 0;
  #closed = false;
  #invalidReportedAt = Number.NEGATIVE_INFINITY;
  #invalidUnreported = 0;

  constructor(options: RegistryOptions = {}) {
    super();
    checkOptionsObject(options, 'ChannelRegistry');
    checkOptionNames(options, KNOWN_OPTIONS, 'ChannelRegistry');
    const { adapter = new MemoryAdapter(), authorize, authorizeTimeout = DEFAULT_AUTHORIZE_TIMEOUT_MS, runs, ...defaults } = options;
    if (typeof adapter !== 'object' || adapter === null || typeof adapter.publish !== 'function') {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'adapter', 'an Adapter (MemoryAdapter, RedisAdapter)', adapter);
    }
    if (authorize !== undefined && typeof authorize !== 'function') {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'authorize', 'a function (req, channel) => boolean | Promise<boolean>', authorize);
    }
    if (!isTimerMs(authorizeTimeout)) {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'authorizeTimeout', 'a positive integer (ms)', authorizeTimeout);
    }
    resolveChannelOptions(defaults, 'ChannelRegistry');
    this.#defaults = defaults;
    this.#adapter = adapter;
    adapter.onError = (error) => {
      this.#counters.adapterErrors += 1;
      if (diagnostics.adapterError.hasSubscribers) diagnostics.adapterError.publish({ error });
      this.#reportError(error);
    };
    adapter.onResync = (names) => this.#resync(names);
    adapter.onInvalid = (what, why) => this.#invalid(what, why);
    this.#hooks = {
      adapter,
      authorize,
      authorizeTimeout,
      counters: this.#counters,
      onError: (error) => this.#reportError(error),
      nextOrigin: () => `${this.#origin}:${(this.#broadcasts += 1)}`,
      onJoin: (fanout) => this.#keepStrongly(fanout),
      onLeave: (fanout, stream, dropped) => {
        if (fanout.size === 0) this.#keep(fanout);
        if (dropped) this.emit('client-dropped', { channel: fanout.name, stream: faceOf(stream) });
      },
    };
    const runSettings = resolveRunDefaults(runs);
    // A run's log is a channel under a reserved name, without the authorize hook (the route that
    // follows a run decides who may).
    const runHooks: ChannelHooks = { ...this.#hooks, authorize: undefined };
    this.#runs = new Runs(runSettings, {
      adapter,
      serialize: defaults.serialize ?? JSON.stringify,
      channel: (name) => this.#lookup(name) ?? this.#add(createChannel(name, { ...this.#defaults, history: runSettings.history, historyTtl: runSettings.ttl }, runHooks)),
      nextOrigin: () => this.#hooks.nextOrigin(),
      onError: (error) => this.#reportError(error),
    });
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The id a client that has every event of these channels would send: their newest positions,
   * read from the adapter, so the same on every process. `undefined` when none has history.
   * (A subscription tells its client this by itself; see "Replay semantics" in the README.)
   */
  async head(names: string | readonly string[]): Promise<string | undefined> {
    const heads = await Promise.all(this.#channelsOf(names).map((channel) => channel.head()));
    const id = heads.filter((head) => head !== undefined).join(',');
    return id === '' ? undefined : id;
  }

  /** The adapter events travel through. */
  get adapter(): Adapter {
    return this.#adapter;
  }

  /**
   * The channel called `name`, created with `options` (over the registry's defaults) if new. The
   * options a name was first given stay in force for the registry's life, also when the channel
   * object itself is collected while nobody uses it; other options for it later throw a
   * `TypeError` (`ERR_SSE_INVALID_OPTION`) rather than being ignored.
   */
  channel(name: string, options?: ChannelOptions): Channel {
    validateChannelName(name);
    if (name.startsWith(RESERVED_PREFIX)) throw fieldError('ERR_SSE_INVALID_CHANNEL', 'channel name', 'a name not starting with "\\u0000run" (reserved for runs)', name);
    const existing = this.#lookup(name);
    if (options === undefined) return existing ?? this.#add(createChannel(name, this.#named.get(name) ?? this.#defaults, this.#hooks));
    checkOptionsObject(options, 'channel');
    const wanted: ChannelOptions = { ...this.#defaults, ...options };
    const given = (existing === undefined ? undefined : fanoutOf(existing).options) ?? this.#named.get(name);
    if (given !== undefined) {
      if (!sameSettings(given, wanted)) {
        throw fieldError('ERR_SSE_INVALID_OPTION', `options of channel "${name}"`, `the ones it was created with (${describeOptions(given)}): a channel keeps its options for the registry's life`, options);
      }
      if (existing !== undefined) return existing;
    }
    const channel = this.#add(createChannel(name, wanted, this.#hooks));
    // Remembered (a small object per name given options): a channel collected while nobody uses
    // it comes back with them, whichever route asks for it next.
    this.#named.set(name, wanted);
    return channel;
  }

  #add(channel: Channel): Channel {
    if (this.#closed) throw new SseError('ERR_SSE_REGISTRY_CLOSED', 'the registry is closed');
    this.#keep(fanoutOf(channel), channel);
    return channel;
  }

  /**
   * Starts a run: a generation that goes on whether or not anyone follows it, stored as it goes in
   * a log of its own (kept `runs.ttl` after its end), which clients follow with `followRun()` on
   * any process, from the start or from their Last-Event-ID. `source` is an async iterable or a
   * web stream of chunks, or a function of the run's `AbortSignal` returning one; each chunk
   * becomes a `token` event (strings as they are, other values through `serialize`). Rejects with
   * `ERR_SSE_RUN_EXISTS` when the id is taken.
   */
  async run(id: string, source: RunSource, options?: RunOptions): Promise<Run> {
    if (this.#closed) throw new SseError('ERR_SSE_REGISTRY_CLOSED', 'the registry is closed');
    return this.#runs.start(id, source, options);
  }

  /** The run `id` if this process produces it now. */
  getRun(id: string): Run | undefined {
    return this.#runs.get(id);
  }

  /**
   * Stops the run `id` on whichever process produces it (its signal aborts there); resolves
   * `true` once its end is stored, `false` when there is no such run or it had ended.
   */
  stopRun(id: string): Promise<boolean> {
    return this.#runs.stop(id);
  }

  /**
   * Answers a request with the run `id` (after `sse()`): its events from the client's
   * Last-Event-ID, or from the start, until its end, then the stream closes. A client that has
   * the end already gets 204 (EventSource then stops), an unknown or expired run 404 with JSON
   * `{ error }`. `format: 'ai-sdk'` serves the AI SDK's UI message stream protocol instead.
   */
  followRun(target: StreamTarget, id: string, options?: FollowOptions): Promise<FollowOutcome> {
    return this.#runs.follow(target, id, options);
  }

  /** True if a channel called `name` exists. */
  has(name: string): boolean {
    return this.#lookup(name) !== undefined;
  }

  /**
   * Subscribes one connection to several channels (one EventSource, many feeds: browsers allow
   * only about 6 HTTP/1.1 connections per origin). Each event's id then says where the client is
   * in every one of them, so a reconnect replays exactly what it missed in each.
   */
  subscribe(target: StreamTarget, names: string | readonly string[], options?: SubscribeOptions): () => void {
    return subscribeAll(this.#channelsOf(names), streamOf(target), options);
  }

  #channelsOf(names: string | readonly string[]): Channel[] {
    const list: readonly string[] = typeof names === 'string' ? [names] : names;
    if (!Array.isArray(list) || list.length === 0) {
      throw fieldError('ERR_SSE_INVALID_ARGUMENT', 'channel names', 'a name or a non-empty array of names', names);
    }
    return Array.from(new Set<string>(list), (name) => this.channel(name));
  }

  // The adapter lost messages and is back: every channel with subscribers catches up.
  #resync(names: readonly string[] | undefined): void {
    if (names === undefined) for (const channel of this.#live()) fanoutOf(channel).resync();
    else for (const name of names) this.#fanoutOf(name)?.resync();
  }

  /**
   * Graceful shutdown: refuses new work, sends the optional last event to every connection once
   * (after a `retry:` drawn from `retryJitter`, which spreads their reconnections), ends every
   * stream and resolves when they have closed (destroying stragglers after `timeout`), so
   * `server.close()` can complete.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    const { frame, timeout: budget, retry } = resolveCloseOptions(options, this.#defaults.serialize ?? JSON.stringify);
    this.#closed = true;
    // Runs produced here end first (reason "shutdown"), so their followers get the end.
    const started = performance.now();
    await this.#runs.close(budget);
    const timeout = Math.max(1, budget - Math.round(performance.now() - started));
    const streams = new Set<Stream>();
    for (const channel of this.#live()) {
      const fanout = fanoutOf(channel);
      fanout.markClosed();
      for (const stream of fanout.streams()) streams.add(stream);
    }
    await endAll(streams, (stream) => stream.terminate(frame, retry()), timeout);
    await this.#adapter.close();
  }

  /** Counters for metrics. */
  stats(): RegistryStats {
    // No prototype: a channel may be called "__proto__" or "constructor".
    const channels = Object.create(null) as Record<string, ChannelStats>;
    let subscriptions = 0;
    for (const channel of this.#live()) {
      const s = channel.stats();
      if (!channel.name.startsWith(RUN_PREFIX)) channels[channel.name] = s;
      subscriptions += s.subscribers;
    }
    const c = this.#counters;
    return {
      connections: this.#countConnections(),
      subscriptions,
      events: c.events,
      deliveries: c.deliveries,
      bytes: c.bytes,
      dropped: total(c.dropped),
      droppedBy: { ...c.dropped },
      replays: c.replays,
      resets: total(c.resets),
      resetsBy: { ...c.resets },
      adapterErrors: c.adapterErrors,
      invalidMessages: c.invalidMessages,
      runs: this.#runs.size,
      channels,
    };
  }

  // Counted when asked (a Set over the subscribers of every channel) rather than kept in a map
  // updated on every join and leave: that map would cost every idle connection another entry.
  #countConnections(): number {
    let only: Channel | undefined;
    let several = false;
    for (const channel of this.#live()) {
      if (channel.size === 0) continue;
      if (only === undefined) only = channel;
      else several = true;
    }
    if (!several) return only?.size ?? 0;
    const streams = new Set<Stream>();
    for (const channel of this.#live()) for (const stream of fanoutOf(channel).streams()) streams.add(stream);
    return streams.size;
  }

  *#live(): IterableIterator<Channel> {
    for (const name of this.#channels.keys()) {
      const channel = this.#lookup(name);
      if (channel !== undefined) yield channel;
    }
  }

  #lookup(name: string): Channel | undefined {
    const kept = this.#channels.get(name);
    return kept instanceof WeakRef ? kept.deref() : kept;
  }

  #fanoutOf(name: string): Fanout | undefined {
    const channel = this.#lookup(name);
    return channel === undefined ? undefined : fanoutOf(channel);
  }

  // An empty channel is held weakly (see #channels); one with connections strongly. `channel`:
  // its public face, when the caller has it (a fan-out's own join and leave find it by name).
  #keep(fanout: Fanout, channel = this.#lookup(fanout.name)): void {
    if (channel === undefined) return;
    if (fanout.size > 0) {
      this.#keepStrongly(fanout, channel);
    } else {
      // One weak reference and one finalizer entry per channel object, made the first time it is
      // left empty: a channel whose subscribers come and go (1 → 0, again and again) would
      // otherwise add an entry each time, which lives as long as the channel.
      let ref = fanout.weakRef as WeakRef<Channel> | undefined;
      if (ref === undefined) {
        ref = new WeakRef(channel);
        fanout.weakRef = ref;
        this.#finalizer.register(channel, { name: channel.name, ref });
      }
      this.#channels.set(channel.name, ref);
    }
  }

  #keepStrongly(fanout: Fanout, channel = this.#lookup(fanout.name)): void {
    if (channel !== undefined && this.#channels.get(channel.name) !== channel) this.#channels.set(channel.name, channel);
  }

  // Every skipped message is counted; an `error` says so at most once per INVALID_REPORT_MS (a
  // flood of garbage must not become a flood of errors), with how many were skipped meanwhile.
  #invalid(what: string, why: string): void {
    this.#counters.invalidMessages += 1;
    if (diagnostics.adapterError.hasSubscribers) {
      diagnostics.adapterError.publish({ error: new SseError('ERR_SSE_INVALID_MESSAGE', `skipped ${what}: ${why}`) });
    }
    this.#invalidUnreported += 1;
    const now = performance.now();
    if (now - this.#invalidReportedAt < INVALID_REPORT_MS) return;
    const more = this.#invalidUnreported - 1;
    this.#invalidUnreported = 0;
    this.#invalidReportedAt = now;
    const also = more > 0 ? ` (and ${more} more since the last report)` : '';
    this.#reportError(new SseError('ERR_SSE_INVALID_MESSAGE', `skipped ${what}: ${why}${also}; the process goes on without it`));
  }

  #reportError(error: Error): void {
    if (this.listenerCount('error') > 0) tellListener((e) => this.emit('error', e), error, "an 'error' listener of the channel registry");
    else warn(error);
  }
}
