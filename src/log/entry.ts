// A channel's log as adapters store it: what an entry is, what reading after a client's positions
// finds, and the rules every log follows (see position.ts for offsets and epochs).
import type { Position } from './position';
import type { Serializer } from '../stream/serializer';

/** How an event's text was produced, so a receiving process can rebuild the value filters see. */
export type DataKind = 'text' | 'json' | 'other';

/** The message of the error a publish to a sealed log rejects with. */
export const SEALED = 'the log is sealed: it ended, nothing more is appended';

/** The kind of `data` once `serialize` turned it into text. */
export function kindOf(data: unknown, serialize: Serializer): DataKind {
  return typeof data === 'string' ? 'text' : serialize === JSON.stringify ? 'json' : 'other';
}

/** An event as the publishing process hands it to the adapter: already serialized. */
export interface PublishedEvent {
  readonly event: string | undefined;
  /** The data as text (what goes after `data:`). */
  readonly text: string;
  readonly kind: DataKind;
  /** An id chosen by the caller: only on channels without history (a log numbers its own). */
  readonly id: string | undefined;
  /** The original value; only in-process adapters carry it along. */
  readonly data?: unknown;
  /** Who published it: a broadcast waits for its own event to come back (see channel.ts). */
  readonly origin: string | undefined;
}

/** An event with its place in the log, as every process receives it. Without history: epoch '' and offset 0. */
export interface LogEntry extends PublishedEvent {
  readonly epoch: string;
  readonly offset: number;
}

/** What reading a log after a client's positions found. */
export interface ReadResult {
  /** The log's newest position when it was read (offset 0 when it holds nothing yet). */
  readonly head: Position;
  /** Index of the client position that belongs to this log (same epoch, not ahead of it); -1 for none. */
  readonly matched: number;
  /** True when the matched position is older than the oldest event the log still holds. */
  readonly evicted: boolean;
  /**
   * Who published the event at the matched position, when the log still holds it: a reader that
   * saw another event there knows the log went back in time (see Adapter.renew).
   */
  readonly matchedOrigin?: string | undefined;
  /** The log was sealed: its newest event ends it, nothing follows. */
  readonly sealed?: boolean;
  /** This read created the log (it did not exist). */
  readonly created?: boolean;
  /**
   * The events after the matched position, oldest first; when nothing matched or the position
   * was evicted, every event the log holds; none for a read without positions (head only).
   */
  readonly events: readonly LogEntry[];
}

/** The entry of `published` at `epoch` and `offset`: a literal of one shape, not a spread (hot path). */
export function entryAt(published: PublishedEvent, epoch: string, offset: number): LogEntry {
  const entry: { -readonly [K in keyof LogEntry]: LogEntry[K] } = {
    epoch,
    offset,
    event: published.event,
    text: published.text,
    kind: published.kind,
    id: published.id,
    origin: published.origin,
  };
  if ('data' in published) entry.data = published.data;
  return entry;
}

/** Finds the position among `after` that belongs to a log of `epoch` whose newest offset is `head`. */
export function matchPosition(after: readonly Position[], epoch: string, head: number): number {
  return after.findIndex((p) => p.epoch === epoch && p.offset <= head);
}

/** The id an entry carries on the wire when it has no position: the caller's own, if any. */
export function customIdOf(entry: LogEntry): string | undefined {
  return entry.offset === 0 ? entry.id : undefined;
}

/** Turns the text back into what a subscriber's filter should see. */
export function dataOf(entry: PublishedEvent): unknown {
  if ('data' in entry) return entry.data;
  if (entry.kind === 'json') {
    try {
      return JSON.parse(entry.text) as unknown;
    } catch {
      // Not JSON after all: the text, as for any other kind.
    }
  }
  return entry.text;
}
