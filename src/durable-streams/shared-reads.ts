// Live readers of one stream wake together and read the same thing: a store in front of another
// that shares a read still in flight with every identical read (same stream, position, size,
// and wake-up count). Only reads of readers woken by a wake-up go through it, and the wake-up
// count in the key keeps them exact: a read started after this process heard of an append is
// never answered by one started before it. (Other reads do not share: a client that appended
// and then reads must see its append, which a read already in flight may not hold.) On Redis,
// 500 SSE readers woken by an append then cost one script call, not 500.
import type { AppendOutcome, AppendRequest, CreateOutcome, CreateRequest, ReadOutcome, StreamInfo, StreamStore } from './store';

export class SharedReads implements StreamStore {
  readonly #store: StreamStore;
  readonly #version: (path: string) => number;
  readonly #inFlight = new Map<string, Promise<ReadOutcome | undefined>>();

  /** `version(path)`: how many wake-ups this process has had for the stream. */
  constructor(store: StreamStore, version: (path: string) => number) {
    this.#store = store;
    this.#version = version;
  }

  read(path: string, position: number, maxBytes: number, touch: boolean): Promise<ReadOutcome | undefined> {
    const key = `${this.#version(path)}\0${position}\0${maxBytes}\0${touch ? 1 : 0}\0${path}`;
    const shared = this.#inFlight.get(key);
    if (shared !== undefined) return shared;
    const read = this.#store.read(path, position, maxBytes, touch);
    this.#inFlight.set(key, read);
    const forget = (): void => {
      this.#inFlight.delete(key);
    };
    read.then(forget, forget);
    return read;
  }

  create(path: string, request: CreateRequest): Promise<CreateOutcome> {
    return this.#store.create(path, request);
  }

  append(path: string, request: AppendRequest): Promise<AppendOutcome> {
    return this.#store.append(path, request);
  }

  info(path: string): Promise<StreamInfo | undefined> {
    return this.#store.info(path);
  }

  delete(path: string): Promise<boolean> {
    return this.#store.delete(path);
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}
