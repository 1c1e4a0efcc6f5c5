// The per-connection queue: the one owner of every byte a connection writes. Direct sends,
// comments, heartbeats, channel frames, replays and the last event all go through enqueue(), in
// the order they were given; the flusher (flusher.ts) writes what is queued in one call, through
// the transport (transport.ts). Before each write the connection is judged: one whose socket still
// holds more than `maxBacklog` bytes from earlier writes does not read, and is dropped. end()
// writes what is queued, then ends the response.
import { debug } from '../common/debug';
import * as diagnostics from '../common/diagnostics';
import { addTo, removeFrom, type Few } from '../common/few';
import { flushMark, previousFlushMark, scheduleFlush } from './flusher';
import { STALL_INTERVALS, TICKS_PER_INTERVAL } from './heartbeat';
import { joinShared, type ResponseLike, type SharedText, type Transport } from './transport';

/** Why a connection was dropped. */
export type DropReason = 'slow-client' | 'write-failed';

/**
 * "Never drop": 2^30 - 1 bytes (1 GiB). Kept as a small integer so the field never holds a
 * boxed double (16 bytes more per connection).
 */
export const NO_LIMIT = 0x3fffffff;


/**
 * Told once when a connection closes: a function, or an object told which connection (a channel
 * is the hook of all its connections, so it needs no closure per connection).
 */
export type CloseHook = (() => void) | { connectionClosed(connection: Connection): void };

// Connection#flags bits. One small integer rather than a field per flag: idle connections are
// mostly their per-connection objects, and there may be tens of thousands.
export const OPENED = 1;
export const CLOSED = 2;
/** The shared close listener is on the response. */
const WATCHING = 4;
/** In the flusher's batch. */
const QUEUED = 8;
const DROPPED = 16;
/** With DROPPED: the write failed (else the client was too slow). */
const WRITE_FAILED = 64;
/** The response emitted 'close': its socket is done with it (or gone). */
const RELEASED = 32;
/** With DROPPED: a registry counted the drop (a connection in several channels is one drop). */
const DROP_COUNTED = 128;
/** Quiet heartbeat ticks since the last write, in bits 8-10. */
const QUIET_SHIFT = 8;
const QUIET_MASK = 7 << QUIET_SHIFT;
/** The flush this connection was last written in, as flusher.ts marks it (1 to 3; 0: never), in bits 11-12. */
const CYCLE_SHIFT = 11;
const CYCLE_MASK = 3 << CYCLE_SHIFT;
/** First bit free for subclasses. */
export const FIRST_FREE_FLAG = 1 << 13;

/** Where a response keeps its connection (`res.sse` is its public face, see sse-stream.ts). */
const CONNECTION = Symbol('express-sse-hub connection');

// One listener function shared by every response, instead of a closure (and a once() wrapper)
// per connection. It finds the connection where watch() left it on the response.
function onResponseClose(this: { [CONNECTION]?: unknown }): void {
  const connection = this[CONNECTION];
  if (connection instanceof Connection) connection.released();
}

export class Connection {
  /** */
  readonly res: ResponseLike;
  #transport: Transport | undefined;
  /** What is queued: text, or one shared frame alone (written without encoding it again). */
  #queued: string | SharedText = '';
  #queuedBytes = 0;
  #maxBacklog = NO_LIMIT;
  #closeHooks: Few<CloseHook>;
  /** The bits above, and FIRST_FREE_FLAG and up for subclasses. */
  protected flags = 0;

  /** */
  constructor(res: ResponseLike) {
    this.res = res;
  }

  /** True once the stream ended: the client left, `close()` was called or the response ended. */
  get closed(): boolean {
    return (this.flags & CLOSED) !== 0;
  }

  /** True once the event-stream headers went out. */
  get opened(): boolean {
    return (this.flags & OPENED) !== 0;
  }

  /** Bytes accepted but not yet taken by the socket: what is queued plus the socket's backlog. */
  get bufferedBytes(): number {
    if ((this.flags & CLOSED) !== 0) return 0;
    return this.#queuedBytes + (this.#transport?.backlog ?? 0);
  }

  /**
   * Whether what is buffered (queued plus the socket's backlog) is below the socket's
   * high-water mark: a caller may go on writing.
   */
  get writable(): boolean {
    const transport = this.#transport;
    if (transport === undefined || (this.flags & CLOSED) !== 0) return false;
    return this.#queuedBytes + transport.backlog < transport.highWaterMark;
  }

  /** Why the connection was dropped, if it was. */
  get dropped(): boolean {
    return (this.flags & DROPPED) !== 0;
  }

  /** Why the connection was dropped; undefined if it was not. */
  get dropReason(): DropReason | undefined {
    if ((this.flags & DROPPED) === 0) return undefined;
    return (this.flags & WRITE_FAILED) !== 0 ? 'write-failed' : 'slow-client';
  }

  /** The drop's reason the first time it is asked for, so that it is counted once. */
  countDrop(): DropReason | undefined {
    const reason = this.dropReason;
    if (reason === undefined || (this.flags & DROP_COUNTED) !== 0) return undefined;
    this.flags |= DROP_COUNTED;
    return reason;
  }

  /**
   * Lowers the backlog past which this connection is dropped (channels apply their
   * `maxBufferedBytes`; the lowest wins).
   */
  limitBacklog(bytes: number): void {
    if (bytes < this.#maxBacklog) this.#maxBacklog = Math.min(bytes, NO_LIMIT);
  }

  /**
   * Starts writing through `transport` (the headers are out): `first`, then what was stashed
   * before, then what is queued from now on.
   */
  protected attach(transport: Transport, first = ''): void {
    this.#transport = transport;
    this.flags |= OPENED;
    this.watch();
    if (first !== '') {
      this.#queued = first + (this.#queued as string);
      this.#queuedBytes += Buffer.byteLength(first);
    }
    if (this.#queuedBytes > 0 && (this.flags & QUEUED) === 0) {
      this.flags |= QUEUED;
      scheduleFlush(this, false);
    }
  }

  /**
   * Queues a frame before the connection is open. The flush is scheduled as for any frame (so the
   * first frame goes out with the next flush, as it would from an open stream); a flush that comes
   * before attach() leaves it queued, and attach() writes it after its own first frame.
   */
  protected stash(frame: string): void {
    const flags = this.flags;
    if ((flags & (OPENED | CLOSED)) !== 0) return;
    this.#queued = (this.#queued as string) + frame;
    this.#queuedBytes += Buffer.byteLength(frame);
    if ((flags & QUEUED) === 0) {
      this.flags |= QUEUED;
      scheduleFlush(this, false);
    }
  }

  /**
   * Queues a frame of `bytes` UTF-8 bytes (computed when omitted). Returns false when
   * the connection is closed or not open.
   */
  enqueue(frame: string, bytes = Buffer.byteLength(frame)): boolean {
    const flags = this.flags;
    if ((flags & (OPENED | CLOSED)) !== OPENED) return false;
    const queued = this.#queued;
    this.#queued = typeof queued === 'string' ? queued + frame : queued.text + frame;
    this.#queuedBytes += bytes;
    this.flags = flags & ~QUIET_MASK;
    if ((flags & QUEUED) === 0) {
      this.flags |= QUEUED;
      scheduleFlush(this, (flags & CYCLE_MASK) >> CYCLE_SHIFT === previousFlushMark());
    }
    return true;
  }

  /**
   * Queues a frame many connections get as it is (a channel's broadcast). Alone in the
   * queue at the flush, it goes out without being encoded for this connection.
   */
  enqueueShared(frame: SharedText): boolean {
    const flags = this.flags;
    if ((flags & (OPENED | CLOSED)) !== OPENED) return false;
    const queued = this.#queued;
    this.#queued = queued === '' ? frame : typeof queued === 'string' ? queued + frame.text : joinShared(queued, frame);
    this.#queuedBytes += frame.bytes;
    this.flags = flags & ~QUIET_MASK;
    if ((flags & QUEUED) === 0) {
      this.flags |= QUEUED;
      scheduleFlush(this, (flags & CYCLE_MASK) >> CYCLE_SHIFT === previousFlushMark());
    }
    return true;
  }

  /**
   * Writes everything queued now, in one call; or drops the connection if its socket
   * still holds more than the backlog limit from earlier writes. The check comes before the
   * write: one large coalesced write in flight is by design; a client that has not taken the
   * previous ones by the next flush is the one that does not read. Memory per connection stays
   * below the limit plus what one flush adds.
   */
  flush(): void {
    this.flags = (this.flags & ~(QUEUED | CYCLE_MASK)) | (flushMark() << CYCLE_SHIFT);
    if (this.#queuedBytes === 0) return;
    const transport = this.#transport;
    if (transport === undefined) return; // not open yet (stash()): attach() schedules it again
    if (transport.gone) {
      // The socket is gone but its 'close' event has not run yet.
      this.#clearQueue();
      this.finish();
      return;
    }
    if (transport.backlog > this.#maxBacklog) {
      this.drop('slow-client');
      return;
    }
    const queued = this.#queued;
    this.#clearQueue();
    if (typeof queued === 'string') transport.write(queued);
    else transport.writeShared(queued);
  }

  /** The flusher's report that flush() threw. */
  fail(error: unknown): void {
    debug('write failed: %s', (error as Error)?.message ?? String(error));
    this.drop('write-failed');
  }

  /**
   * True (and the connection finished) when its socket is gone but the response's
   * 'close' event has not run yet: a write now would be lost.
   */
  isGone(): boolean {
    if ((this.flags & CLOSED) !== 0) return true;
    if (this.#transport?.gone !== true) return false;
    this.finish();
    return true;
  }

  /**
   * Bytes the OS has taken from the socket, while the socket still holds some to send;
   * undefined when it holds none (see heartbeat.ts).
   */
  get taken(): number | undefined {
    const transport = this.#transport;
    if (transport === undefined || (this.flags & CLOSED) !== 0 || transport.backlog === 0) return undefined;
    return transport.taken;
  }

  /** The heartbeat found that the socket took nothing for STALL_INTERVALS intervals. */
  stall(): void {
    debug('dropped a reader that took nothing for %d heartbeat intervals', STALL_INTERVALS);
    this.drop('slow-client');
  }

  /** A heartbeat tick: after TICKS_PER_INTERVAL quiet ticks, a keep-alive comment. */
  tick(): void {
    const flags = this.flags;
    if ((flags & (OPENED | CLOSED)) !== OPENED) return;
    const quiet = ((flags & QUIET_MASK) >> QUIET_SHIFT) + 1;
    // A comment line alone: a blank line after it would make some clients (httpx-sse) yield an
    // empty message.
    if (quiet >= TICKS_PER_INTERVAL) this.enqueue(':\n', 2);
    else this.flags = (flags & ~QUIET_MASK) | (quiet << QUIET_SHIFT);
  }

  /**
   * Resolves when what was written has left (queue flushed, socket below its
   * high-water mark) or the connection closed.
   */
  async drained(): Promise<void> {
    // The socket's own high-water mark, not a constant: it says 'drain' only past it (and it
    // grew from 16 to 64 KiB in Node 22).
    while ((this.flags & (OPENED | CLOSED)) === OPENED && !this.writable) {
      if (this.#queuedBytes > 0) {
        this.flush();
        continue;
      }
      const emitter = this.#transport!.drainEmitter;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          emitter.off('drain', done);
          this.offClose(done);
          resolve();
        };
        this.onClose(done);
        emitter.on('drain', done);
      });
    }
  }

  /**
   * Writes what is queued, then ends the response: the client gets every byte it was
   * sent. A client too slow for that (past the backlog limit) is dropped instead.
   */
  end(): void {
    if ((this.flags & CLOSED) !== 0) return;
    if ((this.flags & OPENED) !== 0) {
      this.flush();
      if ((this.flags & CLOSED) !== 0) return; // dropped or gone
    }
    this.res.end();
    this.finish();
  }

  /** Drops the connection at once: a reset, its queue and socket buffers discarded. */
  drop(reason: DropReason): void {
    if ((this.flags & CLOSED) !== 0) return;
    this.flags |= reason === 'write-failed' ? DROPPED | WRITE_FAILED : DROPPED;
    debug('dropped a connection (%s) with %d bytes unsent', reason, this.bufferedBytes);
    if (diagnostics.drop.hasSubscribers) diagnostics.drop.publish({ stream: this, reason, unsent: this.bufferedBytes });
    this.#clearQueue();
    // A reset rather than an end: ending would wait behind the backlog this client cannot read,
    // and keep its memory (kernel buffers included) for as long as the peer lives. The browser
    // reconnects and replays from history.
    if (this.#transport !== undefined) this.#transport.reset();
    else this.res.destroy();
    this.finish();
  }

  /** Runs `hook` once when the connection closes (at once if it has); `offClose()` cancels it. */
  onClose(hook: CloseHook): void {
    if ((this.flags & CLOSED) !== 0) {
      runHook(hook, this);
      return;
    }
    this.#closeHooks = addTo(this.#closeHooks, hook);
    this.watch();
  }

  /** Cancels a hook given to `onClose()`. */
  offClose(hook: CloseHook): void {
    this.#closeHooks = removeFrom(this.#closeHooks, hook);
  }

  /** Listens for the response's end, once. */
  protected watch(): void {
    if ((this.flags & WATCHING) !== 0) return;
    this.flags |= WATCHING;
    // The response's 'close' is the reliable signal: the request's fires early once a body
    // parser has read a POST body, which would end POST streams before they start.
    (this.res as { [CONNECTION]?: Connection })[CONNECTION] = this;
    this.res.on('close', onResponseClose);
  }

  /** True once the response emitted 'close': nothing of it is left on the socket. */
  get isReleased(): boolean {
    return (this.flags & RELEASED) !== 0;
  }

  /** The response's 'close' (see onResponseClose). */
  released(): void {
    this.flags |= RELEASED;
    this.finish();
  }

  /**
   * Resets the connection even after end(): for a peer that does not take the last
   * bytes, so a shutdown is not held by it.
   */
  forceReset(): void {
    if ((this.flags & RELEASED) !== 0) return;
    if (this.#transport !== undefined) this.#transport.reset();
    else this.res.destroy();
    this.finish();
  }

  /** Marks the connection closed and tells the hooks; idempotent. */
  finish(): void {
    if ((this.flags & CLOSED) !== 0) return;
    this.flags |= CLOSED;
    this.#clearQueue();
    const hooks = this.#closeHooks;
    this.#closeHooks = undefined;
    if (Array.isArray(hooks)) for (const hook of hooks) runHook(hook, this);
    else if (hooks !== undefined) runHook(hooks, this);
    this.afterClose();
  }

  /** Subclasses learn here that the connection closed, after its hooks ran. */
  protected afterClose(): void {}

  #clearQueue(): void {
    this.#queued = '';
    this.#queuedBytes = 0;
  }
}

function runHook(hook: CloseHook, connection: Connection): void {
  if (typeof hook === 'function') hook();
  else hook.connectionClosed(connection);
}
