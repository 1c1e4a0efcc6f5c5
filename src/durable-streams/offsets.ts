// Offsets of the Durable Streams protocol: opaque to clients, but they must sort as text in
// stream order and never be handed out twice on one URL, even after the stream there was deleted
// and created again. Ours are `<generation>_<position>`, both 16 decimal digits:
// - the generation is given to a stream when it is created, larger than any earlier stream's at
//   that URL (see each store), so a deleted stream's offsets never name bytes of a new one;
// - the position is the number of bytes stored before it (JSON streams: of their messages as
//   stored), so two offsets of one stream compare as their positions.
// Fixed width is what makes the text order the numeric order (our channel ids, `<offset>.<epoch>`,
// do not sort as text).

const WIDTH = 16;
/** Largest value a field holds: 16 digits, and exact as a JavaScript number. */
export const MAX_FIELD = Number.MAX_SAFE_INTEGER;
const OFFSET = /^(\d{16})_(\d{16})$/;

/** A place in a stream: bytes before it, in one generation of the stream at a URL. */
export interface StreamOffset {
  readonly generation: number;
  readonly position: number;
}

/** What a client's `offset` query parameter asked for. */
export type RequestedOffset =
  | { readonly kind: 'start' }
  | { readonly kind: 'now' }
  | { readonly kind: 'at'; readonly offset: StreamOffset };

function field(value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`express-sse-hub: an offset field must be an integer from 0 to ${MAX_FIELD}, got ${value}`);
  return String(value).padStart(WIDTH, '0');
}

/** The wire form of an offset. */
export function formatOffset(offset: StreamOffset): string {
  return `${field(offset.generation)}_${field(offset.position)}`;
}

/** Reads an offset this server handed out; `undefined` for anything else. */
export function parseOffset(text: string): StreamOffset | undefined {
  const match = OFFSET.exec(text);
  if (match === null) return undefined;
  const generation = Number(match[1]);
  const position = Number(match[2]);
  if (!Number.isSafeInteger(generation) || !Number.isSafeInteger(position)) return undefined;
  return { generation, position };
}

/**
 * Reads the `offset` query parameter: absent or `-1` is the start, `now` the tail, anything else
 * must be one of our offsets. `undefined` when it is none of these (the router answers 400).
 */
export function parseRequestedOffset(text: string | undefined): RequestedOffset | undefined {
  if (text === undefined || text === '-1') return { kind: 'start' };
  if (text === 'now') return { kind: 'now' };
  const offset = parseOffset(text);
  return offset === undefined ? undefined : { kind: 'at', offset };
}
