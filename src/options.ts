import { fieldError } from './errors';
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
}

/** The validated, complete form of {@link SseOptions}. */
export interface SseSettings {
  readonly heartbeat: number | false;
  readonly retry: number | undefined;
  readonly serialize: Serializer;
}

export const DEFAULT_HEARTBEAT_MS = 15_000;
// setInterval silently clamps anything above 2^31-1 ms to 1 ms, which would flood every stream.
const MAX_TIMER_MS = 2 ** 31 - 1;

const KNOWN_OPTIONS = new Set(['heartbeat', 'retry', 'serialize']);

export function checkOptionNames(options: object, known: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      throw fieldError('ERR_SSE_INVALID_OPTION', `${what} option "${key}"`, `one of ${[...known].join(', ')}`, key);
    }
  }
}

export function checkOptionsObject(options: unknown, what: string): asserts options is object {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', `${what} options`, 'an object', options);
  }
}

export function resolveSseOptions(options: SseOptions = {}): SseSettings {
  checkOptionsObject(options, 'sse()');
  checkOptionNames(options, KNOWN_OPTIONS, 'sse()');
  const { heartbeat = DEFAULT_HEARTBEAT_MS, retry, serialize = JSON.stringify } = options;
  if (heartbeat !== false && !(Number.isSafeInteger(heartbeat) && heartbeat > 0 && heartbeat <= MAX_TIMER_MS)) {
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
  return { heartbeat, retry, serialize: serialize as Serializer };
}
