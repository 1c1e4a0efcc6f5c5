// The in-memory log: a bounded ring of the newest events of one channel, with contiguous offsets
// within one epoch (see position.ts), read "after a position".
import { entryAt, matchPosition, type LogEntry, type PublishedEvent, type ReadResult } from './entry';
import { newEpoch, type Position } from './position';

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
