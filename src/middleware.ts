import type { NextFunction, Request, Response } from 'express';
import { warn } from './errors';
import type { ConnectionStats } from './limits';
import { resolveSseOptions, type SseOptions } from './options';
import { SseStream, type EventMap } from './stream';

/** `res` as seen by a route that knows its stream's event map: `(req, res: SseResponse<Events>)`. */
export type SseResponse<M extends object = EventMap> = Omit<Response, 'sse'> & { sse: SseStream<M> };

/** The handler `sse()` returns. */
export interface SseHandler {
  (req: Request, res: Response, next: NextFunction): void;
  /** Connection counters of this middleware (open streams, refusals by the connection limits). */
  stats(): ConnectionStats;
}

function openIfUnanswered<M extends object>(stream: SseStream<M>): void {
  try {
    stream.openIfUnanswered();
  } catch (error) {
    // Only a connectionKey function that throws gets here; there is no caller left to tell.
    warn(error instanceof Error ? error : new Error(String(error)));
    stream.refuse(500, 'express-sse-hub: the event stream could not be opened\n');
  }
}

function acceptsEventStream(header: string | undefined): boolean {
  if (header === undefined) return false;
  const accept = header.toLowerCase();
  if (!accept.includes('text/event-stream')) return false;
  for (const part of accept.split(',')) {
    const semi = part.indexOf(';');
    const type = (semi === -1 ? part : part.slice(0, semi)).trim();
    if (type === 'text/event-stream') return true;
  }
  return false;
}

/**
 * Express middleware that gives every response a `res.sse` event stream. A request that accepts
 * `text/event-stream` (as EventSource requests do) is opened on the next event-loop turn unless
 * the route answered it first (a 401, a 403, a JSON body); any other is opened by its first
 * `send()` or `comment()`, so routes that never touch `res.sse` are unaffected.
 *
 * Options are validated here: a wrong one throws a `TypeError` naming it.
 */
export function sse<M extends object = EventMap>(options?: SseOptions): SseHandler {
  const settings = resolveSseOptions(options);
  const handler = function sseMiddleware(req: Request, res: Response, next: NextFunction): void {
    // Mounted twice (app-wide and on a route): the first stream stays.
    if (res.sse !== undefined) {
      next();
      return;
    }
    const stream = new SseStream<M>(req, res, settings);
    res.sse = stream;
    // Synchronous route code (and whatever it awaits that is already settled) runs first.
    if (acceptsEventStream(req.headers.accept)) setImmediate(openIfUnanswered, stream);
    next();
  };
  const { limiter } = settings;
  return Object.assign(handler, { stats: (): ConnectionStats => limiter.stats() });
}
