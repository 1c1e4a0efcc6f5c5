// One connection in one channel, and how it gets there: authorizing → replaying → live → closed.
//
// A subscription is a cursor over its channel's log: the position of the last entry this
// connection has. It takes an entry only if it is the next one after the cursor; an older one
// is a duplicate and skipped; a newer one means something is missing, which is read from the log
// first. Replay after a reconnect, live delivery, and catching up after the adapter lost messages
// are all this one rule, so no interleaving can produce a gap, a duplicate or a reorder.
//
// The states:
// - authorizing: the registry's authorize hook has not answered; nothing is joined or sent.
// - replaying: joined (entries the channel fans out are kept in `pending`) while the log is read
//   after the client's Last-Event-ID.
// - catching up: the cursor is ahead of what the channel itself has fanned out (the channel is
//   catching up on its own); every entry goes through the cursor rule.
// - live: the cursor is the channel's position. Without a filter the connection is then kept in
//   the channel as itself: no object per subscriber on the hot path.
// - closed: the connection left; the channel forgets it.
import type { Request } from 'express';
import { SseError, fieldError } from '../common/errors';
import type { LogEntry, ReadResult } from '../log/entry';
import { checkOptionNames, checkOptionsObject } from '../common/checks';
import { formatPosition, parseLastEventId, type ClientPosition, type Position } from '../log/position';
import { debug } from '../common/debug';
import type { Stream } from '../stream/stream';

/** Why a connection may have missed events: it gets a `reset` event, then what the log holds. */
export type ResetReason =
  /** The Last-Event-ID is not a position in the channel's log (another process life, another deployment, garbage). */
  | 'unknown-id'
  /** The position is older than the oldest event the log still holds. */
  | 'evicted'
  /** Delivery here was interrupted and the log no longer continues where this connection was (it was lost or expired). */
  | 'lost';

/** What a subscriber's filter sees of an event. */
export interface ChannelEvent {
  readonly channel: string;
  readonly data: unknown;
  readonly event: string | undefined;
  readonly id: string | undefined;
}

export type Filter = (event: ChannelEvent) => boolean;

/** Options of `channel.subscribe()` and `registry.subscribe()`. */
export interface SubscribeOptions {
  /** Delivers only the events for which it returns true. A filter that throws delivers nothing. */
  readonly filter?: Filter;
  /**
   * Replays history after the client's `Last-Event-ID` (or `lastEventId` query parameter).
   * @default true
   */
  readonly replay?: boolean;
}

/**
 * Decides whether the request may subscribe to a channel: `true` allows; `false`, any other value,
 * a rejected promise or a throw refuses. May return a promise (a database lookup).
 */
export type Authorize = (req: Request, channel: string) => boolean | Promise<boolean>;

/** What a subscription needs of its channel (implemented by Channel). */
export interface Feed {
  readonly name: string;
  readonly hasHistory: boolean;
  readonly closed: boolean;
  readonly maxBufferedBytes: number;
  /** The newest position fanned out here; undefined until the channel knows it. */
  readonly position: Position | undefined;
  readonly authorize: Authorize | undefined;
  /** Milliseconds an async authorize hook may take. */
  readonly authorizeTimeout: number;
  report(error: Error): void;
  has(stream: Stream): boolean;
  /** Adds the connection, as itself or as `subscription`. */
  add(stream: Stream, subscription: Subscription | undefined): void;
  /** The subscription caught up: keep the connection plain if it has no filter. */
  settle(subscription: Subscription): void;
  /** True while `subscription` is still this channel's entry for its connection. */
  isCurrent(subscription: Subscription): boolean;
  /** Reads the log (after the channel's delivery is in place); `undefined`: the head only. */
  read(after: readonly Position[] | undefined): Promise<ReadResult>;
  /** Queues one entry for the subscription's connection, through its filter; false when not queued. */
  deliver(subscription: Subscription, entry: LogEntry): boolean;
  /** Queues a `reset` event for the connection. */
  reset(stream: Stream, reason: ResetReason): void;
  /** Counts a replay. */
  countReplay(): void;
}

const REPLAYING = 1;
const CATCHING_UP = 2;
const LIVE = 3;

const KNOWN_SUBSCRIBE_OPTIONS = new Set(['filter', 'replay']);

function noop(): void {}

export class Subscription {
  readonly stream: Stream;
  readonly filter: Filter | undefined;
  #state: number;
  /** The last entry this connection has (while not live; live, it is the channel's position). */
  #cursor: Position | undefined;
  /** Entries the channel fanned out while a read was in flight. */
  #pending: LogEntry[] | undefined;
  /** What the replay read from the log, between place() and start(). */
  #replay: readonly LogEntry[] | undefined;
  /** The cursor the last refill read after (one read per position: no loop on a log that lacks them). */
  #refilledFrom: Position | undefined;

  constructor(stream: Stream, filter: Filter | undefined, live: boolean) {
    this.stream = stream;
    this.filter = filter;
    this.#state = live ? LIVE : REPLAYING;
    this.#pending = live ? undefined : [];
  }

  get live(): boolean {
    return this.#state === LIVE;
  }

  /** Where this connection is, on the wire (undefined before it knows). */
  get token(): string | undefined {
    return this.#cursor === undefined ? undefined : formatPosition(this.#cursor);
  }

  /** The channel fanned out `entry` while this subscription was not live. */
  receive(feed: Feed, entry: LogEntry): void {
    if (this.#state === REPLAYING) {
      this.#pending!.push(entry);
      return;
    }
    if (this.#take(feed, entry)) this.#settleIfCaughtUp(feed);
    else this.#refill(feed, [entry]);
  }

  /**
   * Step one of a replay, for every channel of the connection before any of them sends a frame:
   * where the connection is in this channel, from the log's answer. Each frame's id carries the
   * connection's position in every channel, so a connection cut after any frame of the replay
   * resumes exactly in all of them. Returns why the channel starts with a `reset`, if it does.
   */
  place(result: ReadResult, client: ClientPosition | undefined, replay: Replay): ResetReason | undefined {
    let reason: ResetReason | undefined;
    let cursor: Position = result.head;
    let events: readonly LogEntry[] = [];
    if (client !== undefined) {
      events = result.events;
      if (result.matched >= 0 && !result.evicted) {
        cursor = client.positions[result.matched]!;
      } else {
        // Evicted, or no position of the id is in this log: another epoch, or none for this
        // channel at all (a channel added to the subscription, an id cut short). Never "from now".
        reason = result.matched >= 0 ? 'evicted' : 'unknown-id';
        cursor = { epoch: result.head.epoch, offset: result.head.offset - events.length };
      }
    }
    this.#cursor = cursor;
    this.#replay = events;
    replay.moved();
    return reason;
  }

  /**
   * Step two: delivers what the client missed, then what the channel fanned out meanwhile, and
   * goes live (or keeps catching up).
   */
  start(feed: Feed, replay: Replay): void {
    const events = this.#replay ?? [];
    this.#replay = undefined;
    this.#deliverAll(feed, events, replay);
    this.#drainPending(feed, replay);
  }

  /**
   * The channel's position moved without fanning out an entry (it read its head from the log):
   * a subscription catching up behind it has nothing coming to show the gap, so it reads it.
   */
  nudge(feed: Feed): void {
    if (this.#state === CATCHING_UP) this.#settleIfCaughtUp(feed);
  }

  /** The read failed: the connection is closed so the client retries. */
  fail(feed: Feed, cause: unknown): void {
    feed.report(new SseError('ERR_SSE_REPLAY_FAILED', `reading the log of "${feed.name}" failed; the connection was closed so the client retries`, { cause }));
    this.stream.close();
  }

  // Delivers entries that follow the cursor; returns false at the first gap.
  #take(feed: Feed, entry: LogEntry, replay?: Replay): boolean {
    const cursor = this.#cursor!;
    if (entry.epoch !== cursor.epoch) return false;
    if (entry.offset <= cursor.offset) return true; // already has it
    if (entry.offset !== cursor.offset + 1) return false;
    this.#advance(feed, entry, replay);
    return true;
  }

  #deliverAll(feed: Feed, events: readonly LogEntry[], replay?: Replay): void {
    for (const entry of events) this.#advance(feed, entry, replay);
  }

  #advance(feed: Feed, entry: LogEntry, replay: Replay | undefined): void {
    this.#cursor = entry;
    replay?.moved();
    if (feed.deliver(this, entry)) replay?.sent();
  }

  #drainPending(feed: Feed, replay?: Replay): void {
    const pending = this.#pending ?? [];
    this.#pending = undefined;
    this.#state = CATCHING_UP;
    for (let i = 0; i < pending.length; i += 1) {
      if (!this.#take(feed, pending[i]!, replay)) {
        this.#refill(feed, pending.slice(i));
        return;
      }
    }
    this.#settleIfCaughtUp(feed);
  }

  #settleIfCaughtUp(feed: Feed): void {
    const position = feed.position;
    const cursor = this.#cursor!;
    if (position === undefined || position.epoch !== cursor.epoch) return;
    if (position.offset > cursor.offset) {
      // Behind the channel, which will not fan out what is in between again (its first read of
      // the log came after this connection's replay read, past events that read did not return):
      // read them, unless that was just done from here (the log then does not have them).
      if (this.#refilledFrom !== cursor) this.#refill(feed, []);
      return;
    }
    if (position.offset !== cursor.offset) return;
    this.#state = LIVE;
    this.#cursor = undefined;
    feed.settle(this);
  }

  // Something between the cursor and `pending[0]` is missing: read it from the log, then go on.
  #refill(feed: Feed, pending: LogEntry[]): void {
    this.#state = REPLAYING;
    this.#pending = pending;
    const cursor = this.#cursor!;
    this.#refilledFrom = cursor;
    feed.read([cursor]).then(
      (result) => {
        if (!feed.isCurrent(this)) return;
        if (result.matched === -1 || result.evicted) {
          const reason: ResetReason = result.evicted ? 'evicted' : 'lost';
          debug('connection on "%s" lost its place in the log (%s)', feed.name, reason);
          feed.reset(this.stream, reason);
          this.#cursor = { epoch: result.head.epoch, offset: result.head.offset - result.events.length };
        }
        this.#deliverAll(feed, result.events);
        this.#drainPending(feed);
      },
      (cause: unknown) => {
        if (feed.isCurrent(this)) this.fail(feed, cause);
      },
    );
  }
}

/**
 * Subscribes a connection to channels: asks `authorize` (before any header goes out), joins,
 * replays after the client's Last-Event-ID, and goes live. Returns a function that unsubscribes.
 */
export function subscribe(
  feeds: readonly Feed[],
  stream: Stream,
  options: SubscribeOptions,
  leave: (feed: Feed) => void,
  from?: ClientPosition,
): () => void {
  checkOptionsObject(options, 'subscribe()');
  checkOptionNames(options, KNOWN_SUBSCRIBE_OPTIONS, 'subscribe()');
  const { filter, replay = true } = options;
  if (filter !== undefined && typeof filter !== 'function') {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'filter', 'a function', filter);
  }
  for (const feed of feeds) {
    if (feed.closed) throw new SseError('ERR_SSE_REGISTRY_CLOSED', `channel "${feed.name}" is closed`);
  }
  if (stream.closed || feeds.length === 0) return noop;
  const authorize = feeds[0]!.authorize;
  const join = (): (() => void) => joinAll(feeds, stream, filter, replay, leave, from);
  if (authorize === undefined) return join();
  return authorizeThenJoin(authorize, feeds, stream, join);
}

// Asks the authorize hook about every channel, before any header goes out. Synchronous answers
// decide at once; a promise claims the stream (nobody opens it) until it settles, at most
// `authorizeTimeout` ms. Refused (false, anything but true): 403; a hook that throws, rejects or
// times out: 500 or 503; the registry closed meanwhile: 503. No channel is joined then, and no
// stream byte is sent.
function authorizeThenJoin(authorize: Authorize, feeds: readonly Feed[], stream: Stream, join: () => () => void): () => void {
  const req = stream.request as Request;
  const first = feeds[0]!;
  const fail = (cause: unknown): void => {
    first.report(new SseError('ERR_SSE_AUTHORIZE_FAILED', 'the authorize hook threw; the subscription was refused', { cause }));
    stream.refuse(500, 'express-sse-hub: the subscription could not be authorized\n');
  };
  const decide = (verdicts: readonly unknown[]): (() => void) => {
    if (stream.closed) return noop;
    if (feeds.some((feed) => feed.closed)) {
      stream.refuse(503, 'express-sse-hub: the server is shutting down; retry later\n', stream.retryAfter);
      return noop;
    }
    const refused = feeds.find((_, i) => verdicts[i] !== true);
    if (refused === undefined) return join();
    debug('refused a subscription to "%s" (authorize)', refused.name);
    if (stream.opened) {
      // The stream went out before the hook answered (a route-mounted sse() and a route that
      // awaited before subscribing): the client cannot be told 403 any more.
      first.report(
        new SseError(
          'ERR_SSE_AUTHORIZE_FAILED',
          `subscription to "${refused.name}" refused after the stream was opened, so the client got 200, not 403; subscribe before awaiting, or mount sse() app-wide`,
        ),
      );
    }
    stream.refuse(403, `express-sse-hub: not allowed to subscribe to channel "${refused.name}"\n`);
    return noop;
  };
  const verdicts: unknown[] = [];
  try {
    for (const feed of feeds) verdicts.push(authorize(req, feed.name));
  } catch (cause) {
    // The verdicts already given are not waited for: one that rejects later must not go unhandled.
    for (const verdict of verdicts) if (isThenable(verdict)) Promise.resolve(verdict).catch(noop);
    fail(cause);
    return noop;
  }
  if (!verdicts.some(isThenable)) return decide(verdicts);
  stream.claim();
  let unsubscribe: (() => void) | undefined;
  let settled = false;
  const timer = setTimeout(() => {
    if (settled) return;
    settled = true;
    first.report(new SseError('ERR_SSE_AUTHORIZE_FAILED', `the authorize hook did not answer within ${first.authorizeTimeout} ms; the subscription was refused`));
    stream.refuse(503, 'express-sse-hub: the subscription could not be authorized in time; retry later\n', stream.retryAfter);
  }, first.authorizeTimeout);
  timer.unref();
  const finish = (): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    return true;
  };
  Promise.all(verdicts)
    .then(
      (answers) => {
        if (finish()) unsubscribe = decide(answers);
      },
      (cause: unknown) => {
        if (finish()) fail(cause);
      },
    )
    .catch((error: unknown) => {
      // Opening the stream threw (a connectionKey function, a route that answered meanwhile).
      first.report(error instanceof Error ? error : new Error(String(error)));
      stream.refuse(500, 'express-sse-hub: the event stream could not be opened\n');
    });
  return () => {
    if (finish()) stream.refuse(403, 'express-sse-hub: the subscription was cancelled\n');
    unsubscribe?.();
  };
}

function isThenable(value: unknown): boolean {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

// `from`: where the connection starts instead of its Last-Event-ID (a run's follower without
// one starts at the beginning of the run's log).
function joinAll(
  feeds: readonly Feed[],
  stream: Stream,
  filter: Filter | undefined,
  replay: boolean,
  leave: (feed: Feed) => void,
  from: ClientPosition | undefined,
): () => void {
  const client = from ?? (replay ? parseLastEventId(stream.lastEventId) : undefined);
  // A first connection goes live at once where every channel with history knows its position
  // (that is where it starts). If one must read its head first, they all wait for it: a frame of
  // one carries the position in all (a client cut before the read would lose the others). Its
  // stream opens once the head is known: an event published after the client saw it open is
  // after its start (published before the read answered, it would be in the head and skipped).
  const positioned = client === undefined && feeds.every((feed) => !feed.hasHistory || feed.has(stream) || feed.position !== undefined);
  if (client === undefined && !positioned && !stream.opened) {
    if (!stream.hold()) return noop; // refused by a connection limit or a shutdown
  } else {
    stream.open();
    if (stream.closed) return noop;
  }
  const replaying: [Feed, Subscription][] = [];
  const joined: Feed[] = [];
  let liveHistory = false;
  for (const feed of feeds) {
    if (feed.has(stream)) continue;
    stream.limitBacklog(feed.maxBufferedBytes);
    const live = !feed.hasHistory || positioned;
    const subscription = live && filter === undefined ? undefined : new Subscription(stream, filter, live);
    feed.add(stream, subscription);
    joined.push(feed);
    if (feed.hasHistory && live) liveHistory = true;
    if (!live) replaying.push([feed, subscription!]);
  }
  // Where the connection starts in the channels that are live already, before any of their events.
  if (liveHistory) announce(stream);
  if (replaying.length > 0) void replayAll(replaying, stream, client);
  if (joined.length === 0) return noop;
  // Only the caller holds this function: unused, it is garbage at once.
  return () => {
    for (const feed of joined) leave(feed);
  };
}

/**
 * Whether the client holds the connection's current position during a replay: every frame a
 * channel queues carries the position in every channel (see Channel#enqueue), so the client is up
 * to date after a frame unless some cursor moved after it (a filter skipped an event, a reset).
 */
export class Replay {
  #moves = 0;
  #sentAt = -1;

  moved(): void {
    this.#moves += 1;
  }

  sent(): void {
    this.#sentAt = this.#moves;
  }

  /** The last frame queued did not carry the position the connection has now. */
  get stale(): boolean {
    return this.#sentAt !== this.#moves;
  }
}

// Reads every channel's log at once; once all have answered, places the connection in each of
// them, sends every `reset` (before any event, so an id never claims a position in a channel the
// client was not told it may have missed events of), then delivers channel by channel.
async function replayAll(replaying: readonly [Feed, Subscription][], stream: Stream, client: ClientPosition | undefined): Promise<void> {
  // No id: only the head (where this connection starts). An id that is not a position at all:
  // everything the log holds, after a reset.
  const after = client === undefined ? undefined : client.valid ? client.positions : [];
  const results = await readAll(replaying, stream, after);
  // A held first connection opens now, whatever the reads said: a failed one is closed below,
  // which an EventSource retries (it gives up on an answer other than 200).
  if (!openHeld(stream, replaying[0]![0])) return;
  const current = replaying.filter(([feed, subscription]) => feed.isCurrent(subscription)); // some may have left meanwhile
  for (const [feed, subscription] of current) {
    const result = results[replaying.findIndex(([, s]) => s === subscription)]!;
    if (result.status === 'rejected') {
      // Nothing is sent: the client retries with the same id.
      subscription.fail(feed, result.reason);
      return;
    }
  }
  if (current.length === 0 || stream.closed) return;
  const replay = new Replay();
  const resets: [Feed, ResetReason][] = [];
  for (const [feed, subscription] of current) {
    const result = results[replaying.findIndex(([, s]) => s === subscription)] as PromiseFulfilledResult<ReadResult>;
    const reason = subscription.place(result.value, client, replay);
    if (client !== undefined) feed.countReplay();
    if (reason !== undefined) resets.push([feed, reason]);
  }
  for (const [feed, reason] of resets) {
    debug('replay of "%s" starts with a reset (%s)', feed.name, reason);
    feed.reset(stream, reason);
  }
  // A first connection is told where it starts before any event (an event published while its
  // head was read may be on its way): a client cut before that event still resumes exactly.
  if (client === undefined && announce(stream)) replay.sent();
  for (const [feed, subscription] of current) if (feed.isCurrent(subscription)) subscription.start(feed, replay);
  if (replay.stale) announce(stream);
}

/** Longest a first connection's response waits for where it starts (then it ends, and is retried). */
export const HOLD_LIMIT_MS = 10_000;

// Reads every channel's log at once. A held first connection waits at most HOLD_LIMIT_MS for
// them (a read retried while Redis is away can take longer): then it is opened and ended, so the
// client retries instead of waiting with no answer at all.
async function readAll(replaying: readonly [Feed, Subscription][], stream: Stream, after: readonly Position[] | undefined): Promise<PromiseSettledResult<ReadResult>[]> {
  const reads = Promise.allSettled(replaying.map(([feed]) => feed.read(after)));
  if (stream.opened) return reads;
  const timer = setTimeout(() => {
    if (stream.opened || stream.closed) return;
    const [feed] = replaying[0]!;
    feed.report(new SseError('ERR_SSE_REPLAY_FAILED', `reading where a new connection to "${feed.name}" starts took over ${HOLD_LIMIT_MS} ms; the connection was closed so the client retries`));
    if (openHeld(stream, feed)) stream.close();
  }, HOLD_LIMIT_MS);
  try {
    return await reads;
  } finally {
    clearTimeout(timer);
  }
}

// Opens a stream held during its head read; false if it cannot be (the client left, or the
// route answered otherwise meanwhile).
function openHeld(stream: Stream, feed: Feed): boolean {
  if (stream.opened || stream.closed) return !stream.closed;
  if (stream.res.headersSent) {
    stream.close(); // the route answered otherwise: nothing to open, nothing to report
    return false;
  }
  try {
    stream.open();
  } catch (error) {
    feed.report(error instanceof Error ? error : new Error(String(error)));
    stream.refuse(500, 'express-sse-hub: the event stream could not be opened\n');
    return false;
  }
  return !stream.closed;
}

/**
 * Tells the client where it is with an id-only frame (no event fires; the browser keeps the id
 * for its next Last-Event-ID), unless that is what it already said.
 */
function announce(stream: Stream): boolean {
  if (stream.closed) return false;
  const id = stream.positionId();
  if (id === undefined || id === stream.lastEventId) return false;
  stream.enqueue(`id: ${id}\n\n`);
  return true;
}
