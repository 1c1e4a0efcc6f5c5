import type { Request } from 'express';
import { MAX_TIMER_MS, checkOptionNames, checkOptionsObject, isTimerMs } from '../common/checks';
import { fieldError } from '../common/errors';
import { clientIp, type LimitSettings } from './limits';
import { validateRetry, type Serializer } from './serializer';

/** Options of `sse()`. Read once when the middleware is created. */
export interface SseOptions {
  /**
   * Milliseconds between keep-alive comments on a stream that sent nothing else in that time;
   * they stop proxies and load balancers from closing idle streams. `false` disables them.
   * @default 15000
   */
  readonly heartbeat?: number | false;
  /**
   * Reconnection delay in milliseconds sent as a `retry:` field when the stream opens.
   * Unset by default, so the browser keeps its own (about 3 s).
   */
  readonly retry?: number;
  /**
   * Turns non-string data into text. Strings are always sent as they are.
   * @default JSON.stringify
   */
  readonly serialize?: Serializer;
  /**
   * Most streams this middleware holds open at once, over every route it is mounted on. One more
   * is refused with `503 Service Unavailable` and `Retry-After`, before any stream byte.
   * Unset: no limit.
   */
  readonly maxConnections?: number;
  /**
   * Most streams one client (see `connectionKey`) holds open at once. One more is refused with
   * `429 Too Many Requests` and `Retry-After`. Unset: no limit.
   */
  readonly maxConnectionsPerKey?: number;
  /**
   * Who a client is, for `maxConnectionsPerKey`: e.g. `(req) => req.user?.id ?? req.ip`.
   * @default the client's IP: `req.ip` (honours Express's `trust proxy`), else the socket's address
   */
  readonly connectionKey?: (req: Request) => string;
  /**
   * Seconds sent in `Retry-After` with a refusal.
   * @default 10
   */
  readonly retryAfter?: number;
}

/** The validated, complete form of {@link SseOptions}. */
export interface SseSettings {
  readonly heartbeat: number | false;
  readonly retry: number | undefined;
  readonly serialize: Serializer;
  readonly limits: LimitSettings;
}

export const DEFAULT_HEARTBEAT_MS = 15_000;
const KNOWN_OPTIONS = new Set(['heartbeat', 'retry', 'serialize', 'maxConnections', 'maxConnectionsPerKey', 'connectionKey', 'retryAfter']);

export function resolveSseOptions(options: SseOptions = {}): SseSettings {
  checkOptionsObject(options, 'sse()');
  checkOptionNames(options, KNOWN_OPTIONS, 'sse()');
  const { heartbeat = DEFAULT_HEARTBEAT_MS, retry, serialize = JSON.stringify, maxConnections, maxConnectionsPerKey, connectionKey, retryAfter = 10 } = options;
  if (heartbeat !== false && !isTimerMs(heartbeat)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'heartbeat', `false or an integer from 1 to ${MAX_TIMER_MS} (ms)`, heartbeat);
  }
  if (retry !== undefined) {
    try {
      validateRetry(retry);
    } catch {
      throw fieldError('ERR_SSE_INVALID_OPTION', 'retry', 'a non-negative integer (ms)', retry);
    }
  }
  if (typeof serialize !== 'function') {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'serialize', 'a function', serialize);
  }
  for (const [name, value] of [
    ['maxConnections', maxConnections],
    ['maxConnectionsPerKey', maxConnectionsPerKey],
  ] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
      throw fieldError('ERR_SSE_INVALID_OPTION', name, 'a positive integer', value);
    }
  }
  if (connectionKey !== undefined && typeof connectionKey !== 'function') {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'connectionKey', 'a function', connectionKey);
  }
  if (connectionKey !== undefined && maxConnectionsPerKey === undefined) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'connectionKey', 'set together with maxConnectionsPerKey', connectionKey);
  }
  if (!(Number.isSafeInteger(retryAfter) && retryAfter >= 0)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'retryAfter', 'a non-negative integer (seconds)', retryAfter);
  }
  const limits: LimitSettings = {
    max: maxConnections,
    perKey: maxConnectionsPerKey,
    key: (connectionKey as ((req: unknown) => string) | undefined) ?? clientIp,
    retryAfter,
  };
  return { heartbeat, retry, serialize: serialize as Serializer, limits };
}
