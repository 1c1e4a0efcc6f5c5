// A bounded ring of past events for Last-Event-ID replay, used by the in-memory adapter.
// Positions (`seq`) are increasing integers from one counter shared by all channels, so an id
// seen on one channel also says where to resume on another.
import type { AdapterEvent, ReplayResult } from './adapters/adapter';

export class History {
  readonly capacity: number;
  readonly #ring: (AdapterEvent | undefined)[];
  #start = 0;
  #length = 0;
  /** seq of the newest evicted entry; 0 while nothing was evicted. */
  #evictedUpTo = 0;
  /** ids chosen by callers (not plain seqs) → seq, for O(1) lookup. */
  readonly #customIds = new Map<string, number>();

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#ring = new Array<AdapterEvent | undefined>(capacity);
  }

  get size(): number {
    return this.#length;
  }

  append(entry: AdapterEvent): void {
    if (this.#length === this.capacity) {
      const old = this.#ring[this.#start]!;
      this.#evictedUpTo = old.seq;
      if (old.id !== undefined && this.#customIds.get(old.id) === old.seq) this.#customIds.delete(old.id);
      this.#ring[this.#start] = entry;
      this.#start = (this.#start + 1) % this.capacity;
    } else {
      this.#ring[(this.#start + this.#length) % this.capacity] = entry;
      this.#length += 1;
    }
    if (entry.id !== undefined) this.#customIds.set(entry.id, entry.seq);
  }

  #at(index: number): AdapterEvent {
    return this.#ring[(this.#start + index) % this.capacity]!;
  }

  /**
   * The events after `lastEventId`, oldest first. `newestSeq` is the newest position the
   * sequence has handed out; an id beyond it comes from before a restart and is unknown.
   */
  readAfter(lastEventId: string, newestSeq: number): ReplayResult {
    let seq = this.#customIds.get(lastEventId);
    if (seq === undefined && /^(0|[1-9]\d{0,15})$/.test(lastEventId)) seq = Number(lastEventId);
    if (seq === undefined || seq > newestSeq) return { events: this.#slice(0), reset: 'unknown-id' };
    if (seq < this.#evictedUpTo) return { events: this.#slice(0), reset: 'evicted' };
    // Binary search for the first entry newer than seq: seqs are increasing but may have gaps
    // (other channels took the numbers in between).
    let low = 0;
    let high = this.#length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#at(mid).seq <= seq) low = mid + 1;
      else high = mid;
    }
    return { events: this.#slice(low), reset: undefined };
  }

  #slice(from: number): AdapterEvent[] {
    const out: AdapterEvent[] = [];
    for (let i = from; i < this.#length; i += 1) out.push(this.#at(i));
    return out;
  }
}
