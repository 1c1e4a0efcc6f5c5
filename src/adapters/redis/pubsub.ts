// Delivery of new entries to this process: a Pub/Sub connection of its own, subscribed to the
// channels that have subscribers here. At most once per message: what a process misses (a dropped
// connection, a slot that moved), its channels notice as a gap and read from the log. After the
// connection comes back, every subscribed channel catches up (resync), quiet ones included.
import type { Cluster, Redis } from 'ioredis';
import { debug } from '../../common/debug';
import { SseError } from '../../common/errors';
import type { Position } from '../../log/position';
import type { EntryListener } from '../adapter';
import { explain, isCluster, withTimeout } from './connections';
import { channelKeys, channelOfPubsub } from './keys';
import { decodeMessage } from './wire';

export interface PubSubHooks {
  /** Delivery was interrupted and is back: every channel (or those named) catches up from its log. */
  resync(channels?: readonly string[]): void;
  error(error: Error): void;
  /** A message was skipped: it does not read as an entry (see wire.ts). */
  invalid(what: string, why: string): void;
  /** An entry with a position arrived for `channel` (the adapter's periodic check compares it with the log). */
  seen(channel: string, position: Position): void;
}

export class PubSub {
  readonly #connection: Redis | Cluster;
  readonly #prefix: string;
  readonly #sharded: boolean;
  readonly #timeout: number;
  readonly #hooks: PubSubHooks;
  readonly #listeners = new Map<string, EntryListener>();
  /** SSUBSCRIBEs on a Cluster waiting for their confirmation, woken when ioredis resubscribed (see #ssubscribe). */
  readonly #subscribing = new Set<() => void>();
  #lost = false;
  #closed = false;

  constructor(connection: Redis | Cluster, prefix: string, sharded: boolean, timeout: number, hooks: PubSubHooks) {
    this.#connection = connection;
    this.#prefix = prefix;
    this.#sharded = sharded;
    this.#timeout = timeout;
    this.#hooks = hooks;
    connection.on('close', () => {
      if (this.#closed || this.#lost) return;
      this.#lost = true;
      hooks.error(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', 'lost the Pub/Sub connection to Redis; reconnecting (broadcasts may fail until it is back)'));
    });
    connection.on('ready', () => {
      if (!this.#lost || this.#closed) return;
      this.#lost = false;
      void this.#recover();
    });
    connection.on('message', (name: string, message: string) => this.#receive(name, message));
    connection.on('smessage', (name: string, message: string) => this.#receive(name, message));
    if (isCluster(connection) && sharded) this.#followSlots(connection);
  }

  /** True while the connection is down (a resync follows its return). */
  get lost(): boolean {
    return this.#lost;
  }

  get size(): number {
    return this.#listeners.size;
  }

  connect(): Promise<void> {
    return this.#connection.connect();
  }

  has(channel: string): boolean {
    return this.#listeners.has(channel);
  }

  async subscribe(channel: string, listener: EntryListener): Promise<void> {
    const first = !this.#listeners.has(channel);
    this.#listeners.set(channel, listener);
    if (!first) return;
    try {
      await withTimeout(this.#subscribeTo([channel]), this.#timeout, `subscribing to "${channel}"`);
    } catch (cause) {
      throw new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not subscribe to "${channel}" on Redis: ${explain(cause)}`, { cause });
    }
  }

  unsubscribe(channel: string): boolean {
    if (!this.#listeners.delete(channel)) return false;
    if (this.#closed) return true;
    const connection = this.#connection as Redis;
    const name = channelKeys(this.#prefix, channel).pubsub;
    (this.#sharded ? connection.sunsubscribe(name) : connection.unsubscribe(name)).catch(() => undefined);
    return true;
  }

  /** Messages went missing: on a sharded Cluster, perhaps because a slot moved to another master. */
  refreshSlots(): void {
    if (this.#sharded && isCluster(this.#connection)) this.#connection.refreshSlotsCache();
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
  }

  #subscribeTo(channels: readonly string[]): Promise<unknown> {
    const names = channels.map((c) => channelKeys(this.#prefix, c).pubsub);
    const connection = this.#connection;
    if (!this.#sharded) return (connection as Redis).subscribe(...names);
    if (!isCluster(connection)) return connection.ssubscribe(...names);
    // On a Cluster one SSUBSCRIBE per channel: channels of different slots cannot share one.
    return Promise.all(names.map((name) => this.#ssubscribe(connection, name)));
  }

  // ioredis sends a Cluster's SSUBSCRIBE to the master its slot map names. When the slot has moved
  // since, that master answers MOVED, and ioredis refreshes its map and subscribes the channel
  // again on the right master ('subscribersReady') but never settles the command: then subscribe
  // once more, for a confirmation.
  async #ssubscribe(connection: Cluster, name: string): Promise<void> {
    let wake: (() => void) | undefined;
    const resubscribed = new Promise<'resubscribed'>((resolve) => {
      wake = () => resolve('resubscribed');
    });
    this.#subscribing.add(wake!);
    try {
      if ((await Promise.race([connection.ssubscribe(name), resubscribed])) === 'resubscribed') await connection.ssubscribe(name);
    } finally {
      this.#subscribing.delete(wake!);
    }
  }

  // Sharded Pub/Sub on a Cluster: ioredis keeps one subscriber connection per master and, each
  // time its slot map changes (or a subscriber connection was replaced), subscribes every channel
  // again on its slot's master and emits 'subscribersReady'. But it refreshes that map only when
  // told to, and a slot that moves tells it nothing: Redis just unsubscribes the slot's channels
  // on the old master (an unsolicited SUNSUBSCRIBE, which ioredis reports as a 'nodeError').
  // Refresh then, and after every resubscription let every channel catch up from its log: what
  // was published meanwhile never reached this process.
  #followSlots(connection: Cluster): void {
    connection.on('nodeError', (error: Error) => {
      if (!this.#closed && /\bsunsubscribe\b/.test(error.message)) connection.refreshSlotsCache();
    });
    connection.on('subscribersReady', () => {
      for (const wake of this.#subscribing) wake();
      if (this.#closed || this.#lost || this.#listeners.size === 0) return;
      debug('Redis Cluster subscribers were set up again; every channel catches up from its log');
      this.#hooks.resync();
    });
  }

  // The connection is back: subscribe again to every channel (confirmed), then let every channel
  // catch up from its log, since messages published meanwhile were not received.
  async #recover(): Promise<void> {
    const channels = [...this.#listeners.keys()];
    try {
      if (channels.length > 0) await withTimeout(this.#subscribeTo(channels), this.#timeout, 'subscribing again');
    } catch (cause) {
      this.#hooks.error(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `reconnected to Redis but could not subscribe again: ${explain(cause)}`, { cause }));
    }
    debug('Redis Pub/Sub is back; %d channel(s) catch up from their logs', channels.length);
    this.#hooks.resync();
  }

  // Called by the Redis client for every message: whatever arrives, nothing is thrown from here.
  #receive(name: string, raw: string): void {
    const channel = channelOfPubsub(this.#prefix, name);
    if (channel === undefined) return;
    const listener = this.#listeners.get(channel);
    if (listener === undefined) return;
    const decoded = decodeMessage(raw);
    if ('skipped' in decoded) {
      this.#hooks.invalid(`a message on ${name}`, decoded.skipped);
      return;
    }
    const { entry } = decoded;
    if (entry.offset > 0) this.#hooks.seen(channel, entry);
    try {
      listener(entry);
    } catch (cause) {
      this.#hooks.error(new SseError('ERR_SSE_INVALID_MESSAGE', `delivering a message on ${name} failed; it was skipped`, { cause }));
    }
  }
}
