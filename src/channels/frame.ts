// The text of a log entry on the wire, built once per entry and process, whoever receives it.
// The `id:` line comes last, after the data: a connection in several channels with history gets
// its own id on every event (where it is in each channel), so the rest of the frame is shared.
import { customIdOf, type LogEntry } from '../log/entry';
import { formatPosition } from '../log/position';
import { formatEventFields, validateId } from '../stream/serializer';

export interface Frame {
  /** The whole frame with the entry's own id (its position, or the caller's id). */
  readonly text: string;
  /** Length of its `event:` and `data:` lines: what comes before the `id:` line. */
  readonly bodyLength: number;
  /** UTF-8 bytes of `text`. */
  readonly bytes: number;
  /** The entry has a position in a log (its id is that position). */
  readonly positioned: boolean;
}

const frames = new WeakMap<LogEntry, Frame>();

export function frameOf(entry: LogEntry): Frame {
  let frame = frames.get(entry);
  if (frame === undefined) {
    const body = formatEventFields(entry.text, entry.event);
    // A custom id came from the publishing process (through Redis, perhaps): checked again here,
    // since it goes on the wire as it is.
    const custom = customIdOf(entry);
    const id = entry.offset > 0 ? formatPosition(entry) : custom === undefined ? undefined : validateId(custom);
    const text = id === undefined ? `${body}\n` : `${body}id: ${id}\n\n`;
    // Only the whole text is kept (a log's frames live as long as its entries): the body is a
    // prefix of it.
    frame = { text, bodyLength: body.length, bytes: Buffer.byteLength(text), positioned: entry.offset > 0 };
    frames.set(entry, frame);
  }
  return frame;
}

/** The frame with another id: for a connection in several channels with history. */
export function frameWithId(frame: Frame, id: string): string {
  return `${frame.text.slice(0, frame.bodyLength)}id: ${id}\n\n`;
}
