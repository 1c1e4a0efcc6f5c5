import type { NextFunction, Request, Response } from 'express';
import { resolveSseOptions, type SseOptions } from './options';
import { SseStream, type EventMap } from './stream';

/** `res` as seen by a route that knows its stream's event map: `(req, res: SseResponse<Events>)`. */
export type SseResponse<M extends object = EventMap> = Omit<Response, 'sse'> & { sse: SseStream<M> };

/** The handler `sse()` returns. */
export type SseHandler = (req: Request, res: Response, next: NextFunction) => void;

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
 * `text/event-stream` (as EventSource requests do) is opened at once; any other is opened by its
 * first `send()` or `comment()`, so routes that never touch `res.sse` are unaffected.
 *
 * Options are validated here: a wrong one throws a `TypeError` naming it.
 */
export function sse<M extends object = EventMap>(options?: SseOptions): SseHandler {
  const settings = resolveSseOptions(options);
  return function sseMiddleware(req, res, next) {
    // Mounted twice (app-wide and on a route): the first stream stays.
    if (res.sse !== undefined) {
      next();
      return;
    }
    const stream = new SseStream<M>(req, res, settings);
    res.sse = stream;
    if (acceptsEventStream(req.headers.accept)) {
      try {
        stream.open();
      } catch (error) {
        next(error);
        return;
      }
    }
    next();
  };
}
