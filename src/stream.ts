import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { SseError } from './errors';
import { joinHeartbeat, leaveHeartbeat } from './heartbeat';
import type { SseSettings } from './options';
import { formatComment, formatEvent, formatRetry, serializeData } from './serializer';

/** Event names mapped to their payload types, for `sse<Events>()`; any name, any payload by default. */
export type EventMap = Record<string, unknown>;

/** The payload type allowed for event `E` of map `M`; `never` for a name the map lacks. */
export type EventData<M extends object, E extends string> = E extends keyof M ? M[E] : never;

/** Per-call fields of `res.sse.send()`. */
export interface SendOptions<E extends string = string> {
  /** Event name (the client's `addEventListener` name). Omitted: a plain `message` event. */
  event?: E;
  /** Event id; the client sends the last one back in `Last-Event-ID` when it reconnects. */
  id?: string | number;
  /** New reconnection delay for the client, in milliseconds. */
  retry?: number;
}

/** Options of `res.sse.pipe()`. */
export interface PipeOptions<T = unknown> {
  /** Event name of every chunk. Omitted: `message`. */
  event?: string;
  /** Turns each chunk into the data to send. Byte chunks arrive already decoded as UTF-8 text. */
  map?: (chunk: T) => unknown;
}

/** Sources `res.sse.pipe()` reads: async iterables (Node readables included) and web streams. */
export type PipeSource<T = unknown> = AsyncIterable<T> | ReadableStream<T>;

export type SseRequest = IncomingMessage | Http2ServerRequest;
export type SseServerResponse = ServerResponse | Http2ServerResponse;

// The members used of http1's ServerResponse and http2's compatibility response alike; their
// own typings have incompatible overloads, so one narrow shape serves both.
interface ResponseLike {
  statusCode: number;
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  readonly writableLength: number;
  readonly socket?: Socket | null;
  /** http1: whether the body is sent with chunked transfer encoding. */
  readonly chunkedEncoding?: boolean;
  setHeader(name: string, value: string): unknown;
  writeHead(status: number): unknown;
  /** http1 only: sends the headers now. */
  flushHeaders?: () => void;
  /** Added by compression(): pushes buffered output out. */
  flush?: () => void;
  setTimeout(ms: number): unknown;
  write(chunk: string): boolean;
  end(): unknown;
  end(chunk: string): unknown;
  destroy(): unknown;
  on(event: 'close' | 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

function noop(): void {}

/**
 * Told once when a stream closes: a function, or an object told which stream (a channel is the
 * hook of all its streams, so it needs no closure per connection).
 * @internal
 */
export type CloseHook = (() => void) | { streamClosed(stream: SseStream): void };

// SseStream's #state bits.
const OPENED_FLAG = 1;
const CLOSED_FLAG = 2;
/** The shared close listener is on the response. */
const WATCHING_FLAG = 4;
/** Something was written since the last heartbeat, so the next one can be skipped. */
const WROTE_SINCE_BEAT_FLAG = 8;
/** compression() or the like: res.flush() after each write. */
const FLUSHES_FLAG = 16;
/** Counted by the middleware's connection limiter; released when the stream ends. */
const ADMITTED_FLAG = 32;
/** Someone (an async authorize hook) will open or refuse the stream: no eager open. */
const HELD_FLAG = 64;

// One listener function shared by every response, instead of a closure (and a once() wrapper)
// per connection: thousands of idle streams are mostly their per-connection objects. It finds
// the stream as `res.sse`, which the middleware sets right after creating it.
const RESPONSE_CLOSED = Symbol('response closed');

function onResponseClose(this: { sse?: unknown }): void {
  (this.sse as { [RESPONSE_CLOSED]?: () => void } | undefined)?.[RESPONSE_CLOSED]?.();
}

/**
 * One event stream: what `res.sse` is. Writes whole frames, reports a backed-up socket through
 * return values and the client leaving through `closed` and `signal`; it never throws for
 * network trouble.
 */
export class SseStream<M extends object = EventMap> {
  readonly #req: SseRequest;
  readonly #res: ResponseLike;
  readonly #settings: SseSettings;
  /** The *_FLAG bits below: one small integer rather than five boolean fields per connection. */
  #state = 0;
  #controller: AbortController | undefined;
  // One hook (the common case: one channel) is kept as is; an array only for more.
  #closeHooks: CloseHook | CloseHook[] | undefined;
  /** Set when frames can go straight to the socket (see #useSocketDirectly). */
  #socket: Socket | undefined;
  /** @internal The channels' per-connection write queue (see outbox.ts), created on first use. */
  outbox: { flush(): void } | undefined;

  /** @internal Created by the `sse()` middleware; use `res.sse`. */
  constructor(req: SseRequest, res: SseServerResponse, settings: SseSettings) {
    this.#req = req;
    this.#res = res;
    this.#settings = settings;
  }

  /** True once the stream ended: the client left, `close()` was called or the response ended. */
  get closed(): boolean {
    return (this.#state & CLOSED_FLAG) !== 0;
  }

  /** True once the event-stream headers went out. */
  get opened(): boolean {
    return (this.#state & OPENED_FLAG) !== 0;
  }

  /** Bytes accepted by `send()` that the socket has not taken yet. */
  get bufferedBytes(): number {
    return this.#socket?.writableLength ?? this.#res.writableLength;
  }

  /**
   * The id the client last saw: the `Last-Event-ID` header, else a `lastEventId` query parameter
   * (what EventSource polyfills send). `undefined` on a first connection. Read from the request
   * each time (it is asked for once or twice per connection; a cache would be a field on every one).
   */
  get lastEventId(): string | undefined {
    return readLastEventId(this.#req);
  }

  /** Aborted when the stream ends, whichever side ended it. Pass it to upstream work to cancel it. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if ((this.#state & CLOSED_FLAG) !== 0) this.#controller.abort();
      else this.#watch();
    }
    return this.#controller.signal;
  }

  /**
   * Sends the event-stream headers now, if they have not been sent. `send()` and `comment()` call
   * it for you; call it yourself to show the client the stream is up before the first event.
   */
  open(): this {
    if ((this.#state & (OPENED_FLAG | CLOSED_FLAG)) !== 0) return this;
    const res = this.#res;
    if (res.headersSent) {
      throw new SseError('ERR_SSE_HEADERS_SENT', 'cannot open an event stream: the response headers were already sent');
    }
    const refusal = this.#settings.limiter.admit(this, this.#req);
    if (refusal !== undefined) {
      this.refuse(refusal.status, refusal.message, refusal.retryAfter);
      return this;
    }
    this.#state |= ADMITTED_FLAG;
    this.#state |= OPENED_FLAG;
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    // no-transform keeps compression() and transforming proxies from buffering the stream.
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    // nginx buffers proxied responses unless told otherwise.
    res.setHeader('X-Accel-Buffering', 'no');
    // HTTP/2 forbids connection-specific headers (RFC 9113 §8.2.2); Node warns and drops them.
    // (A client that asked to close keeps its wish: Node then ends the connection with the stream.)
    if (this.#req.httpVersionMajor < 2 && !/\bclose\b/i.test(String(this.#req.headers.connection ?? ''))) {
      res.setHeader('Connection', 'keep-alive');
    }
    // An event stream lives as long as the client wants it: no idle timeout may end it.
    res.setTimeout(0);
    if (this.#req.httpVersionMajor < 2) this.#req.socket?.setNoDelay(true);
    res.writeHead(200);
    // http1 holds headers until the first body byte; the client must see them now.
    // (http2's writeHead sends them at once.)
    res.flushHeaders?.();
    if (typeof res.flush === 'function') this.#state |= FLUSHES_FLAG;
    this.#socket = this.#useSocketDirectly();
    this.#watch();
    if (this.#settings.heartbeat !== false) joinHeartbeat(this, this.#settings.heartbeat);
    if (this.#settings.retry !== undefined) this.#write(formatRetry(this.#settings.retry));
    return this;
  }

  /**
   * Sends one event. Strings go as they are; other values through the `serialize` option
   * (`JSON.stringify` by default). Throws a `TypeError` for an invalid event name, id or retry and
   * then writes nothing. Returns `false` when the socket is backed up (wait for `drain`) or the
   * stream is closed.
   */
  send<E extends string = 'message'>(data: EventData<M, E>, options?: SendOptions<E>): boolean {
    return this.#send(data, options);
  }

  /** Sends a comment line, which clients ignore; handy as a keep-alive or for debugging with curl. */
  comment(text?: string): boolean {
    const frame = formatComment(text);
    this.outbox?.flush();
    return this.#write(frame);
  }

  /**
   * Writes a frame that is already formatted (see the serializer). Channels use it to share one
   * string between all subscribers.
   * @internal
   */
  writeFrame(frame: string): boolean {
    return this.#write(frame);
  }

  /**
   * Sends every chunk of `source` as an event, waiting whenever the socket is backed up. Stops
   * reading the source (and cancels it) as soon as the stream closes. Resolves `true` when the
   * whole source was sent, `false` when the stream closed first; rejects if the source throws.
   */
  async pipe<T>(source: PipeSource<T>, options: PipeOptions<T> = {}): Promise<boolean> {
    const { iterator, stop } = iterate(source);
    const decoder = new TextDecoder();
    const sendOptions = options.event === undefined ? undefined : { event: options.event };
    let onClosed = noop;
    const closed = new Promise<typeof CLOSED>((resolve) => {
      onClosed = () => resolve(CLOSED);
      this.onClose(onClosed);
    });
    let finished = false;
    try {
      while ((this.#state & CLOSED_FLAG) === 0) {
        const step = await Promise.race([iterator.next(), closed]);
        if (step === CLOSED) break;
        if (step.done === true) {
          finished = true;
          break;
        }
        let chunk: unknown = step.value;
        if (chunk instanceof Uint8Array) chunk = decoder.decode(chunk, { stream: true });
        const data = options.map === undefined ? chunk : options.map(chunk as T);
        if (!this.#send(data, sendOptions) && (this.#state & CLOSED_FLAG) === 0) {
          await this.#drain();
        }
      }
    } finally {
      this.offClose(onClosed);
      if (!finished) stop();
    }
    return finished;
  }

  /** Ends the stream. Safe to call more than once. */
  close(): void {
    if ((this.#state & CLOSED_FLAG) !== 0) return;
    if ((this.#state & OPENED_FLAG) === 0 && !this.#res.headersSent) {
      this.open();
      if ((this.#state & CLOSED_FLAG) !== 0) return; // refused by a connection limit
    }
    this.#res.end();
    this.#finish();
  }

  /**
   * Answers the request with `status` and a plain-text `message` instead of a stream, and ends
   * it; if the stream is already open, only ends it. Used for connection limits and refused
   * subscriptions: a client refused this way sees no stream byte.
   * @internal
   */
  refuse(status: number, message: string, retryAfter?: number): void {
    if ((this.#state & CLOSED_FLAG) !== 0) return;
    const res = this.#res;
    if ((this.#state & OPENED_FLAG) !== 0 || res.headersSent) {
      this.close();
      return;
    }
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
    this.#finish();
    res.end(message);
  }

  /**
   * The request this stream answers.
   * @internal
   */
  get request(): SseRequest {
    return this.#req;
  }

  /**
   * The middleware opens a stream for an EventSource request on the next turn, so that route code
   * may still refuse it (a 401, a 403, a limit) before any stream byte. `hold()` cancels that:
   * whoever holds it opens or refuses it later.
   * @internal
   */
  hold(): void {
    this.#state |= HELD_FLAG;
  }

  /** @internal The middleware's deferred open (see `hold()`). */
  openIfUnanswered(): void {
    if ((this.#state & (OPENED_FLAG | CLOSED_FLAG | HELD_FLAG)) !== 0) return;
    const res = this.#res;
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    this.open();
  }

  /**
   * Runs `hook` once when the stream closes (at once if it has); `offClose()` cancels it.
   * @internal
   */
  onClose(hook: CloseHook): void {
    if ((this.#state & CLOSED_FLAG) !== 0) {
      this.#run(hook);
      return;
    }
    const hooks = this.#closeHooks;
    if (hooks === undefined) this.#closeHooks = hook;
    else if (Array.isArray(hooks)) hooks.push(hook);
    else this.#closeHooks = [hooks, hook];
    this.#watch();
  }

  /**
   * Cancels a hook given to `onClose()`.
   * @internal
   */
  offClose(hook: CloseHook): void {
    const hooks = this.#closeHooks;
    if (hooks === hook) this.#closeHooks = undefined;
    else if (Array.isArray(hooks)) {
      const at = hooks.indexOf(hook);
      if (at !== -1) hooks.splice(at, 1);
    }
  }

  /** @internal Called when the response closes (see watch). */
  [RESPONSE_CLOSED](): void {
    this.#finish();
  }

  /**
   * Drops the connection at once, discarding whatever is still buffered (slow-client policy).
   * @internal
   */
  destroy(): void {
    if ((this.#state & CLOSED_FLAG) !== 0) return;
    this.#res.destroy();
    this.#finish();
  }

  /** @internal Called by the shared heartbeat timer. */
  beat(): void {
    if ((this.#state & WROTE_SINCE_BEAT_FLAG) === 0) this.#write(':\n\n');
    this.#state &= ~WROTE_SINCE_BEAT_FLAG;
  }

  #send(data: unknown, options: SendOptions | undefined): boolean {
    const frame = formatEvent(serializeData(data, this.#settings.serialize), options);
    // Channel frames still queued for this connection go first: the client sees events in the
    // order they were sent.
    this.outbox?.flush();
    return this.#write(frame);
  }

  #write(frame: string): boolean {
    if ((this.#state & CLOSED_FLAG) !== 0) return false;
    if ((this.#state & OPENED_FLAG) === 0) {
      this.open();
      if ((this.#state & CLOSED_FLAG) !== 0) return false; // refused by a connection limit
    }
    this.#state |= WROTE_SINCE_BEAT_FLAG;
    const socket = this.#socket;
    if (socket !== undefined) {
      if (socket.destroyed) {
        // The socket is gone but its 'close' event has not run yet.
        this.#finish();
        return false;
      }
      // One chunk of the chunked body, framed here and written in one call: res.write would make
      // four buffered writes, a cork and a nextTick uncork of it.
      return socket.write(`${Buffer.byteLength(frame).toString(16)}\r\n${frame}\r\n`);
    }
    const res = this.#res;
    if (res.destroyed || res.writableEnded || res.socket?.destroyed === true) {
      this.#finish();
      return false;
    }
    const ok = res.write(frame);
    // compression() holds output back until flushed; events must not wait.
    if ((this.#state & FLUSHES_FLAG) !== 0) res.flush!();
    return ok;
  }

  // The fast path is taken only where it writes exactly what res.write would: an HTTP/1.1
  // response with a chunked body whose headers are already on the socket, whose write() nobody
  // wrapped (compression() and the like do), and that is not the answer to a HEAD request.
  // res.end() still sends the last chunk through Node, which never saw these writes.
  #useSocketDirectly(): Socket | undefined {
    const res = this.#res;
    const socket = res.socket;
    if (this.#req.httpVersionMajor !== 1 || this.#req.method === 'HEAD') return undefined;
    if (res.chunkedEncoding !== true || socket === null || socket === undefined || socket.destroyed) return undefined;
    if (res.write !== ServerResponse.prototype.write) return undefined;
    const pending = (res as { outputData?: unknown[] }).outputData;
    if (pending === undefined || pending.length !== 0) return undefined;
    return socket;
  }

  #drain(): Promise<void> {
    return new Promise((resolve) => {
      // With direct writes the response never saw a full buffer, so only the socket says 'drain'.
      const emitter = this.#socket ?? this.#res;
      const done = (): void => {
        emitter.off('drain', done);
        this.offClose(done);
        resolve();
      };
      this.onClose(done);
      emitter.on('drain', done);
    });
  }

  #watch(): void {
    if ((this.#state & WATCHING_FLAG) !== 0) return;
    this.#state |= WATCHING_FLAG;
    // The response's 'close' is the reliable signal: the request's fires early once a body
    // parser has read a POST body, which would end POST streams before they start.
    this.#res.on('close', onResponseClose);
  }

  #finish(): void {
    if ((this.#state & CLOSED_FLAG) !== 0) return;
    this.#state |= CLOSED_FLAG;
    if (this.#settings.heartbeat !== false) leaveHeartbeat(this, this.#settings.heartbeat);
    if ((this.#state & ADMITTED_FLAG) !== 0) this.#settings.limiter.release(this);
    // Internal hooks first (channels drop the subscriber), so code listening on `signal` already
    // sees the channel without this connection.
    const hooks = this.#closeHooks;
    this.#closeHooks = undefined;
    if (Array.isArray(hooks)) for (const hook of hooks) this.#run(hook);
    else if (hooks !== undefined) this.#run(hooks);
    this.#controller?.abort();
  }

  #run(hook: CloseHook): void {
    if (typeof hook === 'function') hook();
    else hook.streamClosed(this as unknown as SseStream);
  }
}

const CLOSED = Symbol('closed');

interface Source<T> {
  readonly iterator: AsyncIterator<T>;
  /** Stops the source now, even while a read is pending; never throws, never waits. */
  readonly stop: () => void;
}

function iterate<T>(source: PipeSource<T>): Source<T> {
  if (source !== null && typeof source === 'object') {
    // A web stream is read through its reader, not its async iterator: the iterator's return()
    // waits for a pending read, while reader.cancel() ends that read at once.
    if (typeof (source as ReadableStream<T>).getReader === 'function') {
      const reader = (source as ReadableStream<T>).getReader();
      return {
        iterator: { next: () => reader.read() as Promise<IteratorResult<T>> },
        stop: () => void reader.cancel().catch(noop),
      };
    }
    if (Symbol.asyncIterator in source) {
      const iterator = (source as AsyncIterable<T>)[Symbol.asyncIterator]();
      const destroy = (source as { destroy?: unknown }).destroy;
      if (typeof destroy === 'function') {
        // A Node readable: its iterator is an async generator, whose return() also waits for
        // the pending read; destroy() frees it immediately.
        return { iterator, stop: () => void (destroy as () => void).call(source) };
      }
      // An async generator parked on a slow await finishes that step first; return() is queued
      // and runs its finally blocks at the next yield. Not awaited, so we never hang on it.
      return { iterator, stop: () => void iterator.return?.()?.catch(noop) };
    }
  }
  throw new TypeError('express-sse-hub: pipe() source must be an async iterable or a ReadableStream');
}

function readLastEventId(req: SseRequest): string | undefined {
  const header = req.headers['last-event-id'];
  if (typeof header === 'string' && header !== '') return header;
  const url = req.url ?? '';
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  const value = new URLSearchParams(url.slice(q + 1)).get('lastEventId');
  return value === null || value === '' ? undefined : value;
}
