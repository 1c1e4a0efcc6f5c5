// When queued frames are written. Connections queue what they are given (see connection.ts); one
// flush for the whole process writes every connection with something queued, in one call each.
// On a loopback or LAN the cost of fan-out is the write syscall per connection, not JavaScript,
// so fewer, larger writes are what makes a busy server fast.
//
// The flush runs from setImmediate: no timer or closure per connection on the hot path. If
// frames come slower than writes go out (the time since the last flush ended is at least what
// that flush took), the first frame goes out at the end of the turn it was queued in, as it
// would without any batching. If they come faster, the flush waits as long as the previous flush
// took, but never more than MAX_COALESCE_MS after the first waiting frame, and everything queued
// meanwhile (events published one per event-loop turn by a POST, a Redis message or a timer)
// goes out in one write per connection.
//
// Waiting pays only when the connections waiting were written in the last flush too: a broadcast
// to the same thousands, again and again, joins in one write each. When most of them were not
// (token streams: each connection gets a token every tens of milliseconds, never twice between
// two flushes), a wait joins nothing and only delays every token; then a flush goes at once.
//
// Why the wait follows the flush time: with 5 000 connections one flush is 5 000 write calls,
// tens of milliseconds. A fixed short wait would join only the one or two events published since,
// so every event would pay for a full round of syscalls and a burst would queue up behind them.
// Waiting as long as the last flush took means the server spends at most half its time waiting
// and the other half writing ever larger batches. The delay this adds is 0 on a quiet server and
// at most min(previous flush time, MAX_COALESCE_MS) plus one turn on a busy one.
//
// The state below is per process on purpose: it describes the event loop, which every connection
// of every registry and middleware in the process shares.
import { debug } from '../common/debug';
import * as diagnostics from '../common/diagnostics';

/** What the flusher needs from a connection. */
export interface Flushable {
  /** Writes what is queued. */
  flush(): void;
  /** Called when flush() threw: the connection must give up (it cannot be left half-written). */
  fail(error: unknown): void;
}

/** Longest time a busy server keeps a frame queued to join it with the next ones. */
export const MAX_COALESCE_MS = 5;

let waiting: Flushable[] = [];
let spare: Flushable[] = [];
let scheduled = false;
/** When the first frame of the current cycle was queued. */
let cycleStart = 0;
let lastFlushEnd = Number.NEGATIVE_INFINITY;
let lastFlushTook = 0;
let flushStarted = 0;
/** Connections the flush under way writes. */
let flushSize = 0;
/** Told how long each flush took (seconds): metrics attach here. Empty: no cost at all. */
const observers = new Set<(seconds: number) => void>();

/**
 * Calls `observer` with the duration in seconds of every flush from now on (one per batch of
 * writes, syscalls included). Returns a function that stops it.
 */
export function observeFlushes(observer: (seconds: number) => void): () => void {
  observers.add(observer);
  return () => void observers.delete(observer);
}

/** Flushes so far: marks say which flush a connection was last written in (see Connection). */
let flushes = 0;
/** Connections waiting now that were written in the last flush too. */
let repeats = 0;

/** The mark of the flush under way (or next): 1 to 3, never 0 ("never written"). */
export function flushMark(): number {
  return (flushes % 3) + 1;
}

/** The mark of the flush before it. */
export function previousFlushMark(): number {
  return ((flushes + 2) % 3) + 1;
}

/**
 * Flushes `connection` with the next flush; `repeat`: it was written in the last flush too. The
 * caller makes sure it is scheduled once per flush.
 */
export function scheduleFlush(connection: Flushable, repeat = false): void {
  waiting.push(connection);
  if (repeat) repeats += 1;
  if (!scheduled) {
    scheduled = true;
    cycleStart = performance.now();
    setImmediate(flushWhenDue);
  }
}

function flushWhenDue(): void {
  const busy = cycleStart - lastFlushEnd < lastFlushTook && repeats * 2 >= waiting.length;
  // Re-check on the next turn rather than with a timer: Node's timers have 1 ms resolution.
  if (busy && performance.now() - cycleStart < Math.min(lastFlushTook, MAX_COALESCE_MS)) setImmediate(flushWhenDue);
  else flushAll();
}

/** Writes everything queued now, instead of when due. */
export function flushAll(): void {
  scheduled = false;
  flushStarted = performance.now();
  const batch = waiting;
  waiting = spare;
  flushSize = batch.length;
  repeats = 0;
  for (let i = 0; i < batch.length; i += 1) {
    const connection = batch[i]!;
    // One connection that throws (a wrapped res.write, a broken socket) must not leave every
    // connection after it in the batch queued forever.
    try {
      connection.flush();
    } catch (error) {
      debug('flush failed (%s); connection dropped', (error as Error)?.message ?? String(error));
      connection.fail(error);
    }
  }
  batch.length = 0;
  spare = batch;
  flushes += 1;
  // http's res.write corks the socket and sends on process.nextTick, so the syscalls of this
  // flush run after it returns. This tick is queued behind all of them: it sees the real end.
  process.nextTick(flushEnded);
}

function flushEnded(): void {
  lastFlushEnd = performance.now();
  lastFlushTook = lastFlushEnd - flushStarted;
  if (observers.size > 0) for (const observer of observers) observer(lastFlushTook / 1000);
  if (diagnostics.flush.hasSubscribers) diagnostics.flush.publish({ connections: flushSize, seconds: lastFlushTook / 1000 });
}
