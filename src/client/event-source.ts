// EventSource over fetch: the WHATWG interface, plus headers, methods, bodies, retries the
// standard gives up on, and one connection shared by all tabs.
//
// States: CONNECTING (a request in flight, or waiting to retry) → OPEN (a 200 event stream) →
// CONNECTING again when it drops, until close() or a refusal that retrying cannot fix → CLOSED.
// https://html.spec.whatwg.org/multipage/server-sent-events.html#the-eventsource-interface
import { backoffDelay, clampDelay, DEFAULT_RETRY_MS, retryAfterMs } from './backoff';
import { errorEvent, messageEvent, type ErrorDetail, type EventMap, type ResetData, type SseErrorEvent, type SseMessageEvent } from './events';
import { EventStreamParser } from './parser';
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
   * One connection per URL for all tabs of the origin: a Web Lock elects the tab that connects, a
   * BroadcastChannel brings the others its events. Where either API is missing (Node), the source
   * connects on its own. Default false.
   */
  shared?: boolean;
  /** Resume after this id: sent as `Last-Event-ID` on the first connect. Default none. */
  lastEventId?: string;
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
  readonly location?: { readonly href: string };
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

/**
 * `EventSource` over `fetch`, for browsers and Node 20+: the standard interface, plus `headers`,
 * `method`, `body`, reconnects after 5xx/429/503 (honouring `Retry-After`), and `shared` mode.
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
  #abort: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #handlers = new Map<string, Handler<this, Event>>();
  #link: SharedLink | undefined;

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
    this.#init = init;
    this.withCredentials = (init.credentials ?? (init.withCredentials === true ? 'include' : '')) === 'include';
    this.#lastEventId = init.lastEventId ?? '';
    const locks = scope.navigator?.locks;
    if (init.shared === true && locks !== undefined && typeof BroadcastChannel === 'function') {
      this.#link = new SharedLink(`express-sse-hub:${this.url}`, this.#member(), locks);
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

  /** Closes the connection for good; no event fires after it. In shared mode another tab takes over. */
  close(): void {
    this.#state = CLOSED;
    clearTimeout(this.#timer);
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
    try {
      const headers = new Headers(typeof init.headers === 'function' ? await init.headers() : init.headers);
      if (!headers.has('accept')) headers.set('accept', 'text/event-stream');
      if (this.#lastEventId !== '') headers.set('last-event-id', this.#lastEventId);
      if (signal.aborted) return;
      const request: RequestInit & { cache: string } = {
        method: init.method ?? 'GET',
        headers,
        body: init.body ?? null,
        credentials: init.credentials ?? (this.withCredentials ? 'include' : 'same-origin'),
        // As EventSource does: never an answer from the HTTP cache (Node's RequestInit type lacks it).
        cache: 'no-store',
        signal,
      };
      response = await (init.fetch ?? fetch)(this.url, request);
    } catch (error) {
      // The headers function threw, or the network failed: try again later.
      if (!signal.aborted) this.#retryLater(backoffDelay(++this.#failures, this.#retry), undefined, String((error as Error)?.message ?? error));
      return;
    }
    const { status, body } = response;
    if (status === 200 && body !== null && EVENT_STREAM.test(response.headers.get('content-type') ?? '')) {
      this.#failures = 0;
      this.#change(OPEN);
      try {
        await this.#read(body, new URL(response.url || this.url).origin, signal);
      } catch {
        // The connection dropped (or close() aborted it).
      }
      if (!signal.aborted) this.#retryLater(this.#retry, undefined, 'the stream ended');
      return;
    }
    void body?.cancel().catch(() => undefined);
    const refused = `${this.url} answered ${status}`;
    if (status === 429 || status >= 500) {
      this.#failures += 1;
      this.#retryLater(retryAfterMs(response.headers.get('retry-after')) ?? backoffDelay(this.#failures, this.#retry), status, refused);
    } else {
      // 204, any other 4xx, or a 200 that is not an event stream: retrying would not help.
      this.#fail(status, status === 200 ? `${this.url} is not a text/event-stream` : refused);
    }
  }

  async #read(body: ReadableStream<Uint8Array>, origin: string, signal: AbortSignal): Promise<void> {
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
    for (;;) {
      const { done, value } = await reader.read();
      if (done || signal.aborted) return;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  }

  /** Takes a dispatch of the stream (read here, or relayed by the leader). */
  #dispatch(relay: EventRelay): void {
    if (this.#link?.leading === true && (relay.type !== undefined || relay.id !== relay.prev)) this.#link.post(relay);
    this.#lastEventId = relay.id;
    if (relay.type !== undefined) this.dispatchEvent(messageEvent(relay.type, relay.data ?? '', relay.id, relay.origin ?? ''));
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
    this.#state = CLOSED;
    if (this.#link?.leading === true) this.#link.post({ kind: 'state', state: CLOSED, id: this.#lastEventId, error });
    this.close();
    this.dispatchEvent(errorEvent(error));
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
        if (relay.error !== undefined) {
          if (relay.state === CLOSED) {
            this.close();
            this.dispatchEvent(errorEvent(relay.error));
          } else this.#change(relay.state, relay.error);
        } else if (relay.state === OPEN && this.#state !== OPEN) this.#change(OPEN);
      },
      apply: (relay: EventRelay) => this.#dispatch(relay),
      greet: () => this.#link?.post({ kind: 'state', state: this.#state, id: this.#lastEventId }),
    };
  }
}

