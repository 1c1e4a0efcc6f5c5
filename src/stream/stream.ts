// One event stream and its lifecycle (its public face, `res.sse`, is sse-stream.ts). Every byte
// goes through the connection's queue (connection.ts); this file decides when the stream opens,
// when it is refused, and what a route's calls do (send, comment, pipe, close, signal,
// lastEventId), and gives channels and runs what they need of a stream.
//
// Lifecycle: created by sse() → [pending: written to; it opens once the code that wrote has run]
// → [claimed: someone (an async authorize, a subscription reading where it starts) will open or
// refuse it] → opened (headers out) → closed. Or refused (a status and a plain-text body, no
// stream byte). What is written before it opens waits, and goes out first.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { CLOSED, Connection, FIRST_FREE_FLAG, OPENED } from './connection';
import { debug } from '../common/debug';
import * as diagnostics from '../common/diagnostics';
import { SseError, warn } from '../common/errors';
import { addTo, removeFrom, sizeOf, type Few } from '../common/few';
import { formatComment, formatEvent, formatRetry, serializeData } from './serializer';
import { iterate, type PipeSource } from './source';
import type { StreamSet } from './stream-set';
import { createTransport, type ResponseLike } from './transport';

/** Per-call fields of `res.sse.send()`. */
export interface SendOptions<E extends string = string> {
  /** Event name (the client's `addEventListener` name). Omitted: a plain `message` event. */
  event?: E | undefined;
  /** Event id; the client sends the last one back in `Last-Event-ID` when it reconnects. */
  id?: string | number | undefined;
  /** New reconnection delay for the client, in milliseconds. */
  retry?: number | undefined;
}

/** Options of `res.sse.pipe()`. */
export interface PipeOptions<T = unknown> {
  /** Event name of every chunk. Omitted: `message`. */
  event?: string;
  /** Turns each chunk into the data to send. Byte chunks arrive already decoded as UTF-8 text. */
  map?: (chunk: T) => unknown;
}

export type SseRequest = IncomingMessage | Http2ServerRequest;
export type SseServerResponse = ServerResponse | Http2ServerResponse;

// Stream's flags, above the connection's own.
/** Counted by the handler's connection limits; released when the stream ends. */
const ADMITTED = FIRST_FREE_FLAG;
/** Someone (an async authorize hook) will open or refuse the stream. */
const CLAIMED = FIRST_FREE_FLAG << 1;
/** In the handler's set of streams (heartbeat, shutdown). */
const MEMBER = FIRST_FREE_FLAG << 2;
/** Written to before it opened: it opens once the code that wrote has run (see #writeEarly). */
const PENDING = FIRST_FREE_FLAG << 3;

/** Who waits in drained() for a stream to open (rare: a WeakMap, not a field on every stream). */
const openWaiters = new WeakMap<Stream, (() => void)[]>();

function wakeOpenWaiters(stream: Stream): void {
  const waiters = openWaiters.get(stream);
  if (waiters === undefined) return;
  openWaiters.delete(stream);
  for (const wake of waiters) wake();
}

const CLOSED_BY_STREAM = Symbol('closed');

/** A channel with history this stream is in: says where the stream is in its log. */
export interface PositionSource {
  tokenFor(stream: Connection): string | undefined;
}

/**
 * One event stream. Writes whole frames, in order, through one queue; reports a backed-up socket
 * through return values and the client leaving through `closed` and `signal`; it never throws for
 * network trouble.
 */
export class Stream extends Connection {
  readonly #req: SseRequest;
  readonly #set: StreamSet;
  #controller: AbortController | undefined;
  #sources: Few<PositionSource>;

  constructor(req: SseRequest, res: SseServerResponse, set: StreamSet) {
    super(res);
    this.#req = req;
    this.#set = set;
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
      if (this.closed) this.#controller.abort();
      else this.watch();
    }
    return this.#controller.signal;
  }

  /**
   * Sends the event-stream headers now, if they have not been sent. `send()`, `comment()`,
   * `pipe()` and channel subscriptions call it for you. Over a connection limit, or while the
   * handler shuts down, it answers 429/503 instead and the stream is `closed`. Throws
   * `ERR_SSE_HEADERS_SENT` if the route already answered otherwise.
   */
  open(): this {
    if ((this.flags & (OPENED | CLOSED)) !== 0) return this;
    const res = this.res;
    if (res.headersSent) {
      throw new SseError('ERR_SSE_HEADERS_SENT', 'cannot open an event stream: the response headers were already sent');
    }
    const set = this.#set;
    if (this.#req.method === 'HEAD') {
      // Express routes HEAD to app.get: the stream's headers, no body, and nothing held (no
      // connection counted, no channel joined), so a pipelined request behind it is answered.
      setStreamHeaders(res, set.settings.heartbeat);
      res.statusCode = 200;
      this.finish();
      res.end();
      return this;
    }
    if (!this.#admit()) return this;
    setStreamHeaders(res, set.settings.heartbeat);
    const req = this.#req;
    // HTTP/2 forbids connection-specific headers (RFC 9113 §8.2.2); Node warns and drops them.
    // (A client that asked to close keeps its wish: Node then ends the connection with the stream.)
    if (req.httpVersionMajor < 2 && !/\bclose\b/i.test(String(req.headers.connection ?? ''))) {
      res.setHeader('Connection', 'keep-alive');
    }
    // An event stream lives as long as the client wants it: no idle timeout may end it.
    res.setTimeout(0);
    if (req.httpVersionMajor < 2) req.socket?.setNoDelay(true);
    res.writeHead(200);
    // http1 holds headers until the first body byte; the client must see them now.
    // (http2's writeHead sends them at once.)
    res.flushHeaders?.();
    const { retry } = set.settings;
    this.attach(createTransport(req, res), retry === undefined ? '' : formatRetry(retry));
    this.#enter();
    releaseRouting(req);
    if (diagnostics.streamOpen.hasSubscribers) diagnostics.streamOpen.publish({ stream: this, request: req });
    wakeOpenWaiters(this);
    return this;
  }

  /**
   * Sends one event. Strings go as they are; other values through the `serialize` option
   * (`JSON.stringify` by default). Throws a `TypeError` for an invalid event name, id or retry and
   * then sends nothing. Returns `false` when the stream is backed up (see `drained()`) or closed.
   */
  send(data: unknown, options?: SendOptions): boolean {
    return this.#send(data, options);
  }

  /** Sends a comment line, which clients ignore; handy as a keep-alive or for debugging with curl. */
  comment(text?: string): boolean {
    return this.#write(formatComment(text));
  }

  /**
   * Resolves when what was sent has left (less than the socket's high-water mark, 16 KiB on
   * Node 20 and 64 KiB from Node 22, still buffered) or the stream closed: await it after
   * `send()` returned `false`. A stream not open yet is waited for first.
   */
  override async drained(): Promise<void> {
    while (this.#early) {
      await new Promise<void>((resolve) => {
        const waiters = openWaiters.get(this);
        if (waiters === undefined) openWaiters.set(this, [resolve]);
        else waiters.push(resolve);
      });
    }
    return super.drained();
  }

  /** Whether the caller may go on writing: before the stream opens, while little waits for it. */
  override get writable(): boolean {
    if (this.#early) return this.bufferedBytes < this.res.writableHighWaterMark;
    return super.writable;
  }

  /** Not open yet, but what is written waits for it (it was written to, or someone will open it). */
  get #early(): boolean {
    const flags = this.flags;
    return (flags & (OPENED | CLOSED)) === 0 && (flags & (PENDING | CLAIMED)) !== 0;
  }

  /**
   * Sends every chunk of `source` as an event, waiting whenever the stream is backed up. Stops
   * reading the source (and cancels it) as soon as the stream closes. Resolves `true` when the
   * whole source was sent, `false` when the stream closed first; rejects if the source throws.
   * Runs in constant memory however many chunks the source yields.
   */
  async pipe<T>(source: PipeSource<T>, options: PipeOptions<T> = {}): Promise<boolean> {
    const { iterator, stop } = iterate(source);
    const decoder = new TextDecoder();
    const sendOptions = options.event === undefined ? undefined : { event: options.event };
    // One wake-up per pending read, not one long-lived promise raced on every chunk: a promise
    // raced a million times keeps a million reactions.
    let wake: ((value: typeof CLOSED_BY_STREAM) => void) | undefined;
    const onClosed = (): void => {
      stop();
      wake?.(CLOSED_BY_STREAM);
    };
    this.onClose(onClosed);
    let finished = false;
    try {
      while (!this.closed) {
        const next = iterator.next();
        const step = await new Promise<IteratorResult<T> | typeof CLOSED_BY_STREAM>((resolve, reject) => {
          wake = resolve;
          next.then(resolve, reject);
        });
        wake = undefined;
        if (step === CLOSED_BY_STREAM) break;
        if (step.done === true) {
          finished = true;
          break;
        }
        let chunk: unknown = step.value;
        if (chunk instanceof Uint8Array) chunk = decoder.decode(chunk, { stream: true });
        const data = options.map === undefined ? chunk : options.map(chunk as T);
        if (!this.#send(data, sendOptions)) await this.drained();
      }
    } catch (error) {
      if (!this.closed) stop();
      throw error;
    } finally {
      this.offClose(onClosed);
    }
    return finished;
  }

  /** Sends what is queued, then ends the stream. Safe to call more than once. */
  close(): void {
    if ((this.flags & CLOSED) !== 0) return;
    if ((this.flags & OPENED) === 0) {
      if (this.res.headersSent) {
        // The route answered otherwise: there is no stream to end.
        this.finish();
        return;
      }
      this.open();
      if ((this.flags & CLOSED) !== 0) return; // refused
    }
    this.end();
  }

  /**
   * Answers the request with `status` and a plain-text `message` instead of a stream, and ends
   * it; if the stream is already open, only ends it. Used for connection limits and refused
   * subscriptions: a client refused this way sees no stream byte.
   */
  refuse(status: number, message: string, retryAfter?: number): void {
    this.answer(status, { type: 'text/plain; charset=utf-8', text: message }, retryAfter);
  }

  /**
   * Like `refuse()`, with any body (JSON for a 404 of an unknown run) or none (a 204, which
   * tells EventSource to stop reconnecting).
   */
  answer(status: number, body: { readonly type: string; readonly text: string } | undefined, retryAfter?: number): void {
    if ((this.flags & CLOSED) !== 0) return;
    const res = this.res;
    if ((this.flags & OPENED) !== 0) {
      this.end();
      return;
    }
    if (res.headersSent || res.writableEnded || res.destroyed) {
      this.finish();
      return;
    }
    res.statusCode = status;
    if (diagnostics.refusal.hasSubscribers) diagnostics.refusal.publish({ request: this.#req, status });
    if (body !== undefined) res.setHeader('Content-Type', body.type);
    res.setHeader('Cache-Control', 'no-store');
    if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
    this.finish();
    if (body === undefined) res.end();
    else res.end(body.text);
  }

  /** How many channels with history this stream is in. */
  get positionSources(): number {
    return sizeOf(this.#sources);
  }

  /** */
  addPositionSource(source: PositionSource): void {
    this.#sources = addTo(this.#sources, source);
  }

  /** */
  removePositionSource(source: PositionSource): void {
    this.#sources = removeFrom(this.#sources, source);
  }

  /**
   * The id that says where this stream is in every channel with history it is in
   * (see position.ts); undefined when it is in none, or none knows yet.
   */
  positionId(): string | undefined {
    const sources = this.#sources;
    if (sources === undefined) return undefined;
    if (!Array.isArray(sources)) return sources.tokenFor(this);
    let id = '';
    for (const source of sources) {
      const token = source.tokenFor(this);
      if (token !== undefined) id = id === '' ? token : `${id},${token}`;
    }
    return id === '' ? undefined : id;
  }

  /** The request this stream answers. */
  get request(): SseRequest {
    return this.#req;
  }

  /** The seconds a refusal asks the client to wait. */
  get retryAfter(): number {
    return this.#set.settings.limits.retryAfter;
  }

  /**
   * Admits the stream (connection limits, shutdown) and claims it without sending its headers: a
   * first subscription that must read where it starts opens it once it knows, so a client that saw
   * the stream open gets every event published after. False when it was refused (or is a HEAD
   * request, answered at once). Throws like `open()`.
   */
  hold(): boolean {
    if ((this.flags & (OPENED | CLOSED)) !== 0) return (this.flags & CLOSED) === 0;
    if (this.res.headersSent) {
      throw new SseError('ERR_SSE_HEADERS_SENT', 'cannot open an event stream: the response headers were already sent');
    }
    if (this.#req.method === 'HEAD' || !this.#admit()) {
      this.open();
      return false;
    }
    this.claim();
    return true;
  }

  // Connection limits and shutdown, once per stream; false (and the stream refused) when over.
  #admit(): boolean {
    if ((this.flags & ADMITTED) !== 0) return true;
    const set = this.#set;
    if (set.closing) {
      this.refuse(503, 'express-sse-hub: the server is shutting down; retry later\n', set.settings.limits.retryAfter);
      return false;
    }
    const refusal = set.limiter.admit(this, this.#req);
    if (refusal !== undefined) {
      debug('refused a stream: %d (%s)', refusal.status, refusal.message.trim());
      this.refuse(refusal.status, refusal.message, refusal.retryAfter);
      return false;
    }
    this.flags |= ADMITTED;
    return true;
  }

  /**
   * Someone (an async authorize hook) will open or refuse this stream: a route-mounted `sse()`
   * must not open it meanwhile. The handler's shutdown still covers it.
   */
  claim(): void {
    if ((this.flags & CLOSED) !== 0) return;
    this.flags |= CLAIMED;
    this.#enter();
    this.watch();
  }

  /** A claim ended without opening (the caller refused or opened it itself). */
  get claimed(): boolean {
    return (this.flags & CLAIMED) !== 0;
  }

  /**
   * The route-mounted middleware's open, once the route's synchronous code ran: unless the route
   * answered, opened, closed or claimed the stream.
   */
  openUnlessAnswered(): void {
    if ((this.flags & (OPENED | CLOSED | CLAIMED)) !== 0) return;
    const res = this.res;
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    try {
      this.open();
    } catch (error) {
      // Only a connectionKey function that throws gets here; there is no caller left to tell.
      warn(error instanceof Error ? error : new Error(String(error)));
      this.refuse(500, 'express-sse-hub: the event stream could not be opened\n');
    }
  }

  /**
   * The handler's shutdown: a last frame and the end, or a 503 if not yet open. A stream held while
   * its subscription reads where it starts is opened and ended instead: an EventSource gives up
   * on a 503, but comes back after a stream that ended.
   */
  terminate(frame: string | undefined, retry?: string): void {
    if ((this.flags & CLOSED) !== 0) return;
    if ((this.flags & (OPENED | ADMITTED)) === 0) {
      this.refuse(503, 'express-sse-hub: the server is shutting down; retry later\n', this.retryAfter);
      return;
    }
    if ((this.flags & OPENED) === 0) {
      this.open();
      if (this.closed) return;
    }
    if (retry !== undefined) this.enqueue(retry);
    if (frame !== undefined) this.enqueue(frame);
    this.end();
  }

  protected override afterClose(): void {
    wakeOpenWaiters(this);
    const flags = this.flags;
    if ((flags & OPENED) !== 0 && diagnostics.streamClose.hasSubscribers) diagnostics.streamClose.publish({ stream: this, dropped: this.dropReason });
    if ((flags & ADMITTED) !== 0) this.#set.limiter.release(this);
    if ((flags & MEMBER) !== 0) this.#set.delete(this);
    this.#controller?.abort();
  }

  #enter(): void {
    if ((this.flags & MEMBER) !== 0) return;
    this.flags |= MEMBER;
    this.#set.add(this);
  }

  #send(data: unknown, options: SendOptions | undefined): boolean {
    return this.#write(formatEvent(serializeData(data, this.#set.settings.serialize), options));
  }

  // The frame is complete (and validated) before anything changes: queues it, and says whether
  // the caller may go on.
  #write(frame: string): boolean {
    if ((this.flags & OPENED) === 0) return this.#writeEarly(frame);
    if (this.isGone()) return false;
    if (!this.enqueue(frame)) return false;
    return this.writable;
  }

  // A write before the stream opened: admitted now (a refusal answers at once), the frame waits,
  // and the stream opens once the code that wrote has run (a microtask). A subscription in that
  // same code that must first read where it starts holds the stream instead (hold()), so a route
  // that sends `connected` and then subscribes still opens only once the position is known: an
  // event published after the client saw the stream open is one it gets.
  #writeEarly(frame: string): boolean {
    const flags = this.flags;
    if ((flags & CLOSED) !== 0) return false;
    if ((flags & (PENDING | CLAIMED)) === 0) {
      if (this.res.headersSent) {
        throw new SseError('ERR_SSE_HEADERS_SENT', 'cannot open an event stream: the response headers were already sent');
      }
      if (this.#req.method === 'HEAD' || !this.#admit()) {
        this.open(); // HEAD: the headers alone; refused: answered already, nothing more happens
        return false;
      }
      this.flags |= PENDING;
      this.#enter();
      this.watch();
      queueMicrotask(() => this.#openPending());
    }
    this.stash(frame);
    return this.writable;
  }

  #openPending(): void {
    if ((this.flags & (OPENED | CLOSED | CLAIMED)) !== 0) return;
    const res = this.res;
    if (res.headersSent || res.writableEnded || res.destroyed) {
      this.finish(); // the route answered otherwise meanwhile
      return;
    }
    try {
      this.open();
    } catch (error) {
      // Nothing should throw here (the stream was admitted already); there is no caller to tell.
      warn(error instanceof Error ? error : new Error(String(error)));
      this.refuse(500, 'express-sse-hub: the event stream could not be opened\n');
    }
  }
}

/**
 * Once the stream is open the request's routing is over: Express's `req.next` (the router's
 * continuation, with every routing context behind it: about 0.7 KiB per request) and its parsed
 * URL (parsed again on demand) need not live as long as the stream. Set to undefined, not
 * deleted: a deleted property turns the request object into a slower, larger dictionary.
 */
function releaseRouting(req: SseRequest): void {
  const routed = req as SseRequest & { next?: unknown; _parsedUrl?: unknown };
  if (routed.next !== undefined) routed.next = undefined;
  if (routed._parsedUrl !== undefined) routed._parsedUrl = undefined;
}

function setStreamHeaders(res: ResponseLike, heartbeat: number | false): void {
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  // no-transform keeps compression() and transforming proxies from buffering the stream.
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  // nginx buffers proxied responses unless told otherwise.
  res.setHeader('X-Accel-Buffering', 'no');
  if (heartbeat !== false) announceHeartbeat(res, heartbeat);
}

/** The response header announcing the heartbeat interval, in ms. */
const HEARTBEAT_HEADER = 'SSE-Heartbeat-Interval';

/**
 * Tells the client how often it hears from this stream at least, so that it can take a stream
 * silent for a few intervals for dead (a proxy or NAT that stopped forwarding keeps the socket
 * open): express-sse-hub/client reconnects after three. A header rather than a first comment
 * leaves the event stream itself as it was; a cross-origin fetch reads it only when exposed, so
 * it is added to `Access-Control-Expose-Headers` when the response allows an origin (CORS
 * middleware runs before the route).
 */
function announceHeartbeat(res: ResponseLike, intervalMs: number): void {
  res.setHeader(HEARTBEAT_HEADER, String(intervalMs));
  if (res.getHeader('Access-Control-Allow-Origin') === undefined) return;
  const exposed = res.getHeader('Access-Control-Expose-Headers');
  const list = Array.isArray(exposed) ? exposed.join(', ') : typeof exposed === 'string' ? exposed : '';
  if (!list.toLowerCase().split(/\s*,\s*/).includes(HEARTBEAT_HEADER.toLowerCase())) {
    res.setHeader('Access-Control-Expose-Headers', list === '' ? HEARTBEAT_HEADER : `${list}, ${HEARTBEAT_HEADER}`);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The id the client last saw. Node reads header bytes as Latin-1; browsers (and
 * express-sse-hub/client) send Last-Event-ID as UTF-8, so the bytes are decoded as UTF-8 and an
 * id sent with `res.sse.send(…, { id })` comes back equal. Bytes that are not UTF-8 (a client
 * that sent Latin-1) are kept as Latin-1.
 */
function readLastEventId(req: SseRequest): string | undefined {
  const header = req.headers['last-event-id'];
  if (typeof header === 'string' && header !== '') return decodeHeader(header);
  const url = req.url ?? '';
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  const value = new URLSearchParams(url.slice(q + 1)).get('lastEventId');
  return value === null || value === '' ? undefined : value;
}

function decodeHeader(latin1: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(latin1)) return latin1;
  try {
    return UTF8.decode(Buffer.from(latin1, 'latin1'));
  } catch {
    return latin1;
  }
}
