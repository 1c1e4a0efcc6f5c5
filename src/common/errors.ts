/** Stable error codes carried by every error this package creates. */
export type SseErrorCode =
  | 'ERR_SSE_INVALID_OPTION'
  | 'ERR_SSE_INVALID_EVENT'
  | 'ERR_SSE_INVALID_ID'
  | 'ERR_SSE_INVALID_RETRY'
  | 'ERR_SSE_INVALID_DATA'
  | 'ERR_SSE_INVALID_COMMENT'
  | 'ERR_SSE_HEADERS_SENT'
  | 'ERR_SSE_INVALID_ARGUMENT'
  | 'ERR_SSE_INVALID_CHANNEL'
  | 'ERR_SSE_NO_STREAM'
  | 'ERR_SSE_REGISTRY_CLOSED'
  | 'ERR_SSE_FILTER_FAILED'
  | 'ERR_SSE_REPLAY_FAILED'
  | 'ERR_SSE_AUTHORIZE_FAILED'
  | 'ERR_SSE_ADAPTER_UNAVAILABLE'
  | 'ERR_SSE_LOG_SEALED'
  | 'ERR_SSE_RUN_EXISTS'
  | 'ERR_SSE_RUN_FAILED'
  | 'ERR_SSE_RUN_STOPPED'
  | 'ERR_SSE_MISSING_PEER'
  | 'ERR_SSE_LOG_LOST'
  | 'ERR_SSE_INVALID_MESSAGE';

/** A runtime error raised by express-sse-hub; `code` is stable across releases. */
export class SseError extends Error {
  readonly code: SseErrorCode;

  constructor(code: SseErrorCode, message: string, options?: { cause?: unknown }) {
    super(`express-sse-hub: ${message}`, options);
    this.name = 'SseError';
    this.code = code;
  }
}

/** A `TypeError` for a value the caller got wrong, with a stable `code` like Node's own errors. */
export type SseTypeError = TypeError & { code: SseErrorCode };

export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  }
  if (typeof value === 'function') return 'a function';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return 'undefined';
}

/** Builds "express-sse-hub: <field> must be <expected>, received <value>". */
export function fieldError(code: SseErrorCode, field: string, expected: string, received: unknown): SseTypeError {
  const error = new TypeError(
    `express-sse-hub: ${field} must be ${expected}, received ${describeValue(received)}`,
  ) as SseTypeError;
  error.code = code;
  return error;
}

/** Reports an error nobody listens for as a process warning; never throws. */
export function warn(error: Error): void {
  // The message, not the object: emitWarning rejects Error objects from another realm (vm, jest).
  process.emitWarning(error.message, { type: 'SseWarning', code: (error as { code?: string }).code });
}

/**
 * Hands `error` to the user's `listener` (`who` names it). Errors are reported from Redis
 * callbacks, timers and promise handlers, where a listener that throws would be an uncaught
 * exception or an unhandled rejection (either ends the process): what it throws becomes a
 * warning instead.
 */
export function tellListener(listener: (error: Error) => void, error: Error, who: string): void {
  try {
    listener(error);
  } catch (thrown) {
    warn(new Error(`${who} threw (${thrown instanceof Error ? thrown.message : String(thrown)}) on: ${error.message}`));
  }
}
