// When a stream expires: `Stream-Expires-At` is absolute; `Stream-TTL` slides, counted from the
// stream's last read or write (HEAD does not count). Both stores use these rules; Redis applies
// them as key expiry.

/** Milliseconds since the epoch at which a stream expires (Infinity: never). */
export function expiresAtMs(expiresAt: string | undefined, ttlSeconds: number | undefined, lastAccess: number): number {
  let at = Number.POSITIVE_INFINITY;
  if (expiresAt !== undefined) {
    const absolute = Date.parse(expiresAt);
    // An expiry that cannot be read is taken as past (fail closed); the router refuses such
    // values at creation, so only a store written by something else can hold one.
    at = Number.isFinite(absolute) ? absolute : Number.NEGATIVE_INFINITY;
  }
  if (ttlSeconds !== undefined) at = Math.min(at, lastAccess + ttlSeconds * 1000);
  return at;
}
