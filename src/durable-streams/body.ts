// Reads a request body into memory with a bound. A body over the limit is read to its end and
// thrown away (up to a further bound), so the client sees the 413 instead of a reset while it
// is still sending; a body over that too is cut off with the connection.
import type { Request } from 'express';

/** The body, or why there is none. */
export type BodyResult = { readonly body: Buffer } | { readonly tooLarge: true } | { readonly consumed: true } | { readonly aborted: true };

const DRAIN_FACTOR = 4;

export function readBody(req: Request, limit: number): Promise<BodyResult> {
  // A body parser mounted before the router (express.json(), …) already read the stream.
  if ((req as { _body?: unknown })._body === true || req.readableEnded) return Promise.resolve({ consumed: true });
  const declared = Number(req.headers['content-length']);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = Number.isFinite(declared) && declared > limit;
    const finish = (result: BodyResult): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (!over && size > limit) over = true;
      if (over) {
        chunks.length = 0;
        if (size > Math.max(limit * DRAIN_FACTOR, 16 * 1024 * 1024)) {
          finish({ tooLarge: true });
          req.destroy();
        }
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish(over ? { tooLarge: true } : { body: Buffer.concat(chunks, size) });
    const onError = (): void => finish({ aborted: true });
    const onClose = (): void => {
      if (!req.complete) finish({ aborted: true });
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
