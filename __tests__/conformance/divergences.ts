// Where express-sse-hub/client deliberately fails a ported case that Chromium's EventSource
// passes (or cannot pass it in Node), and why. The README's conformance section says the same.
// Each entry must match how the case fails: a case that starts passing, or fails otherwise,
// fails the conformance test until this list is corrected.

export type Where = 'node' | 'chromium';

export interface Divergence {
  readonly suite: 'wpt' | 'eventsource';
  readonly name: string;
  readonly where: readonly Where[];
  /** The failure message of the case (a pattern). */
  readonly fails: RegExp;
  /** The case depends on timing the divergence changes: it may pass, or fail as `fails` says. */
  readonly sometimes?: true;
  readonly why: string;
}

const TEXTS = 'error texts and fields are ours: `message` starts "express-sse-hub:", and the HTTP status is `status` (the package calls it `code`)';

export const DIVERGENCES: readonly Divergence[] = [
  {
    suite: 'wpt',
    name: 'EventSource message events are trusted',
    where: ['node', 'chromium'],
    fails: /assert_equals: {2}expected true but got false/,
    why: 'events a script dispatches are never trusted (isTrusted is false); only the browser can make trusted ones',
  },
  {
    suite: 'wpt',
    name: 'EventSource: incorrect HTTP status code (503)',
    where: ['node', 'chromium'],
    fails: /assert_equals: {2}expected 2 but got 0/,
    why: 'a 503 (like a 429 and any 5xx) is retried, after Retry-After and the backoff: EventSource gives up for good',
  },
  {
    suite: 'wpt',
    name: 'EventSource: request cancellation',
    where: ['chromium'],
    fails: /assert_equals: {2}expected 2 but got 0/,
    why: 'window.stop() makes fetch fail as a network failure does ("Failed to fetch"): the client retries, where EventSource closes',
  },
  ...['enabled', 'disabled', 'default'].map(
    (desc): Divergence => ({
      suite: 'wpt',
      name: `EventSource: credentials ${desc}`,
      where: ['chromium'],
      fails: /timed out/,
      why: 'cross-origin, the Last-Event-ID header fetch sends on a reconnect needs a CORS preflight, which this resource does not answer (EventSource sends it without one); the client then closes, saying so',
    }),
  ),
  {
    suite: 'wpt',
    name: 'EventSource: cross-origin preflight - safe `last-event-id` (no preflight)',
    where: ['chromium'],
    fails: /saw preflight, did not expect one/,
    why: 'cross-origin, a Last-Event-ID header set through fetch always needs a preflight (EventSource sends a short, safe one without)',
  },
  {
    suite: 'eventsource',
    name: 'will reconnect with last received message id if server disconnects',
    where: ['node', 'chromium'],
    fails: /Expected key "data" of object to be "Counter is at (\d+)", was "Counter is at (?!\1")\d+"/,
    sometimes: true,
    why: 'the same cause as the case below: events that arrive in one read are dispatched in one task, so a case that awaits between two events can read a later one (seen once on a busy machine)',
  },
  {
    suite: 'eventsource',
    name: 'message event contains correct properties',
    where: ['node', 'chromium'],
    fails: /Expected key "data" of object to be "Counter is at 1", was "Counter is at (?:[2-9]|[1-9]\d+)"/,
    sometimes: true,
    why: 'events that arrive in one read of the stream are dispatched in one task (EventSource queues a task per event): the case awaits a promise after the first event and reads the last one seen, which is a later one when several came together (two on a quiet machine, three seen on a busy one)',
  },
  {
    suite: 'eventsource',
    name: 'throws if `url` is not a string/url',
    where: ['node'],
    fails: /to be "An invalid or illegal string was specified"/,
    why: 'the SyntaxError DOMException says "express-sse-hub: cannot read 123 as a URL" (Firefox\'s text, which the case expects, is not the standard\'s)',
  },
  ...['throws on `fetch()` that does not return web-stream', 'throws on `fetch()` that does not return a body'].map(
    (name): Divergence => ({ suite: 'eventsource', name, where: ['node', 'chromium'], fails: /Expected key "message" of object to be "Invalid response body/, why: TEXTS }),
  ),
  {
    suite: 'eventsource',
    name: '[NON-SPEC] message event contains extended properties (failed connection)',
    where: ['node'],
    fails: /Expected key "code" to be in object/,
    why: TEXTS,
  },
  {
    suite: 'eventsource',
    name: '[NON-SPEC] message event contains extended properties (invalid http response)',
    where: ['node'],
    fails: /Expected key "message" of object to be "Server sent HTTP 204/,
    why: TEXTS,
  },
];

export function divergence(suite: string, name: string, where: Where): Divergence | undefined {
  return DIVERGENCES.find((d) => d.suite === suite && d.name === name && d.where.includes(where));
}
