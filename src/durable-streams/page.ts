// Turns what a store read into one response's worth of a stream: bytes exactly from the
// requested position (a catch-up page may end inside a stored append, and the next one starts
// there), or whole JSON messages. Pages are bounded by `maxBytes`.
import type { StoredChunk } from './store';

export interface Page {
  /** The bytes of the page (byte streams) or its messages (JSON streams). */
  readonly pieces: readonly Buffer[];
  /** The position after the page. */
  readonly next: number;
  readonly bytes: number;
}

/**
 * How a page is cut: `bytes` exactly at `maxBytes`; `text` only after a whole append (SSE text
 * must not be cut inside a character); `json` whole messages only (a made-up offset inside one
 * gets the whole message).
 */
export type PageMode = 'bytes' | 'text' | 'json';

/** The page starting at `from`. */
export function pageOf(chunks: readonly StoredChunk[], from: number, maxBytes: number, mode: PageMode): Page {
  const pieces: Buffer[] = [];
  let bytes = 0;
  let next = from;
  for (const chunk of chunks) {
    if (chunk.end <= next) continue;
    if (bytes >= maxBytes) break;
    const start = chunk.end - chunk.data.length;
    let data = start < next && mode !== 'json' ? chunk.data.subarray(next - start) : chunk.data;
    if (mode === 'bytes' && bytes + data.length > maxBytes) data = data.subarray(0, maxBytes - bytes);
    pieces.push(data);
    bytes += data.length;
    next = mode === 'bytes' ? next + data.length : chunk.end;
  }
  return { pieces, next, bytes };
}
