// How long to wait before the next connection attempt.

/** Reconnection time before the server sets one with `retry:` (what Chromium and Firefox use). */
export const DEFAULT_RETRY_MS = 3000;
/** Backoff never grows past this (unless the reconnection time itself is longer). */
export const MAX_BACKOFF_MS = 30_000;
/** Backoff starts from at least this, so a server that sent `retry: 0` is not hammered while it fails. */
export const MIN_BACKOFF_MS = 100;
/**
 * `Retry-After` is a floor, not an appointment: each client comes back at a random point of the
 * window that follows it, this fraction of the wait wide, so a crowd refused together does not
 * return together.
 */
export const RETRY_AFTER_SPREAD = 0.5;
/** setTimeout's limit: a longer delay would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * The delay after `failures` failed attempts in a row (1 or more): a random point in the upper half
 * of `retryMs × 2^failures` (retryMs at least MIN_BACKOFF_MS), capped at MAX_BACKOFF_MS, and never
 * sooner than the reconnection time (a `retry:` above half the cap narrows the range to what lies
 * between the two; one at or above the cap is waited exactly). So a crowd of clients refused at
 * once comes back spread out, not all at the same instant.
 */
export function backoffDelay(failures: number, retryMs: number, random: () => number = Math.random): number {
  const base = Math.max(retryMs, MIN_BACKOFF_MS);
  const ceiling = Math.min(base * 2 ** failures, Math.max(base, MAX_BACKOFF_MS));
  const floor = Math.max(ceiling / 2, base);
  return clampDelay(floor + random() * (ceiling - floor));
}

/**
 * The delay after a refusal (429, 5xx) that is the `failures`-th failed attempt in a row: the
 * backoff, or later if `Retry-After` asks for more, at a random point of the RETRY_AFTER_SPREAD
 * window after it. Whatever the header says (0, a date in the past), the backoff still applies.
 */
export function refusalDelay(failures: number, retryMs: number, retryAfter: string | null, now: number = Date.now(), random: () => number = Math.random): number {
  const backoff = backoffDelay(failures, retryMs, random);
  const wait = retryAfterMs(retryAfter, now);
  return wait === undefined ? backoff : clampDelay(Math.max(backoff, wait + random() * wait * RETRY_AFTER_SPREAD));
}

/**
 * The wait a `Retry-After` header asks for, in ms: delay-seconds or an HTTP-date
 * (RFC 9110 §10.2.3); undefined when it asks for none (absent, unreadable, 0, a date now or in
 * the past).
 */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  // Date.parse reads almost anything ("-5" is a year); an HTTP-date always has a month name.
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : /[a-z]/i.test(value) ? Date.parse(value) - now : Number.NaN;
  return ms > 0 ? clampDelay(ms) : undefined;
}

/** A delay setTimeout honours, in whole milliseconds (timers truncate a fraction, so the delay announced would not be the one waited): 0 to about 24.8 days. */
export function clampDelay(ms: number): number {
  return Math.min(Math.max(Math.round(ms), 0), MAX_TIMEOUT_MS);
}
