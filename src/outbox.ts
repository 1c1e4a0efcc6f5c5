// Per-connection write queue shared by every channel a connection joined. Channels hand it
// frames that are already serialized (one string per broadcast, shared by all subscribers); it
// joins what arrives close together and writes it in one call. On a loopback or LAN the cost of
// fan-out is the write syscall per connection, not JavaScript, so fewer, larger writes are what
// makes a busy server fast.
//
// When to write: one shared flush for all connections, run by setImmediate (no timer or closure
// per connection on the hot path). If events come slower than writes go out (the time since
// the last flush ended is at least what that flush took), the first event goes out at the end of
// the turn it was sent in, as it would without any batching. If they come faster, the flush is
// held for as long as the previous flush took, but never more than HOLD_MAX_MS from the first
// waiting event, and everything sent meanwhile (events published one per event-loop turn by a
// POST, a Redis message or a timer) goes out in one write per connection.
//
// Why the hold follows the flush time: with 5 000 connections one flush is 5 000 write calls,
// tens of milliseconds. A fixed short hold would join only the one or two events published since,
// so every event would pay for a full round of syscalls and a burst would queue up behind them.
// Holding as long as the last flush took means the server spends at most half its time waiting
// and the other half writing ever larger batches. The delay coalescing adds is therefore 0 on a
// quiet server and at most min(previous flush time, HOLD_MAX_MS) plus one turn on a busy one.
import type { SseStream } from './stream';

/** Why a connection was dropped. */
export type DropReason = 'slow-client';

/**
 * "Never drop": 2^30 - 1 bytes (1 GiB). Kept as a small integer so the field never holds a
 * boxed double (16 bytes more per connection).
 */
export const NO_LIMIT = 0x3fffffff;

const QUEUED_FLAG = 1;
const DROPPED_FLAG = 2;

export class Outbox {
  readonly stream: SseStream;
  /** Largest socket backlog in bytes before the connection is dropped. */
  limit = NO_LIMIT;
  #pending = '';
  #pendingBytes = 0;
  /** QUEUED_FLAG | DROPPED_FLAG, in one small integer rather than two fields per connection. */
  #state = 0;

  constructor(stream: SseStream) {
    this.stream = stream;
  }

  /** Why the connection was dropped, once the slow-client policy dropped it. */
  get dropped(): DropReason | undefined {
    return (this.#state & DROPPED_FLAG) === 0 ? undefined : 'slow-client';
  }

  /** Queues a frame of `bytes` UTF-8 bytes. Returns false when the connection is closed. */
  enqueue(frame: string, bytes: number): boolean {
    if (this.stream.closed) return false;
    this.#pending += frame;
    this.#pendingBytes += bytes;
    if ((this.#state & QUEUED_FLAG) === 0) {
      this.#state |= QUEUED_FLAG;
      queue(this);
    }
    return true;
  }

  /**
   * Writes everything queued now, in one call; or drops the connection if its socket still holds
   * more than `limit` bytes from earlier writes. The check comes before the write: one large
   * coalesced write is in flight by design; a client that has not taken the previous ones by the
   * next flush is the one that does not read. Memory per connection thus stays below `limit`
   * plus what one flush window adds.
   */
  flush(): void {
    this.#state &= ~QUEUED_FLAG;
    if (this.#pendingBytes === 0) return;
    if (this.stream.bufferedBytes > this.limit) {
      this.#drop();
      return;
    }
    const text = this.#pending;
    this.#pending = '';
    this.#pendingBytes = 0;
    this.stream.writeFrame(text);
  }

  #drop(): void {
    if ((this.#state & DROPPED_FLAG) !== 0 || this.stream.closed) return;
    this.#state |= DROPPED_FLAG;
    this.#pending = '';
    this.#pendingBytes = 0;
    // Destroy rather than end: ending would wait behind the backlog this client cannot read,
    // and keep its memory. The browser reconnects and replays from history.
    this.stream.destroy();
  }
}

/** The one outbox of `stream`, created on first use and kept on the stream itself. */
export function outboxOf(stream: SseStream): Outbox {
  return (stream.outbox ??= new Outbox(stream)) as Outbox;
}

/** Longest time a busy server holds an event to join it with the next ones. */
export const HOLD_MAX_MS = 5;

let waiting: Outbox[] = [];
let spare: Outbox[] = [];
let scheduled = false;
/** When the first event of the current cycle was queued. */
let cycleStart = 0;
let lastFlushEnd = Number.NEGATIVE_INFINITY;
let lastFlushTook = 0;
let flushStarted = 0;

function queue(outbox: Outbox): void {
  waiting.push(outbox);
  if (!scheduled) {
    scheduled = true;
    cycleStart = performance.now();
    setImmediate(flushWhenDue);
  }
}

function flushWhenDue(): void {
  const busy = cycleStart - lastFlushEnd < lastFlushTook;
  // Re-check on the next turn rather than with a timer: Node's timers have 1 ms resolution.
  if (busy && performance.now() - cycleStart < Math.min(lastFlushTook, HOLD_MAX_MS)) setImmediate(flushWhenDue);
  else flushAll();
}

function flushAll(): void {
  scheduled = false;
  flushStarted = performance.now();
  const batch = waiting;
  waiting = spare;
  for (let i = 0; i < batch.length; i += 1) batch[i]!.flush();
  batch.length = 0;
  spare = batch;
  // http's res.write corks the socket and sends on process.nextTick, so the syscalls of this
  // flush run after it returns. This tick is queued behind all of them: it sees the real end.
  process.nextTick(flushEnded);
}

function flushEnded(): void {
  lastFlushEnd = performance.now();
  lastFlushTook = lastFlushEnd - flushStarted;
}

/** Writes every queued frame now instead of when due (used on shutdown). */
export function flushOutboxesNow(): void {
  flushAll();
}
