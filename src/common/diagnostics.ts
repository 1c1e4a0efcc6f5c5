// Tracing hooks: the decisions a production user debugs, published on node:diagnostics_channel
// under stable names, so APM tools and OpenTelemetry subscribe without any dependency here (the
// README shows spans made from them). Nothing is built for a hook nobody listens to
// (`hasSubscribers`). NODE_DEBUG=express-sse-hub stays, for humans.
import diagnostics from 'node:diagnostics_channel';

/** The names of the hooks; each is documented with its message in the README. */
export const DIAGNOSTICS = {
  /** An event stream opened (its headers went out). */
  streamOpen: 'express-sse-hub:stream:open',
  /** An event stream ended, whichever side ended it. */
  streamClose: 'express-sse-hub:stream:close',
  /** A request for a stream was answered otherwise: a connection limit, a shutdown, `authorize`. */
  refusal: 'express-sse-hub:stream:refuse',
  /** A connection dropped by the slow-client rules, or whose write failed. */
  drop: 'express-sse-hub:client:drop',
  /** A flush: every connection with something queued written once. */
  flush: 'express-sse-hub:flush',
  /** A `reset` event queued for a connection. */
  reset: 'express-sse-hub:channel:reset',
  /** The adapter reported trouble nobody else is told of (a lost Redis connection, a skipped message). */
  adapterError: 'express-sse-hub:adapter:error',
  /** A run started producing on this process. */
  runStart: 'express-sse-hub:run:start',
  /** A run produced here ended. */
  runEnd: 'express-sse-hub:run:end',
  /**
   * `channel.broadcast()`, as a tracing channel (`tracing:express-sse-hub:broadcast:start`,
   * `…:asyncEnd`, `…:error`): from the call to the event's delivery here.
   */
  broadcast: 'express-sse-hub:broadcast',
} as const;

export const streamOpen = diagnostics.channel(DIAGNOSTICS.streamOpen);
export const streamClose = diagnostics.channel(DIAGNOSTICS.streamClose);
export const refusal = diagnostics.channel(DIAGNOSTICS.refusal);
export const drop = diagnostics.channel(DIAGNOSTICS.drop);
export const flush = diagnostics.channel(DIAGNOSTICS.flush);
export const reset = diagnostics.channel(DIAGNOSTICS.reset);
export const adapterError = diagnostics.channel(DIAGNOSTICS.adapterError);
export const runStart = diagnostics.channel(DIAGNOSTICS.runStart);
export const runEnd = diagnostics.channel(DIAGNOSTICS.runEnd);
export const broadcast = diagnostics.tracingChannel<object, BroadcastContext>(DIAGNOSTICS.broadcast);

/** The context object of the broadcast tracing channel. */
export interface BroadcastContext {
  readonly channel: string;
  readonly event: string | undefined;
  /** Set at asyncEnd: what `broadcast()` resolved with. */
  result?: { readonly id: string | undefined; readonly delivered: number };
  /** Set at error. */
  error?: unknown;
}
