// A channel's log as an adapter stores it, and the in-memory one: a bounded ring of the newest
// events with contiguous offsets within one epoch (see position.ts), read "after a position".
import { newEpoch, type Position } from './position';
import type { Serializer } from './serializer';

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

/** An in-memory log: the newest `capacity` events of one channel, for one process life. */
export class MemoryLog {
  readonly epoch = newEpoch();
  // Grows with the log up to `capacity`, then wraps: a log that holds a few events costs a few
  // slots, not `capacity` of them (a run's log allows thousands and most hold hundreds).
  readonly #ring: LogEntry[] = [];
  readonly #capacity: number;
  #start = 0;
  /** Offset of the newest event; 0 while empty. */
  #head = 0;
  /** Its newest event ends it (see PublishOptions.seal). */
  sealed = false;

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  get head(): Position {
    return { epoch: this.epoch, offset: this.#head };
  }

  get size(): number {
    return this.#ring.length;
  }

  /** Numbers the event and keeps it, evicting the oldest past capacity. */
  append(published: PublishedEvent): LogEntry {
    const entry = entryAt(published, this.epoch, (this.#head += 1));
    const ring = this.#ring;
    if (ring.length < this.#capacity) {
      ring.push(entry); // not full yet: #start is still 0
    } else {
      ring[this.#start] = entry;
      this.#start = (this.#start + 1) % ring.length;
    }
    return entry;
  }

  /** The events after the client's position in this log (see ReadResult); `undefined`: the head only. */
  read(after: readonly Position[] | undefined): ReadResult {
    const head = this.head;
    const sealed = this.sealed;
    if (after === undefined) return { head, matched: -1, evicted: false, events: [], sealed };
    const matched = matchPosition(after, this.epoch, this.#head);
    const oldest = this.#head - this.#ring.length + 1;
    if (matched === -1) return { head, matched, evicted: false, events: this.#slice(0), sealed };
    const offset = after[matched]!.offset;
    // Offsets are contiguous: the event after `offset` sits at a known index.
    if (offset < oldest - 1) return { head, matched, evicted: true, events: this.#slice(0), sealed };
    const at = offset >= oldest ? this.#ring[(this.#start + offset - oldest) % this.#ring.length] : undefined;
    return { head, matched, evicted: false, events: this.#slice(offset - oldest + 1), matchedOrigin: at?.origin, sealed };
  }

  #slice(from: number): LogEntry[] {
    const out: LogEntry[] = [];
    const ring = this.#ring;
    for (let i = from; i < ring.length; i += 1) out.push(ring[(this.#start + i) % ring.length]!);
    return out;
  }
}
