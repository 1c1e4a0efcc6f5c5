// Adds `res.sse` to Express's Response type. A .ts module (not .d.ts) so tsc emits it into
// dist and the augmentation reaches users through index.d.ts. The Response of
// express-serve-static-core is the one route handlers receive (express's own extends it), and its
// `Locals` parameter is how `sse<Events>()` types `res.sse` in the handlers after it (see
// event-map.ts). The type parameters must repeat the original's exactly.
import type { EventsOf } from './event-map';
import type { SseStream } from './sse-stream';

declare module 'express-serve-static-core' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any, @typescript-eslint/no-unused-vars
  interface Response<ResBody = any, LocalsObj extends Record<string, any> = Record<string, any>, StatusCode extends number = number> {
    /**
     * The event stream of this response, attached by the `sse()` middleware. Typed by the event
     * map of the route's `sse<Events>()`; any event, any payload otherwise.
     */
    sse: SseStream<EventsOf<LocalsObj>>;
  }
}

export {};
