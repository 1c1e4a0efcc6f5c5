import { SseError } from '../common/errors';
import { SEALED, entryAt, type LogEntry, type PublishedEvent, type ReadResult } from '../log/entry';
import { MemoryLog } from '../log/memory-log';
import type { Position } from '../log/position';
import type { Adapter, EntryListener, LogOptions, PublishOptions, ReadOptions } from './adapter';

const NO_LOG: ReadResult = Object.freeze({ head: Object.freeze({ epoch: '', offset: 0 }), matched: -1, evicted: false, events: Object.freeze([]) });

interface Kept {
  readonly log: MemoryLog;
  /** As the newest publish said: a run's log is kept longer while it runs than after its end. */
  ttl: number;
  /** Runs out `ttl` ms after the last event while nobody is subscribed; undefined meanwhile. */
  expiry: NodeJS.Timeout | undefined;
}

/**
 * The default, in-process adapter: a log (a ring of the newest events) per channel, delivery
 * synchronous within `publish()`. Logs start a new epoch with every process, so ids from before a
 * restart are recognised as unknown. A log nobody is subscribed to is freed `ttl` ms after its
 * last event.
 */
export class MemoryAdapter implements Adapter {
  readonly #logs = new Map<string, Kept>();
  readonly #listeners = new Map<string, EntryListener>();
  onResync?: (channels?: readonly string[]) => void;
  onError?: (error: Error) => void;
  /** Never called: nothing reaches an in-process log from outside. */
  onInvalid?: (what: string, why: string) => void;

  /** Channels with a log in memory now. */
  get size(): number {
    return this.#logs.size;
  }

  publish(channel: string, event: PublishedEvent, options: PublishOptions): Promise<Position | undefined> {
    let entry: LogEntry;
    let position: Position | undefined;
    if (options.history > 0) {
      if (options.create === false && !this.#logs.has(channel)) {
        return Promise.reject(new SseError('ERR_SSE_LOG_LOST', `"${channel}": the log no longer exists (it expired); nothing was appended`));
      }
      const { kept } = this.#keep(channel, options);
      if (kept.log.sealed) return Promise.reject(new SseError('ERR_SSE_LOG_SEALED', `"${channel}": ${SEALED}`));
      entry = kept.log.append(event);
      if (options.seal === true) kept.log.sealed = true;
      position = { epoch: entry.epoch, offset: entry.offset };
      if (kept.ttl !== options.ttl) {
        kept.ttl = options.ttl;
        clearTimeout(kept.expiry);
        kept.expiry = undefined;
        if (!this.#listeners.has(channel)) this.#expireLater(channel, kept);
      } else {
        kept.expiry?.refresh();
      }
    } else {
      entry = entryAt(event, '', 0);
    }
    this.#listeners.get(channel)?.(entry);
    return Promise.resolve(position);
  }

  subscribe(channel: string, listener: EntryListener): Promise<void> {
    this.#listeners.set(channel, listener);
    const kept = this.#logs.get(channel);
    if (kept !== undefined) {
      clearTimeout(kept.expiry);
      kept.expiry = undefined;
    }
    return Promise.resolve();
  }

  unsubscribe(channel: string): void {
    if (!this.#listeners.delete(channel)) return;
    const kept = this.#logs.get(channel);
    if (kept !== undefined) this.#expireLater(channel, kept);
  }

  read(channel: string, after: readonly Position[] | undefined, options: ReadOptions): Promise<ReadResult> {
    if (options.create === false && !this.#logs.has(channel)) return Promise.resolve(NO_LOG);
    const { kept, created } = this.#keep(channel, options);
    const result = kept.log.read(after);
    return Promise.resolve(created ? { ...result, created } : result);
  }

  close(): Promise<void> {
    this.#listeners.clear();
    for (const kept of this.#logs.values()) clearTimeout(kept.expiry);
    this.#logs.clear();
    return Promise.resolve();
  }

  #keep(channel: string, options: LogOptions): { kept: Kept; created: boolean } {
    let kept = this.#logs.get(channel);
    if (kept !== undefined) return { kept, created: false };
    kept = { log: new MemoryLog(options.history), ttl: options.ttl, expiry: undefined };
    this.#logs.set(channel, kept);
    if (!this.#listeners.has(channel)) this.#expireLater(channel, kept);
    return { kept, created: true };
  }

  // One timer per unsubscribed log, refreshed (not recreated) by each new event.
  #expireLater(channel: string, kept: Kept): void {
    if (kept.ttl === 0 || kept.expiry !== undefined) return;
    kept.expiry = setTimeout(() => {
      kept.expiry = undefined;
      if (this.#logs.get(channel) === kept && !this.#listeners.has(channel)) this.#logs.delete(channel);
    }, kept.ttl);
    kept.expiry.unref();
  }
}
