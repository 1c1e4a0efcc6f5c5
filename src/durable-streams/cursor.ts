// Stream-Cursor (protocol section 8.1): the number of 20-second intervals since 2024-10-09 UTC,
// handed out on every live response so that CDNs key long-polls by time and never serve the
// same cached empty answer forever. A client echoing a cursor that is not behind ours gets one
// strictly greater (ours plus 1 to 3600 seconds of random jitter), so cursors never go back.

const EPOCH_MS = Date.UTC(2024, 9, 9);
const INTERVAL_MS = 20_000;
const MAX_JITTER_SECONDS = 3600;

/** The cursor for a live response, given the one the client sent (if any) and the time. */
export function responseCursor(clientCursor: string | undefined, now: number = Date.now(), random: () => number = Math.random): string {
  const current = Math.floor((now - EPOCH_MS) / INTERVAL_MS);
  const client = clientCursor !== undefined && /^\d{1,15}$/.test(clientCursor) ? Number(clientCursor) : undefined;
  if (client === undefined || client < current) return String(current);
  const jitterSeconds = 1 + Math.floor(random() * MAX_JITTER_SECONDS);
  return String(client + Math.max(1, Math.ceil((jitterSeconds * 1000) / INTERVAL_MS)));
}
