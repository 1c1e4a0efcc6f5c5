// Which sources share one connection in shared mode: only those whose whole request is the same.
//
// The Web Lock and the BroadcastChannel of a shared connection are named after a SHA-256 of the
// URL, the method, the headers (or the `shareKey` that stands for them) and the body. So a tab
// signed in as another user (another Authorization header) or asking for another room (another
// body) never reads this tab's stream, and no token appears in a lock name that any script of the
// origin can list (navigator.locks.query()).

/**
 * The name of the lock and channel for a request. `identity` is the `shareKey`, or the request's
 * headers. A body is hashed as the bytes fetch would send: a FormData body (a random multipart
 * boundary each time) therefore never shares.
 */
export async function shareName(url: string, method: string, identity: string | Record<string, string> | undefined, body: RequestInit['body']): Promise<string> {
  const request = JSON.stringify([url, method.toUpperCase(), typeof identity === 'string' ? identity : [...new Headers(identity)]]);
  // The JSON text ends where its brackets close, so no body can pass for another request's headers.
  const bytes = await new Blob([request, body == null ? '' : await new Response(body).arrayBuffer()]).arrayBuffer();
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return `express-sse-hub:${Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}
