// Shared mode: one connection per URL for all tabs of an origin.
//
// Every source asks a Web Lock named after the URL; the one holding it (the leader) connects and
// relays what it reads to the others over a BroadcastChannel of the same name. When the leader's
// tab closes, the browser releases its lock and the next source in line takes over, connecting
// from its own last event ID: what it already has is not sent again, what it missed is replayed.
//
// Around a takeover the former leader's last messages and the new leader's first ones can reach a
// tab in either order (locks and channels are separate pipes). So a tab applies an event only when
// it continues from its own last id (`prev` is that id); an event whose id it already passed is a
// duplicate and dropped; one further ahead waits, for its predecessors, at most GAP_WAIT_MS.
import type { ErrorDetail } from './events';

/** What shared mode needs of a browser: Web Locks (BroadcastChannel is checked separately). */
export interface LockManagerLike {
  request(name: string, options: { signal: AbortSignal }, callback: () => Promise<void>): Promise<unknown>;
}

/** A dispatch relayed by the leader: an event (`type` set) or only a new last event ID. */
export interface EventRelay {
  readonly kind: 'event';
  /** The last event ID before this dispatch. */
  readonly prev: string;
  readonly id: string;
  readonly type?: string;
  readonly data?: string;
  readonly origin?: string;
}

/** The leader's connection state (after every change, and on request). */
export interface StateRelay {
  readonly kind: 'state';
  readonly state: number;
  readonly id: string;
  /** Set when the change fired an `error` event. */
  readonly error?: ErrorDetail;
}

/** A new source asks the leader for its state. */
export interface HelloRelay {
  readonly kind: 'hello';
}

export type Relay = EventRelay | StateRelay | HelloRelay;

/** The source behind a link. */
export interface Member {
  readonly lastEventId: string;
  /** This source now holds the lock: it connects. */
  lead(): void;
  /** The leader's state changed (or was asked for). */
  follow(state: StateRelay): void;
  /** The next event (or id) in order. */
  apply(relay: EventRelay): void;
  /** Another source asks for the state (called on the leader only). */
  greet(): void;
}

/** How long an event that does not continue this tab's last id waits for the ones before it. */
export const GAP_WAIT_MS = 1000;
/** Ids remembered to recognise duplicates. */
const SEEN_IDS = 512;

/** One source's part in a shared connection. */
export class SharedLink {
  /** True once this source holds the lock. */
  leading = false;
  readonly #member: Member;
  readonly #channel: InstanceType<typeof BroadcastChannel>;
  readonly #abort = new AbortController();
  #release: (() => void) | undefined;
  /** Knows where the shared stream is (the leader told it, or it started with it). */
  #synced = false;
  readonly #seen = new Set<string>();
  #pending: EventRelay[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(name: string, member: Member, locks: LockManagerLike) {
    this.#member = member;
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (event: MessageEvent) => this.#receive(event.data as Relay);
    this.post({ kind: 'hello' });
    locks
      .request(name, { signal: this.#abort.signal }, () => {
        this.leading = true;
        this.#pending = [];
        clearTimeout(this.#timer);
        member.lead();
        return new Promise<void>((release) => (this.#release = release));
      })
      .catch(() => undefined); // close() gave up waiting
  }

  /** Sends to every other source of the URL. */
  post(relay: Relay): void {
    this.#channel.postMessage(relay);
  }

  /** Leaves: stops waiting for the lock, or releases it (the next source takes over). */
  close(): void {
    this.#abort.abort();
    this.#release?.();
    this.#channel.close();
    clearTimeout(this.#timer);
  }

  #receive(relay: Relay): void {
    if (relay.kind === 'hello') {
      if (this.leading) this.#member.greet();
    } else if (this.leading) {
      // A former leader's last words: this source's own connection resumes from its own id.
    } else if (relay.kind === 'state') {
      if (!this.#synced) this.#apply({ kind: 'event', prev: this.#member.lastEventId, id: relay.id });
      this.#member.follow(relay);
    } else {
      this.#pending.push(relay);
      this.#drain(false);
    }
  }

  /** Applies every waiting event that continues this tab's last id; `force`: all of them. */
  #drain(force: boolean): void {
    const pending = this.#pending;
    for (let i = 0; i < pending.length; ) {
      const relay = pending[i]!;
      const continues = relay.prev === this.#member.lastEventId;
      // An event without an id (prev = id) is never replayed, so it cannot be a duplicate.
      if (continues || (this.#synced && relay.prev === relay.id)) this.#apply(relay);
      else if (this.#synced && !this.#seen.has(relay.id) && !force) {
        i += 1;
        continue;
      } else if (force && !this.#seen.has(relay.id)) this.#apply(relay);
      // else: a duplicate, or (not synced yet) an event from before this tab joined.
      pending.splice(i, 1);
      i = 0;
    }
    clearTimeout(this.#timer);
    this.#timer = pending.length > 0 ? setTimeout(() => this.#drain(true), GAP_WAIT_MS) : undefined;
  }

  #apply(relay: EventRelay): void {
    if (relay.prev === this.#member.lastEventId) this.#synced = true;
    this.#seen.add(relay.id);
    if (this.#seen.size > SEEN_IDS) this.#seen.delete(this.#seen.values().next().value!);
    this.#member.apply(relay);
  }
}
