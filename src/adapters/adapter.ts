// express-sse-hub/adapter: what a ChannelRegistry needs from where its channels live (types for
// writing an adapter of your own; MemoryAdapter and RedisAdapter implement it): a log per channel (append, read
// after a position) and delivery of new entries to every process with subscribers. The adapter
// publishes and notifies; it never calls into a channel. Whether a subscriber gets an entry is
// the channel's decision (channel.ts): it delivers an entry only if it follows what its
// subscribers already have, and reads the log for anything missing.
import type { LogEntry, PublishedEvent, ReadResult } from '../log/entry';
import type { Position } from '../log/position';

export type { DataKind, LogEntry, PublishedEvent, ReadResult } from '../log/entry';
export type { Position } from '../log/position';

/** How a channel's log is kept. */
export interface LogOptions {
  /** Events kept; 0: no log (entries are delivered, never stored, and carry no position). */
  readonly history: number;
  /** Milliseconds the log is kept after its last event while nobody is subscribed; 0: forever. */
  readonly ttl: number;
}

/** How an event is appended. */
export interface PublishOptions extends LogOptions {
  /**
   * The event ends the log (a run's end): later publishes to it reject with
   * `ERR_SSE_LOG_SEALED`, and reads say `sealed`.
   */
  readonly seal?: boolean;
  /**
   * `false`: append only to a log that exists; reject with `ERR_SSE_LOG_LOST`, storing and
   * publishing nothing, when it does not (a run's log lost mid-answer must not start again as if
   * nothing was missing).
   * @default true
   */
  readonly create?: boolean;
}

/** How a log is read: as it is kept, and whether reading may create it. */
export interface ReadOptions extends LogOptions {
  /**
   * `false`: a log that does not exist is not created; the read then finds head
   * `{ epoch: '', offset: 0 }` and no events. (Lookups driven by clients, such as a run id,
   * must not leave an empty log behind for every made-up name.) Such a read never changes when
   * the log expires.
   * @default true
   */
  readonly create?: boolean;
}

/** Receives a channel's new entries, in log order per process. */
export type EntryListener = (entry: LogEntry) => void;

/**
 * The transport behind a registry. `MemoryAdapter` is the in-process default; `RedisAdapter`
 * (`express-sse-hub/redis`) shares channels between processes and machines.
 */
export interface Adapter {
  /**
   * Appends the event to the channel's log (when `history` > 0) and delivers it to every process
   * subscribed to the channel. Resolves with its position (`undefined` without history) once
   * it is stored and published. Rejects when that cannot be done; it may still have been
   * published when the rejection is a timeout. Rejects with `ERR_SSE_LOG_SEALED`, storing and
   * publishing nothing, when the log was sealed (see PublishOptions).
   */
  publish(channel: string, event: PublishedEvent, options: PublishOptions): Promise<Position | undefined>;
  /**
   * Starts delivering the channel's new entries to `listener`. Resolves once the subscription is
   * in place: every entry published after that reaches the listener unless delivery breaks,
   * which `onResync` then reports.
   */
  subscribe(channel: string, listener: EntryListener): Promise<void>;
  /** Stops delivering the channel's entries here. */
  unsubscribe(channel: string): void;
  /**
   * Reads the channel's log after the first of `after` that belongs to it (see ReadResult);
   * `undefined` reads only its head. Creates the log (empty, with a new epoch) if it does not
   * exist, so its head can be handed out as a position, unless `options.create` is `false`.
   */
  read(channel: string, after: readonly Position[] | undefined, options: ReadOptions): Promise<ReadResult>;
  /**
   * This process fanned out `seen` (published by `origin`) from the channel's log, but the log no
   * longer holds that event there (Redis came back from an older snapshot: offsets would be handed
   * out again, with other events). Starts a new epoch unless another process did already, so every
   * position of the old one is unknown and clients get a `reset` instead of wrong events.
   * Adapters whose logs cannot go back in time need not implement it.
   */
  renew?(channel: string, seen: Position, origin: string | undefined): Promise<void>;
  /**
   * Set by the registry: called when delivery to this process was interrupted and is back (a
   * Pub/Sub reconnect, a slot that moved). Every channel with subscribers then catches up from its
   * log. Called with channel names when only those are affected.
   */
  onResync?: (channels?: readonly string[]) => void;
  /** Set by the registry: where the adapter reports trouble that has no caller to reject. */
  onError?: (error: Error) => void;
  /**
   * Set by the registry: a message or log entry from outside (another version, another service,
   * garbage) was skipped because it does not read as an entry; `why` says what is wrong with it.
   */
  onInvalid?: (what: string, why: string) => void;
  /** Releases connections and timers; resolves within a bounded time. */
  close(): Promise<void>;
}
