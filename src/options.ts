import type { Request } from 'express';
import { fieldError } from './errors';
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
// setInterval silently clamps anything above 2^31-1 ms to 1 ms, which would flood every stream.
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay timers honour: an integer from 1 to MAX_TIMER_MS. */
export function isTimerMs(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0 && (value as number) <= MAX_TIMER_MS;
}

const KNOWN_OPTIONS = new Set(['heartbeat', 'retry', 'serialize', 'maxConnections', 'maxConnectionsPerKey', 'connectionKey', 'retryAfter']);

export function checkOptionNames(options: object, known: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(options)) {
    if (known.has(key)) continue;
    const near = nearest(key, known);
    const hint = near === undefined ? '' : ` (did you mean "${near}"?)`;
    throw fieldError('ERR_SSE_INVALID_OPTION', `${what} option "${key}"`, `one of ${[...known].join(', ')}${hint}`, key);
  }
}

// The known name a misspelt one most likely meant: the same letters in another case, or at most
// two edits away (adaptor → adapter, authorise → authorize, hearbeat → heartbeat).
function nearest(name: string, known: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    if (candidate.toLowerCase() === name.toLowerCase()) return candidate;
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance with adjacent transpositions counted as one edit. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i += 1) {
    const row = [i];
    for (let j = 1; j <= b.length; j += 1) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

export function checkOptionsObject(options: unknown, what: string): asserts options is object {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', `${what} options`, 'an object', options);
  }
}

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
