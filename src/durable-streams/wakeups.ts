// Wakes live readers (long-poll, SSE) when their stream changes, in every process: a message on
// the adapter's Pub/Sub (no history) per change, one adapter subscription per stream per
// process, shared by its readers here. This reuses the adapter's own connection handling
// (reconnects, sharded Pub/Sub, Cluster slots that move) instead of a second copy of it.
//
// A wake-up can be lost (a Pub/Sub connection that dropped; the adapter reports resyncs to the
// registry, not to us), so a waiting reader also looks at the store again every
// `recheckInterval`: a lost wake-up costs at most that much delay, never a reader stuck.
import type { Adapter, PublishedEvent } from '../adapters/adapter';

/** Prefix of the adapter channels that carry wake-ups: reserved (NUL), like runs'. */
export const WAKE_PREFIX = '\u0000ds:';

interface Watched {
  readonly waiters: Set<() => void>;
  /** Wake-ups received. */
  version: number;
  /** Resolves once the adapter subscription is in place. */
  ready: Promise<void>;
  users: number;
}

/** A reader's registration: wake-ups that happen after it are not missed. */
export interface Watch {
  /**
   * Resolves true when the stream changed since the last call (or since the watch began), false
   * after `ms` without a change or once the watch's signal aborts.
   */
  next(ms: number): Promise<boolean>;
  release(): void;
}

/** What live readers wait on. */
export interface WakeSource {
  /** Starts watching `path` until `signal` aborts or release(); resolves once changes anywhere reach the watch. */
  watch(path: string, signal: AbortSignal): Promise<Watch>;
  /** Tells every process's readers of `path` that it changed (appended, closed, deleted). */
  notify(path: string): Promise<void>;
  /** How many wake-ups for `path` reached this process while it was watched (see SharedReads). */
  version(path: string): number;
}

export class Wakeups implements WakeSource {
  readonly #adapter: Adapter;
  readonly #watched = new Map<string, Watched>();
  /** Distinguishes this instance's channels from another router's on the same adapter. */
  readonly #scope: string;

  constructor(adapter: Adapter, scope: string) {
    this.#adapter = adapter;
    this.#scope = scope;
  }

  #channel(path: string): string {
    return `${WAKE_PREFIX}${this.#scope}:${path}`;
  }

  /** Starts watching `path`; resolves once wake-ups from every process reach this watch. */
  async watch(path: string, signal: AbortSignal): Promise<Watch> {
    let watched = this.#watched.get(path);
    if (watched === undefined) {
      const waiters = new Set<() => void>();
      const channel = this.#channel(path);
      const entry: Watched = { waiters, version: 0, ready: Promise.resolve(), users: 0 };
      entry.ready = this.#adapter.subscribe(channel, () => {
        entry.version += 1;
        for (const wake of [...waiters]) wake();
      });
      watched = entry;
      this.#watched.set(path, watched);
    }
    watched.users += 1;
    const current = watched;
    // One abort listener and one timer per watch, not per wait: a stream with 500 SSE readers
    // waits 500 times per append.
    let changed = false;
    let pending: ((value: boolean) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    let timerMs = 0;
    const settle = (value: boolean): void => {
      const resolve = pending;
      if (resolve === undefined) return;
      pending = undefined;
      if (value) changed = false;
      resolve(value);
    };
    const mark = (): void => {
      changed = true;
      settle(true);
    };
    const aborted = (): void => settle(false);
    current.waiters.add(mark);
    signal.addEventListener('abort', aborted, { once: true });
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', aborted);
      settle(false);
      current.waiters.delete(mark);
      current.users -= 1;
      if (current.users === 0 && this.#watched.get(path) === current) {
        this.#watched.delete(path);
        this.#adapter.unsubscribe(this.#channel(path));
      }
    };
    try {
      await current.ready;
    } catch (error) {
      release();
      // A failed subscription is dropped, so the next reader tries again.
      if (this.#watched.get(path) === current) this.#watched.delete(path);
      throw error;
    }
    return {
      release,
      next: (ms) => {
        if (changed) {
          changed = false;
          return Promise.resolve(true);
        }
        if (signal.aborted || released) return Promise.resolve(false);
        return new Promise<boolean>((resolve) => {
          pending = resolve;
          // A timer left from an earlier wait is restarted, so it never cuts this one short.
          if (timer !== undefined && timerMs === ms) {
            timer.refresh();
          } else {
            clearTimeout(timer);
            timerMs = ms;
            timer = setTimeout(() => settle(false), ms);
          }
        });
      },
    };
  }

  version(path: string): number {
    return this.#watched.get(path)?.version ?? 0;
  }

  /** Tells every process's readers of `path` that it changed (appended, closed, deleted). */
  async notify(path: string): Promise<void> {
    const event: PublishedEvent = { event: undefined, text: '', kind: 'text', id: undefined, origin: undefined };
    await this.#adapter.publish(this.#channel(path), event, { history: 0, ttl: 0 });
  }
}
