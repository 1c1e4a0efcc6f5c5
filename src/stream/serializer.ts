// Pure wire-format helpers for text/event-stream. No I/O and no state: every function either
// returns the complete text of a frame or throws before anything could have been written.
// Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
import { fieldError } from '../common/errors';

/** Turns a non-string payload into text. Must return a string. */
export type Serializer = (data: unknown) => string;

/** The fields of one event besides its data. */
export interface FrameFields {
  event?: string | undefined;
  id?: string | number | undefined;
  retry?: number | undefined;
}

// The parser ends a line at CRLF, at a lone LF and at a lone CR, so all three must be split.
const LINE_BREAK = /\r\n|\r|\n/;

function hasLineBreak(text: string): boolean {
  return text.includes('\n') || text.includes('\r');
}

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// UTF-8 cannot carry a lone surrogate (half of a UTF-16 pair, e.g. from slicing an emoji): it
// goes out as U+FFFD. In data that is what any encoder does; in an event name or id it would
// silently change a listener's name or the Last-Event-ID the client sends back, so those throw.
/** A non-empty string without CR, LF or lone surrogates: what `event:` may carry. */
export function isEventName(event: unknown): event is string {
  return typeof event === 'string' && event !== '' && !hasLineBreak(event) && !LONE_SURROGATE.test(event);
}

/** A string without CR, LF, NUL or lone surrogates: what `id:` may carry. */
export function isEventId(id: unknown): id is string {
  return typeof id === 'string' && !hasLineBreak(id) && !id.includes('\0') && !LONE_SURROGATE.test(id);
}

export function validateEvent(event: unknown): string {
  if (!isEventName(event)) {
    throw fieldError('ERR_SSE_INVALID_EVENT', 'event', 'a non-empty string without CR, LF or lone surrogates', event);
  }
  return event;
}

export function validateId(id: unknown): string {
  // Number.isFinite is false for anything but a number (no coercion).
  if (Number.isFinite(id)) return String(id);
  // A parser ignores an id field that contains NUL, so the client would silently keep the old id.
  if (!isEventId(id)) {
    throw fieldError('ERR_SSE_INVALID_ID', 'id', 'a finite number or a string without CR, LF, NUL or lone surrogates', id);
  }
  return id;
}

/** Number.isSafeInteger as the type guard it is: false for anything but a number (no coercion). */
const isSafeInteger = (value: unknown): value is number => Number.isSafeInteger(value);

export function validateRetry(retry: unknown): number {
  // The spec only accepts ASCII digits: no sign, no fraction, no exponent.
  if (!isSafeInteger(retry) || retry < 0) {
    throw fieldError('ERR_SSE_INVALID_RETRY', 'retry', 'a non-negative integer (milliseconds)', retry);
  }
  return retry;
}

/** Strings pass through untouched; anything else goes through `serialize`. */
export function serializeData(data: unknown, serialize: Serializer): string {
  if (typeof data === 'string') return data;
  let text: unknown;
  try {
    text = serialize(data);
  } catch (cause) {
    const error = fieldError('ERR_SSE_INVALID_DATA', 'data', 'serializable', data);
    error.cause = cause;
    error.message += ` (${cause instanceof Error ? cause.message : String(cause)})`;
    throw error;
  }
  if (typeof text !== 'string') {
    // JSON.stringify(undefined) and JSON.stringify(() => 1) return undefined rather than throwing.
    throw fieldError('ERR_SSE_INVALID_DATA', 'data', 'a value the serializer turns into a string', data);
  }
  return text;
}

function prefixLines(prefix: string, text: string): string {
  // Stryker disable next-line ConditionalExpression: equivalent, a fast path for one line; the loop writes the same
  if (!hasLineBreak(text)) return `${prefix}${text}\n`;
  let out = '';
  for (const line of text.split(LINE_BREAK)) out += `${prefix}${line}\n`;
  return out;
}

/**
 * Builds one whole event. Every field is validated first, so an invalid field throws and no text
 * exists that could be written half-way.
 */
export function formatEvent(data: string, fields?: FrameFields): string {
  let frame = '';
  if (fields !== undefined) {
    if (fields.event !== undefined) frame += `event: ${validateEvent(fields.event)}\n`;
    if (fields.id !== undefined) frame += `id: ${validateId(fields.id)}\n`;
    if (fields.retry !== undefined) frame += `retry: ${validateRetry(fields.retry)}\n`;
  }
  // "data: " with the space: a parser strips exactly one leading space, so data that itself
  // starts with a space survives the round trip.
  return `${frame}${prefixLines('data: ', data)}\n`;
}

/** A comment frame; a parser ignores it, proxies see traffic. Multi-line text stays comment. */
export function formatComment(text = ''): string {
  if (typeof text !== 'string') {
    throw fieldError('ERR_SSE_INVALID_COMMENT', 'comment', 'a string', text);
  }
  return text === '' ? ':\n\n' : `${prefixLines(': ', text)}\n`;
}

/** A frame holding only a `retry:` field, which sets the client's reconnection delay. */
export function formatRetry(retry: number): string {
  return `retry: ${validateRetry(retry)}\n\n`;
}

/**
 * The `event:` and `data:` lines of an event, without an id and the closing blank line: channels
 * share this part between connections that each need their own id.
 */
export function formatEventFields(data: string, event?: string): string {
  const head = event === undefined ? '' : `event: ${validateEvent(event)}\n`;
  return `${head}${prefixLines('data: ', data)}`;
}
