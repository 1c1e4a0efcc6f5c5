import './express';

/** Express middleware that attaches `res.sse`. */
export { sse } from './middleware';
export type { SseHandler, SseResponse } from './middleware';
/** The event stream behind `res.sse`. */
export { SseStream } from './stream';
export type { EventData, EventMap, PipeOptions, PipeSource, SendOptions } from './stream';
/** Errors with stable `code`s. */
export { SseError } from './errors';
export type { SseErrorCode, SseTypeError } from './errors';
export type { SseOptions } from './options';
export type { Serializer } from './serializer';
