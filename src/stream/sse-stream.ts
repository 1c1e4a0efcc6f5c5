// What `res.sse` is: the public face of one event stream. It holds the stream (stream.ts), which
// channels and runs work with, and shows a route only what a route needs.
import type { EventMap, EventName, FreeEventName, MessageData } from './event-map';
import type { PipeSource } from './source';
import type { PipeOptions, SendOptions, Stream } from './stream';

export type { EventMap } from './event-map';
export type { PipeSource } from './source';
export type { PipeOptions, SendOptions } from './stream';

/** The payload type of event `E` of map `M`. */
export type EventData<M extends object, E extends EventName<M>> = M[E];

/**
 * What channels and runs take to reach a stream: an Express response that went through `sse()`
 * (typed by any event map), or its `res.sse`.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StreamTarget = { readonly sse: SseStream<any> } | SseStream<any>;

// Set by SseStream's static block, the only code that sees a face's stream.
/** The public face of a stream: what the sse() middleware puts in `res.sse`. */
export let faceOf: (stream: Stream) => SseStream;
/** The stream behind `res.sse`, for channels and runs (not part of the public API). */
export let streamBehind: (face: SseStream<object>) => Stream;

/**
 * One event stream: what `res.sse` is. Writes whole frames, in order, through one queue; reports
 * a backed-up socket through return values and the client leaving through `closed` and `signal`;
 * it never throws for network trouble.
 */
export class SseStream<M extends object = EventMap> {
  readonly #stream: Stream;

  private constructor(stream: Stream) {
    this.#stream = stream;
  }

  static {
    // One face per stream: the middleware's res.sse, which events such as 'client-dropped' hand
    // out too (so a listener can compare it with the res.sse it knows).
    faceOf = (stream) => {
      const res = stream.res as { sse?: unknown };
      return res.sse instanceof SseStream && res.sse.#stream === stream ? res.sse : new SseStream(stream);
    };
    streamBehind = (face) => face.#stream;
  }

  /**
   * The id the client last saw: the `Last-Event-ID` header (UTF-8), else a `lastEventId` query
   * parameter (what EventSource polyfills send). `undefined` on a first connection.
   */
  get lastEventId(): string | undefined {
    return this.#stream.lastEventId;
  }

  /** Aborted when the stream ends, whichever side ended it. Pass it to upstream work to cancel it. */
  get signal(): AbortSignal {
    return this.#stream.signal;
  }

  /** True once the event-stream headers went out. */
  get opened(): boolean {
    return this.#stream.opened;
  }

  /** True once the stream ended: the client left, `close()` was called or the response ended. */
  get closed(): boolean {
    return this.#stream.closed;
  }

  /** Bytes accepted but not yet taken by the socket: what is queued plus the socket's backlog. */
  get bufferedBytes(): number {
    return this.#stream.bufferedBytes;
  }

  /**
   * Sends the event-stream headers now, if they have not been sent. `send()`, `comment()`,
   * `pipe()` and channel subscriptions call it for you. Over a connection limit, or while the
   * handler shuts down, it answers 429/503 instead and the stream is `closed`. Throws
   * `ERR_SSE_HEADERS_SENT` if the route already answered otherwise.
   */
  open(): this {
    this.#stream.open();
    return this;
  }

  /**
   * Sends one event. Strings go as they are; other values through the `serialize` option
   * (`JSON.stringify` by default). Throws a `TypeError` for an invalid event name, id or retry and
   * then sends nothing. Returns `false` when the stream is backed up (see `drained()`) or closed.
   * With an event map (`sse<Events>()`), `event` is one of its names and `data` that event's type.
   */
  send<E extends EventName<M>>(data: M[E], options: SendOptions<E> & { event: E }): boolean;
  /** Sends a plain `message` event (no `event` field): `data` is the map's `message` type. */
  send(data: MessageData<M>, options?: SendOptions<FreeEventName<M>>): boolean;
  send(data: unknown, options?: SendOptions): boolean {
    return this.#stream.send(data, options);
  }

  /** Sends a comment line, which clients ignore; handy as a keep-alive or for debugging with curl. */
  comment(text?: string): boolean {
    return this.#stream.comment(text);
  }

  /**
   * Resolves when what was sent has left (less than the socket's high-water mark, 16 KiB on
   * Node 20 and 64 KiB from Node 22, still buffered) or the stream closed: await it after
   * `send()` returned `false`.
   */
  drained(): Promise<void> {
    return this.#stream.drained();
  }

  /**
   * Sends every chunk of `source` as an event, waiting whenever the stream is backed up. Stops
   * reading the source (and cancels it) as soon as the stream closes. Resolves `true` when the
   * whole source was sent, `false` when the stream closed first; rejects if the source throws.
   * Runs in constant memory however many chunks the source yields.
   */
  pipe<T>(source: PipeSource<T>, options?: PipeOptions<T>): Promise<boolean> {
    return this.#stream.pipe(source, options);
  }

  /** Sends what is queued, then ends the stream. Safe to call more than once. */
  close(): void {
    this.#stream.close();
  }
}

