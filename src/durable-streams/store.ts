// What the Durable Streams router needs from where streams live: a byte log per URL with its
// metadata, written and read atomically. This is not the channel event log (log.ts): a stream
// holds bytes (or JSON messages) addressed by byte position, has a content type, a TTL or an
// expiry, can be closed, and deduplicates producers. Two implementations: MemoryStreamStore
// (in-process) and RedisStreamStore (one Cluster slot per stream, Lua scripts).
import type { ProducerClaim } from './producers';

/** A stream's configuration, as set when it was created. */
export interface StreamConfig {
  /** The Content-Type it was created with, as sent (parameters included). */
  readonly contentType: string;
  /** Seconds the stream lives after its last read or write (sliding), if set. */
  readonly ttlSeconds: number | undefined;
  /** The Stream-Expires-At it was created with, as sent, if set. */
  readonly expiresAt: string | undefined;
}

/** A stream as a store reports it. */
export interface StreamInfo extends StreamConfig {
  readonly generation: number;
  /** Bytes stored: the position after the last one. */
  readonly tail: number;
  readonly closed: boolean;
}

/** One stored message (an append, or one JSON value) and where it ends. */
export interface StoredChunk {
  readonly end: number;
  readonly data: Buffer;
}

/** What a create found. */
export type CreateOutcome =
  | { readonly kind: 'created'; readonly info: StreamInfo }
  | { readonly kind: 'exists'; readonly info: StreamInfo }
  | { readonly kind: 'too-large' }
  | { readonly kind: 'full' };

/** A create: the configuration, whether it starts closed, and its first messages. */
export interface CreateRequest extends StreamConfig {
  readonly closed: boolean;
  readonly messages: readonly Buffer[];
  /** Media type (lower case, no parameters), compared with an existing stream's. */
  readonly mediaType: string;
}

/** An append, or a close (no messages and `close`). */
export interface AppendRequest {
  readonly messages: readonly Buffer[];
  /** Media type of the request (lower case, no parameters); '' for a close without body. */
  readonly mediaType: string;
  readonly close: boolean;
  /** Stream-Seq: must sort after the last one the stream accepted. */
  readonly streamSeq: string | undefined;
  readonly producer: ProducerClaim | undefined;
  /**
   * Unique per HTTP request: a store that may run the same command twice (a Redis reply lost,
   * the command resent after a reconnect) answers the second run with the first one's outcome.
   */
  readonly token: string;
}

/** What an append (or close) did. */
export type AppendOutcome =
  | { readonly kind: 'appended'; readonly tail: number; readonly generation: number; readonly closed: boolean }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'content-type-mismatch'; readonly contentType: string }
  /** The stream is closed: a close without producer is idempotent (`alreadyClosed`), anything else conflicts. */
  | { readonly kind: 'closed'; readonly tail: number; readonly generation: number; readonly conflict: boolean }
  | { readonly kind: 'seq-conflict'; readonly last: string }
  | { readonly kind: 'duplicate'; readonly lastSeq: number; readonly tail: number; readonly generation: number; readonly closed: boolean }
  | { readonly kind: 'stale-epoch'; readonly currentEpoch: number }
  | { readonly kind: 'epoch-needs-seq-0' }
  | { readonly kind: 'gap'; readonly expected: number; readonly received: number }
  | { readonly kind: 'too-large'; readonly limit: number }
  /** The store holds as much as it may in all (memory: maxTotalBytes). */
  | { readonly kind: 'full' };

/** What a read found: the stream, and the chunks that end after the position read from. */
export interface ReadOutcome {
  readonly info: StreamInfo;
  /** Oldest first; the first may start before the position (the router cuts it). */
  readonly chunks: readonly StoredChunk[];
}

/** Where the Durable Streams router keeps streams. */
export interface StreamStore {
  /** Creates the stream at `path`, or reports the one there. */
  create(path: string, request: CreateRequest): Promise<CreateOutcome>;
  /** Appends and/or closes, with Stream-Seq and producer checks, atomically. */
  append(path: string, request: AppendRequest): Promise<AppendOutcome>;
  /**
   * Reads chunks ending after `position`, about `maxBytes` of them (at least one when there is
   * any). `touch`: counts as an access for a sliding TTL. `undefined` for no stream.
   */
  read(path: string, position: number, maxBytes: number, touch: boolean): Promise<ReadOutcome | undefined>;
  /** The stream's metadata (no access for the TTL), `undefined` for no stream. */
  info(path: string): Promise<StreamInfo | undefined>;
  /** Deletes; false when there was no stream. */
  delete(path: string): Promise<boolean>;
  /** Releases timers (the store's connections belong to the adapter). */
  close(): Promise<void>;
}
