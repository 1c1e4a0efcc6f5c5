// express-sse-hub/client: the browser (and Node 20+) client. ESM, no dependencies; shares nothing
// with the server code but the wire format and the event-map types.

/** `EventSource` over fetch: headers, POST, retries after 5xx/429/503, one connection for all tabs. */
export { EventSource } from './event-source';
export type { EventSourceInit, HeadersOption, ListenerOptions, PayloadOf, SseListener } from './event-source';
export type { EventMap, ResetData, SseErrorEvent, SseMessageEvent } from './events';
