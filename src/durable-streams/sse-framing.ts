// The protocol's own SSE framing (section 5.7): `event: data` carrying a batch of the stream
// (a JSON array for JSON streams, base64 for streams that are not text), each followed by
// `event: control` carrying the next offset and cursor as JSON.
//
// Every line of a payload gets its own `data:` field, so CR, LF and CRLF inside it can never end
// the event early (no event injection). The suite expects `data:` with no space before the
// value; a value that itself starts with a space gets one more, which SSE parsers strip, so no
// leading space is lost.

/** The fields of a control event. */
export interface ControlFields {
  readonly streamNextOffset: string;
  readonly streamCursor?: string;
  readonly upToDate?: true;
  readonly streamClosed?: true;
}

function dataLines(payload: string): string {
  let text = '';
  for (const line of payload.split(/\r\n|\r|\n/)) text += line.startsWith(' ') ? `data: ${line}\n` : `data:${line}\n`;
  return text;
}

/** One `data` event. */
export function dataEvent(payload: string): string {
  return `event: data\n${dataLines(payload)}\n`;
}

/** One `control` event. */
export function controlEvent(fields: ControlFields): string {
  return `event: control\n${dataLines(JSON.stringify(fields))}\n`;
}

/** True for content types whose bytes travel in SSE as text (section 7: text/* and JSON). */
export function isTextual(mediaType: string): boolean {
  return mediaType.startsWith('text/') || mediaType === 'application/json';
}
