import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { EventMap, SseLocals } from './event-map';
import type { ConnectionStats } from './limits';
import { resolveSseOptions, type SseOptions } from './options';
import type { CloseOptions } from './shutdown';
import { faceOf } from './sse-stream';
import { Stream } from './stream';
import { StreamSet } from './stream-set';

/**
 * `res` of a route mounted with `sse<Events>()`, for a handler written apart from the route:
 * `const handler = (req: Request, res: SseResponse<Events>) => …`.
 */
export type SseResponse<M extends object = EventMap> = Response<any, SseLocals<M>>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The handler `sse()` returns; `SseHandler` alone names any of them, typed or not. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface SseHandler<M extends object = any> {
  // `req` is typed as Node's request so that Express infers the route's params from its path
  // alone; `res` carries the event map to the handlers after this one (see event-map.ts).
  (req: IncomingMessage, res: Response<any, SseLocals<M>>, next: NextFunction): void; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Connection counters of this middleware (open streams, refusals by the connection limits). */
  stats(): ConnectionStats;
  /**
   * Ends every stream this middleware opened, however it was opened (direct sends, pipes,
   * channels): sends the optional last event, aborts every `res.sse.signal` (so pipes and
   * upstream work stop), and resolves once all have closed, resetting those still open after
   * `timeout` ms. Streams asked for afterwards get a 503. Then `server.close()` can finish.
   */
  close(options?: CloseOptions): Promise<void>;
}

/**
 * Express middleware that gives every response a `res.sse` event stream.
 *
 * - Mounted on a route (`app.get('/events', sse(), handler)`), it opens the stream at once, as
 *   soon as the route's synchronous code has run (headers flushed before the first event), unless
 *   that code answered otherwise or handed the stream to an async `authorize` hook.
 * - Mounted app-wide (`app.use(sse())`), it never touches a response until the route uses
 *   `res.sse` (`open()`, `send()`, `comment()`, `pipe()`, a channel `subscribe()`), however long the
 *   route awaits before answering something else.
 *
 * Options are validated here: a wrong one throws a `TypeError` naming it.
 */
export function sse<M extends object = EventMap>(options?: SseOptions): SseHandler<M> {
  const set = new StreamSet<Stream>(resolveSseOptions(options));
  const handler = function sseMiddleware(incoming: IncomingMessage, res: Response, next: NextFunction): void {
    const req = incoming as Request;
    // Mounted twice (app-wide and on a route): the first stream stays.
    if (res.sse !== undefined) {
      next();
      return;
    }
    const stream = new Stream(req, res, set);
    res.sse = faceOf(stream);
    // Express sets req.route only while a route's own handlers run: app.get(path, sse(), …).
    if (req.route === undefined) {
      next();
      return;
    }
    // Express calls the route's next handler synchronously from next(): when it returns, the
    // route's synchronous code (a guard answering 401, a subscribe that claims the stream for an
    // async authorize) has run.
    next();
    stream.openUnlessAnswered();
  };
  return Object.assign(handler, {
    stats: (): ConnectionStats => set.limiter.stats(),
    close: (closeOptions?: CloseOptions): Promise<void> => set.close(closeOptions),
  });
}
