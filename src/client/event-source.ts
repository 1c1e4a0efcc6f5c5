// EventSource over fetch: the WHATWG interface, plus headers, methods, bodies, retries the
// standard gives up on, and one connection shared by all tabs.
//
// States: CONNECTING (a request in flight, or waiting to retry) → OPEN (a 200 event stream) →
// CONNECTING again when it drops, until close() or a refusal that retrying cannot fix → CLOSED.
// https://html.spec.whatwg.org/multipage/server-sent-events.html#the-eventsource-interface
import { backoffDelay, clampDelay, DEFAULT_RETRY_MS, refusalDelay } from './backoff';
import { errorEvent, messageEvent, type ErrorDetail, type EventMap, type ResetData, type SseErrorEvent, type SseMessageEvent } from './events';
import { EventStreamParser } from './parser';
import { shareName } from './share-key';
import { SharedLink, type EventRelay, type LockManagerLike, type StateRelay } from './shared';

/** Extra request headers: an object, or a function (possibly async) called before every connect. */
export type HeadersOption = Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);

/** Options of `new EventSource(url, init)`: the standard's `withCredentials`, and more. */
export interface EventSourceInit {
  /** Sends cookies and HTTP auth cross-origin (credentials `include`). Default false. */
  withCredentials?: boolean;
  /** Request headers (`Authorization`), or a function returning them, called before every connect so a refreshed token is used on reconnect. */
  headers?: HeadersOption;
  /** HTTP method. Default `GET`. */
  method?: string;
  /** Request body, sent again with every reconnect (so not a one-shot stream). */
  body?: RequestInit['body'];
  /** fetch's credentials mode; overrides `withCredentials`. Default `same-origin`. */
  credentials?: RequestInit['credentials'];
  /** The fetch to use (a wrapper, a test double). Default: the global `fetch`. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /**
   * One connection for all tabs of the origin whose sources make the same request (URL, method,
   * body, and headers or `shareKey`): a Web Lock elects the tab that connects, a BroadcastChannel
   * brings the others its events. Where Web Locks, BroadcastChannel or crypto.subtle is missing
   * (Node, an insecure context), the source connects on its own. Default false.
   */
  shared?: boolean;
  /**
   * With `shared`: what identifies the request in place of its headers (a user's id), for headers
   * that differ between tabs of one user (each tab holding its own token). Sources with different
   * keys never share. Default: the headers (a `headers` function is called once more for it).
   */
  shareKey?: string;
  /** Resume after this id: sent as `Last-Event-ID` on the first connect. Default none. */
  lastEventId?: string;
  /**
   * Milliseconds without a byte after which an open stream is taken for dead (a proxy or NAT that
   * stopped forwarding) and re-established, with `Last-Event-ID`. Default: three times the
   * heartbeat interval the server announces (`SSE-Heartbeat-Interval`, which express-sse-hub's
   * `sse()` sends), else none. 0 turns it off.
   */
  heartbeatTimeout?: number;
}

/** A listener of events of type `E`, called with the source as `this`. */
export type SseListener<S, E> = ((this: S, event: E) => unknown) | { handleEvent(event: E): unknown };

/** `addEventListener`'s third argument. */
export type ListenerOptions = boolean | { capture?: boolean; once?: boolean; passive?: boolean; signal?: AbortSignal };

/** The payload type of event `K` in map `M` (`unknown` for a name the map lacks). */
export type PayloadOf<M extends object, K extends string> = K extends keyof M ? M[K] : unknown;

type Handler<S, E> = ((this: S, event: E) => unknown) | null;

// What the client uses of a browser's globals, where they exist (Node has none of these).
interface BrowserScope {
  readonly location?: { readonly href: string; readonly origin: string };
  readonly navigator?: { readonly locks?: LockManagerLike };
  addEventListener?(type: string, listener: (event: { readonly type: string; readonly persisted?: boolean }) => void): void;
  removeEventListener?(type: string, listener: (event: { readonly type: string; readonly persisted?: boolean }) => void): void;
}
const scope = globalThis as unknown as BrowserScope;
/** Page events that call for a connection at once (pagehide lets a page enter the back/forward cache). */
const WAKE_EVENTS = ['online', 'pageshow', 'pagehide'];

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;
const EVENT_STREAM = /^text\/event-stream\s*(;|$)/i;
/** The header in which express-sse-hub's server announces its heartbeat interval (ms). */
const HEARTBEAT_HEADER = 'sse-heartbeat-interval';
/** A stream is taken for dead after this many announced heartbeat intervals without a byte. */
export const HEARTBEATS_PER_TIMEOUT = 3;
/** How long the request telling a CORS refusal from an outage may take. */
const PROBE_MS = 10_000;

/**
 * `EventSource` over `fetch`, for browsers and Node 20+: the standard interface, plus `headers`,
 * `method`, `body`, reconnects after 5xx/429/503 (honouring `Retry-After`), a watchdog for silent
 * connections, `shared` mode, and async iteration.
 */
export class EventSource<M extends object = EventMap> extends EventTarget {
  /** The connection is being made, or will be retried. */
  static readonly CONNECTING = CONNECTING;
  /** Events are arriving. */
  static readonly OPEN = OPEN;
  /** Closed for good: by close(), or a refusal retrying cannot fix. */
  static readonly CLOSED = CLOSED;

  /** The URL, resolved against the page's. */
  readonly url: string;
  /** Whether cross-origin requests carry credentials. */
  readonly withCredentials: boolean;
  readonly #init: EventSourceInit;
  #state = CONNECTING;
  #lastEventId: string;
  /** The reconnection time, which `retry:` sets. */
  #retry = DEFAULT_RETRY_MS;
  /** Failed attempts since the last open stream. */
  #failures = 0;
  /** The last attempt failed a CORS check: one more such failure in a row closes the source. */
  #corsRefused = false;
  #abort: AbortController | undefined;
  /** The wait before the next attempt. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The watchdog of the open stream (see heartbeatTimeout). */
  #idle: ReturnType<typeof setTimeout> | undefined;
  readonly #handlers = new Map<string, Handler<this, Event>>();
  #link: SharedLink | undefined;
  /** The async iterators reading this source: each takes message events, the error that closed the source, or undefined for close(). */
  readonly #sinks = new Set<(event?: Event) => void>();

  /**
   * Connects to `url` (relative URLs resolve against the page; a URL that cannot be read throws a
   * `SyntaxError` DOMException, as EventSource does). The request leaves once the current code has
   * run, so listeners added right after the constructor see every event.
   */
  constructor(url: string | URL, init: EventSourceInit = {}) {
    super();
    try {
      this.url = new URL(url, scope.location?.href).href;
    } catch {
      throw new DOMException(`express-sse-hub: cannot read ${String(url)} as a URL`, 'SyntaxError');
    }
    const method = init.method ?? 'GET';
    if (init.body != null && /^(get|head)$/i.test(method)) {
      throw new TypeError(`express-sse-hub: body needs a method such as POST, got method ${JSON.stringify(method)}`);
    }
    const { heartbeatTimeout } = init;
    if (heartbeatTimeout !== undefined && !(typeof heartbeatTimeout === 'number' && heartbeatTimeout >= 0 && heartbeatTimeout <= clampDelay(Infinity))) {
      throw new TypeError(`express-sse-hub: heartbeatTimeout must be a number of ms from 0 to ${clampDelay(Infinity)}, got ${String(heartbeatTimeout)}`);
    }
    this.#init = init;
    this.withCredentials = (init.credentials ?? (init.withCredentials === true ? 'include' : '')) === 'include';
    this.#lastEventId = init.lastEventId ?? '';
    const locks = scope.navigator?.locks;
    if (init.shared === true && locks !== undefined && typeof BroadcastChannel === 'function' && globalThis.crypto?.subtle !== undefined) {
      void this.#share(locks);
    } else queueMicrotask(() => void this.#connect());
    for (const type of WAKE_EVENTS) scope.addEventListener?.(type, this.#wake);
  }

  /** `CONNECTING` (0), `OPEN` (1) or `CLOSED` (2). */
  get readyState(): number {
    return this.#state;
  }

  /** The last event ID the stream set (sent back as `Last-Event-ID` when reconnecting). */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** 0: connecting. */
  get CONNECTING(): 0 {
    return CONNECTING;
  }

  /** 1: open. */
  get OPEN(): 1 {
    return OPEN;
  }

  /** 2: closed. */
  get CLOSED(): 2 {
    return CLOSED;
  }

  /** Called for `open` events. */
  get onopen(): Handler<this, Event> {
    return this.#handler('open');
  }
  set onopen(handler: Handler<this, Event>) {
    this.#setHandler('open', handler);
  }

  /** Called for unnamed events (`message`). */
  get onmessage(): Handler<this, SseMessageEvent<PayloadOf<M, 'message'>>> {
    return this.#handler('message');
  }
  set onmessage(handler: Handler<this, SseMessageEvent<PayloadOf<M, 'message'>>>) {
    this.#setHandler('message', handler as Handler<this, Event>);
  }

  /** Called for `error` events. */
  get onerror(): Handler<this, SseErrorEvent> {
    return this.#handler('error');
  }
  set onerror(handler: Handler<this, SseErrorEvent>) {
    this.#setHandler('error', handler as Handler<this, Event>);
  }

  /**
   * Listens for `type`: `open`, `error`, `reset`, or the events of the map (typed payloads), or any
   * other name (the standard's `addEventListener`).
   */
  override addEventListener(type: 'open', listener: SseListener<this, Event> | null, options?: ListenerOptions): void;
  override addEventListener(type: 'error', listener: SseListener<this, SseErrorEvent> | null, options?: ListenerOptions): void;
  override addEventListener(type: 'reset', listener: SseListener<this, SseMessageEvent<ResetData>> | null, options?: ListenerOptions): void;
  override addEventListener<K extends string>(type: K, listener: SseListener<this, SseMessageEvent<PayloadOf<M, K>>> | null, options?: ListenerOptions): void;
  override addEventListener(type: string, listener: SseListener<this, never> | null, options?: ListenerOptions): void {
    super.addEventListener(type, listener as Parameters<EventTarget['addEventListener']>[1], options);
  }

  /** Removes a listener added with `addEventListener` (any listener type fits). */
  override removeEventListener(type: string, listener: SseListener<this, never> | null, options?: ListenerOptions): void {
    super.removeEventListener(type, listener as Parameters<EventTarget['removeEventListener']>[1], options);
  }

  /**
   * Every message event, whatever its type, in order: `for await (const event of source)`. The
   * loop ends when the source is closed, and throws when the source fails for good (an Error whose
   * `cause` is the `error` event), after the events that came before. Leaving the loop (`break`,
   * `return`, a throw) closes the source. Events wait in memory while the loop body runs.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<SseMessageEvent, void, undefined> {
    const queue: Event[] = [];
    let wake = (): void => undefined;
    const sink = (event?: Event): void => {
      if (event === undefined) queue.length = 0;
      else queue.push(event);
      wake();
    };
    this.#sinks.add(sink);
    try {
      for (;;) {
        const event = queue.shift();
        if (event === undefined) {
          if (this.#state === CLOSED) return;
          await new Promise<void>((resolve) => (wake = resolve));
        } else if (event.type === 'error') throw new Error((event as SseErrorEvent).message, { cause: event });
        else yield event as SseMessageEvent;
      }
    } finally {
      this.#sinks.delete(sink);
      this.close();
    }
  }

  /** Closes the connection for good; no event fires after it. In shared mode another tab takes over. */
  close(): void {
    this.#stop();
    for (const sink of this.#sinks) sink();
  }

  /** Ends everything this source runs: its request, its timers, its part in a shared connection. */
  #stop(): void {
    this.#state = CLOSED;
    clearTimeout(this.#timer);
    clearTimeout(this.#idle);
    this.#abort?.abort();
    this.#link?.close();
    for (const type of WAKE_EVENTS) scope.removeEventListener?.(type, this.#wake);
  }

  #handler<E>(type: string): Handler<this, E> {
    return (this.#handlers.get(type) ?? null) as Handler<this, E>;
  }

  // An event handler attribute is one listener, added where it was first set (the DOM's rule).
  #setHandler(type: string, handler: Handler<this, Event>): void {
    if (!this.#handlers.has(type)) this.addEventListener(type, (event: Event) => this.#handlers.get(type)?.call(this, event));
    this.#handlers.set(type, typeof handler === 'function' ? handler : null);
  }

  /** The request headers the `headers` option gives now. */
  async #headers(): Promise<Record<string, string> | undefined> {
    const { headers } = this.#init;
    return typeof headers === 'function' ? headers() : headers;
  }

  /** Shared mode: joins the connection of the same request, or waits to be the one making it. */
  async #share(locks: LockManagerLike): Promise<void> {
    const init = this.#init;
    let name: string | undefined;
    try {
      name = await shareName(this.url, init.method ?? 'GET', init.shareKey ?? (await this.#headers()), init.body);
    } catch {
      // The headers function threw: connect alone, where its failures are retried and reported.
    }
    if (this.#state === CLOSED) return;
    if (name === undefined) void this.#connect();
    else this.#link = new SharedLink(name, this.#member(), locks);
  }

  /** Connects now (a request already in flight is abandoned). */
  async #connect(): Promise<void> {
    if (this.#state === CLOSED) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
    const abort = new AbortController();
    this.#abort = abort;
    const { signal } = abort;
    const init = this.#init;
    let response: Response;
    let sent = false;
    try {
      const headers = new Headers(await this.#headers());
      if (!headers.has('accept')) headers.set('accept', 'text/event-stream');
      if (this.#lastEventId !== '') headers.set('last-event-id', utf8Bytes(this.#lastEventId));
      if (signal.aborted) return;
      const request: RequestInit & { cache: string } = {
        method: init.method ?? 'GET',
        // A plain object, which a fetch wrapper can spread ({ ...init.headers, more }).
        headers: Object.fromEntries(headers),
        body: init.body ?? null,
        credentials: init.credentials ?? (this.withCredentials ? 'include' : 'same-origin'),
        // As EventSource does: never an answer from the HTTP cache (Node's RequestInit type lacks it).
        cache: 'no-store',
        signal,
      };
      sent = true;
      response = await (init.fetch ?? fetch)(this.url, request);
    } catch (error) {
      if (!signal.aborted) await this.#unanswered(error, sent, signal);
      return;
    }
    this.#corsRefused = false;
    const { status, body } = response;
    if (status === 200 && EVENT_STREAM.test(response.headers.get('content-type') ?? '')) {
      // A custom fetch may hand back something else (a Node stream, a string): no stream to read, ever.
      if (typeof body?.getReader !== 'function') {
        this.#fail(status, `the response of ${this.url} has no readable body (fetch must return a web ReadableStream)`);
        return;
      }
      this.#failures = 0;
      this.#change(OPEN);
      const announced = Number(response.headers.get(HEARTBEAT_HEADER)) * HEARTBEATS_PER_TIMEOUT;
      try {
        await this.#read(body, new URL(response.url || this.url).origin, abort, init.heartbeatTimeout ?? announced);
      } catch {
        // The connection dropped (or close() or the watchdog aborted it).
      }
      if (!signal.aborted) this.#retryLater(this.#retry, undefined, 'the stream ended');
      return;
    }
    void (body?.cancel?.())?.catch(() => undefined);
    const refused = `${this.url} answered ${status}`;
    if (status === 429 || status >= 500) {
      this.#retryLater(refusalDelay(++this.#failures, this.#retry, response.headers.get('retry-after')), status, refused);
    } else {
      // 204, any other 4xx, or a 200 that is not an event stream: retrying would not help.
      this.#fail(status, status === 200 ? `${this.url} is not a text/event-stream` : refused);
    }
  }

  /** A request that got no answer: the network failed, the `headers` function threw, or a CORS check refused the answer. */
  async #unanswered(error: unknown, sent: boolean, signal: AbortSignal): Promise<void> {
    const message = String((error as Error)?.message ?? error);
    // fetch cannot load this kind of URL (ftp:, about:, mailto:…): as EventSource does, the source
    // fails for good.
    if (!/^https?:/.test(this.url)) {
      this.#fail(undefined, message);
      return;
    }
    // fetch rejects a refused CORS check as it rejects an outage. A request the page may make
    // without CORS ('no-cors', whose answer it cannot read) tells them apart: it gets an answer.
    const location = scope.location;
    const refused = sent && location !== undefined && new URL(this.url).origin !== location.origin && (await this.#answers());
    if (signal.aborted) return;
    if (refused && this.#corsRefused) {
      this.#fail(undefined, `${this.url} refused the origin ${location.origin} (no CORS headers allowing it): ${message}`);
      return;
    }
    // Once may be a server that came up between the two requests: ask again at once.
    this.#corsRefused = refused;
    if (refused) void this.#connect();
    else this.#retryLater(backoffDelay(++this.#failures, this.#retry), undefined, message);
  }

  /** Whether the URL answers a request made without CORS (the page cannot read that answer). */
  async #answers(): Promise<boolean> {
    const probe = new AbortController();
    const timer = setTimeout(() => probe.abort(), PROBE_MS);
    try {
      await (this.#init.fetch ?? fetch)(this.url, { mode: 'no-cors', cache: 'no-store', credentials: 'omit', signal: probe.signal } as RequestInit);
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      probe.abort(); // the answer, an event stream maybe, is not read
    }
  }

  /**
   * Reads the stream until it ends. `timeout` > 0: the watchdog aborts it and reconnects when no
   * byte came for that long (a relay that went silent keeps the socket open for ever).
   */
  async #read(body: ReadableStream<Uint8Array>, origin: string, abort: AbortController, timeout: number): Promise<void> {
    const { signal } = abort;
    const reader = body.getReader();
    // The BOM stays in the text: the parser strips one at the start of the stream, as specified.
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    const parser = new EventStreamParser(
      this.#lastEventId,
      (id, type, data) => {
        if (!signal.aborted) this.#dispatch({ kind: 'event', prev: this.#lastEventId, id, ...(type === undefined ? {} : { type, data, origin }) });
      },
      (ms) => (this.#retry = ms),
    );
    let last = Date.now();
    const watch = (): void => {
      const left = last + timeout - Date.now();
      if (left > 0) this.#idle = setTimeout(watch, clampDelay(left));
      else if (!signal.aborted) {
        abort.abort();
        this.#retryLater(this.#retry, undefined, `no byte for ${timeout} ms: the connection is taken for dead`);
      }
    };
    if (timeout > 0) watch();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || signal.aborted) return;
        last = Date.now();
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } finally {
      clearTimeout(this.#idle);
    }
  }

  /** Takes a dispatch of the stream (read here, or relayed by the leader). */
  #dispatch(relay: EventRelay): void {
    if (this.#link?.leading === true && (relay.type !== undefined || relay.id !== relay.prev)) this.#link.post(relay);
    this.#lastEventId = relay.id;
    if (relay.type === undefined) return;
    const event = messageEvent(relay.type, relay.data ?? '', relay.id, relay.origin ?? '');
    this.dispatchEvent(event);
    if (this.#state !== CLOSED) for (const sink of this.#sinks) sink(event);
  }

  /** The stream opened (OPEN) or is being re-established (CONNECTING, after an error). */
  #change(state: number, error?: ErrorDetail): void {
    this.#state = state;
    if (this.#link?.leading === true) this.#link.post({ kind: 'state', state, id: this.#lastEventId, ...(error === undefined ? {} : { error }) });
    this.dispatchEvent(error === undefined ? new Event('open') : errorEvent(error));
  }

  /** Announces the failure, then tries again after `delay` ms (unless a listener closed the source). */
  #retryLater(delay: number, status: number | undefined, message: string): void {
    if (this.#state === CLOSED) return;
    delay = clampDelay(delay);
    this.#change(CONNECTING, { status, message: `express-sse-hub: ${message}`, reconnectIn: delay });
    if (this.#state !== CLOSED) this.#timer = setTimeout(() => void this.#connect(), delay);
  }

  /** Closes for good and says why. */
  #fail(status: number | undefined, message: string): void {
    if (this.#state === CLOSED) return;
    const error = { status, message: `express-sse-hub: ${message}`, reconnectIn: undefined };
    if (this.#link?.leading === true) this.#link.post({ kind: 'state', state: CLOSED, id: this.#lastEventId, error });
    this.#closeWith(error);
  }

  /** Closed for good by a failure: listeners get the error event, iterators the error after their events. */
  #closeWith(error: ErrorDetail): void {
    this.#stop();
    const event = errorEvent(error);
    for (const sink of this.#sinks) sink(event);
    this.dispatchEvent(event);
  }

  // Online again, or back from the back/forward cache: waiting out a backoff would only delay.
  // Going into that cache, the stream is closed (an open one keeps a page out of it).
  readonly #wake = (event: { readonly type: string; readonly persisted?: boolean }): void => {
    if (this.#state === CLOSED || (this.#link !== undefined && !this.#link.leading)) return;
    if (event.type === 'pagehide') {
      if (event.persisted === true && this.#link === undefined) {
        clearTimeout(this.#timer);
        this.#abort?.abort();
      }
    } else if (event.type === 'online' ? this.#timer !== undefined : event.persisted === true) {
      if (this.#state === OPEN) this.#retryLater(0, undefined, 'back from the back/forward cache');
      else void this.#connect();
    }
  };

  /** This source as a shared link sees it. */
  #member(): ConstructorParameters<typeof SharedLink>[1] {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const source = this;
    return {
      get lastEventId() {
        return source.#lastEventId;
      },
      lead: () => {
        // The former leader's connection is gone: this one is re-established, from this tab's id.
        if (this.#state === OPEN) this.#retryLater(0, undefined, 'the tab holding the shared connection left');
        else void this.#connect();
      },
      follow: (relay: StateRelay) => {
        if (relay.error === undefined) {
          if (relay.state === OPEN && this.#state !== OPEN) this.#change(OPEN);
        } else if (relay.state === CLOSED) this.#closeWith(relay.error);
        else this.#change(relay.state, relay.error);
      },
      apply: (relay: EventRelay) => this.#dispatch(relay),
      greet: () => this.#link?.post({ kind: 'state', state: this.#state, id: this.#lastEventId }),
    };
  }
}

/**
 * `value` as the bytes of its UTF-8, one char per byte: what fetch sends of a header value (it
 * refuses a char above U+00FF, and sends one from U+0080 to U+00FF as a single byte). Browsers
 * send Last-Event-ID as UTF-8.
 */
function utf8Bytes(value: string): string {
  let bytes = '';
  for (const byte of new TextEncoder().encode(value)) bytes += String.fromCharCode(byte);
  return bytes;
}
