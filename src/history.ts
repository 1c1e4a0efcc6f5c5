// A bounded ring of past events for Last-Event-ID replay. Positions (`seq`) are increasing
// integers; when a registry owns the channel they come from one counter shared by all its
// channels, so an id seen on one channel also says where to resume on another.

/** One stored event. */
export interface HistoryEntry {
  /** Position in the id sequence; increasing. */
  readonly seq: number;
  /** The id written on the wire (the seq as text unless the caller chose one). */
  readonly id: string;
  readonly frame: string;
  readonly bytes: number;
  readonly event: string | undefined;
  readonly data: unknown;
}

/** Why a replay could not start exactly after the client's id. */
export type ResetReason = 'unknown-id' | 'evicted';

export interface ReplayResult {
  readonly entries: readonly HistoryEntry[];
  /** Set when events may have been missed: the entries are all the history that remains. */
  readonly reset: ResetReason | undefined;
}

export class History {
  readonly capacity: number;
  readonly #ring: (HistoryEntry | undefined)[];
  #start = 0;
  #length = 0;
  /** seq of the newest evicted entry; 0 while nothing was evicted. */
  #evictedUpTo = 0;
  /** ids chosen by callers (not plain seqs) → seq, for O(1) lookup. */
  readonly #customIds = new Map<string, number>();

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#ring = new Array<HistoryEntry | undefined>(capacity);
  }

  get size(): number {
    return this.#length;
  }

  append(entry: HistoryEntry): void {
    if (this.#length === this.capacity) {
      const old = this.#ring[this.#start]!;
      this.#evictedUpTo = old.seq;
      if (this.#customIds.get(old.id) === old.seq) this.#customIds.delete(old.id);
      this.#ring[this.#start] = entry;
      this.#start = (this.#start + 1) % this.capacity;
    } else {
      this.#ring[(this.#start + this.#length) % this.capacity] = entry;
      this.#length += 1;
    }
    if (entry.id !== String(entry.seq)) this.#customIds.set(entry.id, entry.seq);
  }

  #at(index: number): HistoryEntry {
    return this.#ring[(this.#start + index) % this.capacity]!;
  }

  /**
   * The events after `lastEventId`, oldest first. `newestSeq` is the newest position the
   * sequence has handed out; an id beyond it comes from before a restart and is unknown.
   */
  readAfter(lastEventId: string, newestSeq: number): ReplayResult {
    let seq = this.#customIds.get(lastEventId);
    if (seq === undefined && /^(0|[1-9]\d{0,15})$/.test(lastEventId)) seq = Number(lastEventId);
    if (seq === undefined || seq > newestSeq) return { entries: this.#slice(0), reset: 'unknown-id' };
    if (seq < this.#evictedUpTo) return { entries: this.#slice(0), reset: 'evicted' };
    // Binary search for the first entry newer than seq: seqs are increasing but may have gaps
    // (other channels of the registry took the numbers in between).
    let low = 0;
    let high = this.#length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#at(mid).seq <= seq) low = mid + 1;
      else high = mid;
    }
    return { entries: this.#slice(low), reset: undefined };
  }

  #slice(from: number): HistoryEntry[] {
    const out: HistoryEntry[] = [];
    for (let i = from; i < this.#length; i += 1) out.push(this.#at(i));
    return out;
  }
}
