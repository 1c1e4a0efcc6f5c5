// Adds `res.sse` to Express's Response type. A .ts module (not .d.ts) so tsc emits it into
// dist and the augmentation reaches users through index.d.ts.
import type { SseStream } from './stream';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Response {
      /**
       * The event stream of this response, attached by the `sse()` middleware. Untyped here
       * (`any` event map) so a route can narrow it with `res: SseResponse<Events>`.
       */
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      sse: SseStream<any>;
    }
  }
}

export {};
