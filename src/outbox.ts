// Per-connection write queue shared by every channel a connection joined. Channels hand it
// frames that are already serialized (one string per broadcast, shared by all subscribers);
// it joins whatever arrives within one event-loop turn and writes it in one call, so a burst
// of N events costs each connection one write instead of N. A single setImmediate flushes every
// connection that has something queued: no timer or closure per connection on the hot path.
import type { SseStream } from './stream';

/** Why a connection was dropped. */
export type DropReason = 'slow-client';

export class Outbox {
  readonly stream: SseStream;
  /** Largest backlog (ours plus the socket's) in bytes before the connection is dropped. */
  limit = Number.POSITIVE_INFINITY;
  /** Set once the slow-client policy dropped this connection. */
  dropped: DropReason | undefined;
  #pending = '';
  #pendingBytes = 0;
  #queued = false;

  constructor(stream: SseStream) {
    this.stream = stream;
  }

  /** Bytes waiting here plus bytes the socket has not taken yet. */
  get backlog(): number {
    return this.#pendingBytes + this.stream.bufferedBytes;
  }

  /**
   * Queues a frame of `bytes` UTF-8 bytes. Returns false when the connection is closed or was
   * dropped because this frame would take its backlog past `limit`.
   */
  enqueue(frame: string, bytes: number): boolean {
    if (this.stream.closed) return false;
    if (this.backlog + bytes > this.limit) {
      this.drop('slow-client');
      return false;
    }
    this.#pending += frame;
    this.#pendingBytes += bytes;
    if (!this.#queued) {
      this.#queued = true;
      this.stream.queued(this);
      queue(this);
    }
    return true;
  }

  /** Writes everything queued now, in one call. */
  flush(): void {
    this.#queued = false;
    if (this.#pendingBytes === 0) return;
    const text = this.#pending;
    this.#pending = '';
    this.#pendingBytes = 0;
    this.stream.writeFrame(text);
  }

  drop(reason: DropReason): void {
    if (this.dropped !== undefined || this.stream.closed) return;
    this.dropped = reason;
    this.#pending = '';
    this.#pendingBytes = 0;
    // Destroy rather than end: ending would wait behind the backlog this client cannot read,
    // and keep its memory. The browser reconnects and replays from history.
    this.stream.destroy();
  }
}

const outboxes = new WeakMap<SseStream, Outbox>();

/** The one outbox of `stream`, created on first use. */
export function outboxOf(stream: SseStream): Outbox {
  let outbox = outboxes.get(stream);
  if (outbox === undefined) {
    outbox = new Outbox(stream);
    outboxes.set(stream, outbox);
  }
  return outbox;
}

let waiting: Outbox[] = [];
let spare: Outbox[] = [];
let scheduled = false;

function queue(outbox: Outbox): void {
  waiting.push(outbox);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}

function flushAll(): void {
  scheduled = false;
  const batch = waiting;
  waiting = spare;
  for (let i = 0; i < batch.length; i += 1) batch[i]!.flush();
  batch.length = 0;
  spare = batch;
}

/** Writes every queued frame now instead of at the end of the turn (used on shutdown). */
export function flushOutboxesNow(): void {
  flushAll();
}
