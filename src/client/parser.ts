// The event stream format, read exactly as the HTML standard says:
// https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
//
// Text in, dispatches out. Bytes are decoded by the caller (UTF-8, the BOM kept so that only this
// parser strips it, once, at the start of the stream). No I/O, no timers.
//
// Linear in the stream's length however it is cut: a chunk is scanned once, and the unfinished
// line before it is only appended to (never scanned again), so one 8 MiB line in 64 KiB chunks
// costs what it costs in one piece.

/** Called at every blank line: `type` is undefined when no event fires (the data buffer was empty). */
export type DispatchListener = (id: string, type: string | undefined, data: string) => void;

/** One connection's event stream, fed chunk by chunk. */
export class EventStreamParser {
  readonly #dispatch: DispatchListener;
  readonly #retry: (ms: number) => void;
  /** Until the first character: a leading U+FEFF is skipped, once. */
  #first = true;
  /** The last chunk ended in CR: an LF starting the next one ends nothing. */
  #afterCR = false;
  /** The unfinished line. */
  #rest = '';
  #data = '';
  #type = '';
  #id: string;

  /**
   * @param lastEventId - the id buffer's start: the source's last event ID (what a new connection
   *   begins with, as browsers do: an id read but not dispatched before a drop is forgotten).
   */
  constructor(lastEventId: string, dispatch: DispatchListener, retry: (ms: number) => void) {
    this.#id = lastEventId;
    this.#dispatch = dispatch;
    this.#retry = retry;
  }

  /** Reads the next piece of the stream (any split: inside a line, between CR and LF). */
  feed(chunk: string): void {
    if (chunk === '') return;
    let start = 0;
    if (this.#first) {
      this.#first = false;
      if (chunk[0] === '\uFEFF') start = 1;
    }
    if (this.#afterCR) {
      this.#afterCR = false;
      if (chunk[start] === '\n') start += 1;
    }
    // A line ends at CRLF, LF or CR. A CR at the end of the chunk ends its line now (no event
    // waits for the next chunk); an LF arriving first in the next chunk is then skipped.
    const breaks = /\r\n?|\n/g;
    breaks.lastIndex = start;
    for (let match = breaks.exec(chunk); match !== null; match = breaks.exec(chunk)) {
      const line = this.#rest + chunk.slice(start, match.index);
      this.#rest = '';
      this.#line(line);
      start = breaks.lastIndex;
      if (start === chunk.length && match[0] === '\r') this.#afterCR = true;
    }
    this.#rest += chunk.slice(start);
  }

  #line(line: string): void {
    if (line === '') {
      this.#blank();
      return;
    }
    // Stryker disable next-line ConditionalExpression,StringLiteral: equivalent, a comment line is also a field named '', which is ignored
    if (line[0] === ':') return; // a comment
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') this.#data += `${value}\n`;
    else if (field === 'event') this.#type = value;
    // An id with NUL is ignored: it could not be sent back in a Last-Event-ID header.
    else if (field === 'id') {
      if (!value.includes('\0')) this.#id = value;
    } else if (field === 'retry' && /^\d+$/.test(value)) this.#retry(Number(value));
    // Any other field is ignored.
  }

  /** Dispatch: the last event ID is set even when no event fires (an id-only frame). */
  #blank(): void {
    const data = this.#data;
    const type = this.#type;
    this.#data = '';
    this.#type = '';
    this.#dispatch(this.#id, data === '' ? undefined : type || 'message', data.slice(0, -1));
  }
}
