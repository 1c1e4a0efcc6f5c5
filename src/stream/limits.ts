// Connection limits of one sse() middleware: how many streams it holds open in all, and per key
// (the client's IP unless the app says otherwise, e.g. a user id). A stream beyond a limit is
// refused before any stream byte: 503 when the server is full, 429 when this client has too many,
// both with Retry-After. Streams already open are never touched.
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

type LimitedRequest = IncomingMessage | Http2ServerRequest;

/** The refusal of a stream over a limit. */
export interface Refusal {
  readonly status: 429 | 503;
  readonly retryAfter: number;
  readonly message: string;
}

export interface LimitSettings {
  readonly max: number | undefined;
  readonly perKey: number | undefined;
  readonly key: (req: LimitedRequest) => string;
  readonly retryAfter: number;
}

/** Counters of one sse() middleware, for metrics. */
export interface ConnectionStats {
  /** Streams open now. */
  readonly connections: number;
  /** Distinct keys with at least one stream open (counted only with a per-key limit). */
  readonly keys: number;
  /** Streams refused with 503 (the global limit) since the middleware was created. */
  readonly refusedFull: number;
  /** Streams refused with 429 (the per-key limit) since the middleware was created. */
  readonly refusedPerKey: number;
}

/**
 * The default key: Express's `req.ip` (which honours the app's `trust proxy` setting, so behind a
 * proxy it is the client, not the proxy), else the socket's address.
 */
export function clientIp(req: LimitedRequest): string {
  const ip = (req as { ip?: unknown }).ip;
  if (typeof ip === 'string' && ip !== '') return ip;
  return req.socket?.remoteAddress ?? '';
}

export class ConnectionLimiter {
  readonly #settings: LimitSettings;
  #count = 0;
  readonly #perKey = new Map<string, number>();
  /** The key each admitted stream was counted under (only with a per-key limit). */
  readonly #keyOf = new WeakMap<object, string>();
  #refusedFull = 0;
  #refusedPerKey = 0;

  constructor(settings: LimitSettings) {
    this.#settings = settings;
  }

  /**
   * Counts `stream` in, or says why it may not open. A key function that throws counts nothing
   * in: its error is thrown to whoever opened the stream (the route's send(), open() or subscribe;
   * for the middleware's own deferred open, a process warning and a plain 500).
   */
  admit(stream: object, req: LimitedRequest): Refusal | undefined {
    const { max, perKey, retryAfter } = this.#settings;
    if (max !== undefined && this.#count >= max) {
      this.#refusedFull += 1;
      return { status: 503, retryAfter, message: `express-sse-hub: the server holds its maximum of ${max} event streams; retry later\n` };
    }
    if (perKey !== undefined) {
      const key = this.#settings.key(req);
      if (typeof key !== 'string') throw new TypeError(`express-sse-hub: connectionKey must return a string; it returned ${typeof key}`);
      const held = this.#perKey.get(key) ?? 0;
      if (held >= perKey) {
        this.#refusedPerKey += 1;
        return { status: 429, retryAfter, message: `express-sse-hub: this client already holds its maximum of ${perKey} event streams\n` };
      }
      this.#perKey.set(key, held + 1);
      this.#keyOf.set(stream, key);
    }
    this.#count += 1;
    return undefined;
  }

  /** Counts an admitted stream out, once it has closed. */
  release(stream: object): void {
    this.#count -= 1;
    const key = this.#keyOf.get(stream);
    if (key === undefined) return;
    this.#keyOf.delete(stream);
    const held = (this.#perKey.get(key) ?? 1) - 1;
    if (held === 0) this.#perKey.delete(key);
    else this.#perKey.set(key, held);
  }

  stats(): ConnectionStats {
    return { connections: this.#count, keys: this.#perKey.size, refusedFull: this.#refusedFull, refusedPerKey: this.#refusedPerKey };
  }
}
