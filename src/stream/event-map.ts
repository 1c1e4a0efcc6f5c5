// How an event map (`sse<ChatEvents>()`) reaches `res.sse` in the route's handler. Express types
// each handler of a route on its own, but infers one `Locals` type for all of them: the handler
// `sse<M>()` returns types its `res.locals` as `SseLocals<M>`, and the augmentation in express.ts
// reads `M` back from there for `res.sse`. Nothing of this exists at run time.

/** Event names mapped to their payload types, for `sse<Events>()`; any name, any payload by default. */
export type EventMap = Record<string, unknown>;

declare const EVENTS: unique symbol;

/** The `res.locals` type of a route mounted with `sse<M>()`: carries `M` to `res.sse` (types only). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface SseLocals<M extends object = EventMap> extends Record<string, any> {
  readonly [EVENTS]?: M;
}

/** The event map a route's `res.locals` type carries; the untyped map when it carries none. */
export type EventsOf<L> = L extends { readonly [EVENTS]?: infer M } ? (unknown extends M ? EventMap : M extends object ? M : EventMap) : EventMap;

/** The event names of map `M`. */
export type EventName<M extends object> = Extract<keyof M, string>;

/** The names `event` may take with `send(data, options)`: any for an untyped stream, none for a map. */
export type FreeEventName<M extends object> = string extends keyof M ? string : never;

/**
 * The payload of a plain `message` event (`send(data)` without `event`): `M['message']`, or, for
 * a map without one, a type whose name tells the fix (it shows in the compiler's error).
 */
export type MessageData<M extends object> = 'message' extends keyof M
  ? M['message' & keyof M]
  : `express-sse-hub: this stream's event map has no 'message' event; pass { event } with one of its names`;
