// What listeners of the client receive, and how the event map types it.

/** Event names mapped to their payload types: the same map as the server's `sse<Events>()`. */
export type EventMap = Record<string, unknown>;

/** The data of a `reset` event: a channel's replay could not be exact (see the server's README). */
export interface ResetData {
  /** The channel whose events may have been missed. */
  readonly channel: string;
  /** The id the client resumed from (`null` when it sent none). */
  readonly lastEventId: string | null;
  /** `unknown-id`, `evicted` or `lost`. */
  readonly reason: 'unknown-id' | 'evicted' | 'lost';
}

/** A message event as `EventSource` fires it, with the payload typed by the event map. */
export interface SseMessageEvent<T = unknown> extends MessageEvent {
  /** The event's data, as sent (a string payload is its data). */
  readonly data: string;
  /** The source's last event ID after this event. */
  readonly lastEventId: string;
  /** The data parsed as JSON: how the server sends a payload that is not a string. */
  json(): T;
}

/** The `error` event: a connection attempt failed or a stream dropped. */
export interface SseErrorEvent extends Event {
  /** The HTTP status that refused the connection; undefined for a network error or a dropped stream. */
  readonly status: number | undefined;
  /** What happened, starting `express-sse-hub:`. */
  readonly message: string;
  /** Milliseconds until the next attempt; undefined when the source is closed for good. */
  readonly reconnectIn: number | undefined;
}

/** What an `error` event says, as relayed between tabs in shared mode. */
export interface ErrorDetail {
  readonly status: number | undefined;
  readonly message: string;
  readonly reconnectIn: number | undefined;
}

/** `json()` of every message event: the data parsed as JSON. */
function json(this: { readonly data: string }): unknown {
  return JSON.parse(this.data);
}

/**
 * A message event for `type`: a real MessageEvent, as EventSource dispatches (its constructor is
 * the realm's MessageEvent, not a subclass), with `json()` added.
 */
export function messageEvent(type: string, data: string, lastEventId: string, origin: string): SseMessageEvent {
  return Object.assign(new MessageEvent(type, { data, lastEventId, origin }), { json });
}

/** An `error` event carrying `detail`. */
export function errorEvent(detail: ErrorDetail): SseErrorEvent {
  return Object.assign(new Event('error'), detail);
}
