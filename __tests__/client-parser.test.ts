// Parse vectors for the client's event stream parser, covering the HTML standard's edge cases:
// https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
// Every vector is also fed one character at a time and split in two at every position, so no
// chunk boundary (a CR before its LF included) changes the outcome.
import { createParser } from 'eventsource-parser';
import { EventStreamParser } from '../src/client/parser';

interface Outcome {
  /** [type, data, lastEventId] of each event fired. */
  events: [string, string, string][];
  /** The last event ID after the stream. */
  lastEventId: string;
  retries: number[];
}

function parse(chunks: readonly string[], lastEventId = ''): Outcome {
  const outcome: Outcome = { events: [], lastEventId, retries: [] };
  const parser = new EventStreamParser(
    lastEventId,
    (id, type, data) => {
      outcome.lastEventId = id;
      if (type !== undefined) outcome.events.push([type, data, id]);
    },
    (ms) => outcome.retries.push(ms),
  );
  for (const chunk of chunks) parser.feed(chunk);
  return outcome;
}

/** The same text split every way that matters: whole, per character, in two at every position. */
function splits(text: string): string[][] {
  const all = [[text], [...text]];
  for (let i = 1; i < text.length; i += 1) all.push([text.slice(0, i), text.slice(i)]);
  return all;
}

type Vector = [name: string, stream: string, expected: Partial<Outcome>];

const VECTORS: Vector[] = [
  // Byte order mark
  ['strips a BOM at the start of the stream', '\uFEFFdata: a\n\n', { events: [['message', 'a', '']] }],
  ['strips only one BOM (a second is part of the first field name)', '\uFEFF\uFEFFdata: a\n\ndata: b\n\n', { events: [['message', 'b', '']] }],
  ['keeps a BOM after the start (an unknown field)', 'data: a\n\n\uFEFFdata: b\n\n', { events: [['message', 'a', '']] }],
  // Line endings
  ['ends lines at LF', 'data: a\n\n', { events: [['message', 'a', '']] }],
  ['ends lines at CRLF', 'data: a\r\n\r\n', { events: [['message', 'a', '']] }],
  ['ends lines at a lone CR', 'data: a\r\rdata: b\r\r', { events: [['message', 'a', ''], ['message', 'b', '']] }],
  ['takes CR, LF and CRLF mixed in one stream', 'data: a\r\ndata: b\rdata: c\n\r\n', { events: [['message', 'a\nb\nc', '']] }],
  ['reads CR LF as one line end, not two (no early dispatch)', 'data: a\r\ndata: b\r\n\r\n', { events: [['message', 'a\nb', '']] }],
  ['reads LF CR as two line ends', 'data: a\n\rdata: b\n\n', { events: [['message', 'a', ''], ['message', 'b', '']] }],
  // data
  ['takes data without a space after the colon', 'data:a\n\n', { events: [['message', 'a', '']] }],
  ['strips exactly one leading space', 'data:  a \n\n', { events: [['message', ' a ', '']] }],
  ['joins data lines with LF', 'data: a\ndata: b\ndata: c\n\n', { events: [['message', 'a\nb\nc', '']] }],
  ['removes only the last LF', 'data: a\ndata:\n\n', { events: [['message', 'a\n', '']] }],
  ['fires an event with empty data for a bare data field', 'data\n\n', { events: [['message', '', '']] }],
  ['fires one LF for two empty data lines', 'data\ndata\n\n', { events: [['message', '\n', '']] }],
  ['keeps colons after the first in the value', 'data: a: b:c\n\n', { events: [['message', 'a: b:c', '']] }],
  ['keeps NUL and any Unicode in data', 'data: a\0b é😀\n\n', { events: [['message', 'a\0b é😀', '']] }],
  ['fires no event for a blank line without data', '\n\n\n', { events: [] }],
  // Incomplete events
  ['drops an event the stream ends inside', 'data: a\n\ndata: b\n', { events: [['message', 'a', '']] }],
  ['drops an id the stream ends before dispatching', 'data: a\n\nid: 9\ndata: b', { events: [['message', 'a', '']], lastEventId: '' }],
  // Comments, unknown fields, fields without a colon
  ['ignores comments', ': hello\n\n:\n\ndata: a\n: between\ndata: b\n\n', { events: [['message', 'a\nb', '']] }],
  ['ignores unknown fields', 'foo: bar\ndata: a\nfoo\n\n', { events: [['message', 'a', '']] }],
  ['ignores unknown fields whose value is a number (only retry sets the reconnection time)', 'retries: 100\nRetry: 200\nfoo: 300\n\n', { retries: [], events: [] }],
  ['matches field names case-sensitively', 'Data: a\nDATA: b\n\n', { events: [] }],
  ['reads a line without a colon as a field with an empty value', 'event\ndata\n\n', { events: [['message', '', '']] }],
  ['does not strip spaces around the field name', ' data: a\ndata : b\n\n', { events: [] }],
  // event
  ['names the event from the event field', 'event: add\ndata: 1\n\n', { events: [['add', '1', '']] }],
  ['keeps spaces in the event name but the first', 'event:  add\ndata: 1\n\n', { events: [[' add', '1', '']] }],
  ['resets the event name after a dispatch', 'event: add\ndata: 1\n\ndata: 2\n\n', { events: [['add', '1', ''], ['message', '2', '']] }],
  ['resets the event name at a blank line without data', 'event: add\n\ndata: 2\n\n', { events: [['message', '2', '']] }],
  ['takes the last event field of an event', 'event: a\nevent: b\ndata: 1\n\n', { events: [['b', '1', '']] }],
  ['fires message for an empty event name', 'event:\ndata: 1\n\n', { events: [['message', '1', '']] }],
  // id
  ['sets the last event ID from the id field', 'id: 1\ndata: a\n\n', { events: [['message', 'a', '1']], lastEventId: '1' }],
  ['keeps the last event ID for the following events', 'id: 1\ndata: a\n\ndata: b\n\n', { events: [['message', 'a', '1'], ['message', 'b', '1']] }],
  ['sets the last event ID from an id-only frame, firing nothing', 'id: 7\n\n', { events: [], lastEventId: '7' }],
  ['sets the last event ID at the dispatch, not when the field is read', 'data: a\nid: 2\n\n', { events: [['message', 'a', '2']], lastEventId: '2' }],
  ['fires an event with empty data and an id', 'id: 7\ndata\n\n', { events: [['message', '', '7']], lastEventId: '7' }],
  ['clears the last event ID with an empty id field', 'id: 1\ndata: a\n\nid\ndata: b\n\n', { events: [['message', 'a', '1'], ['message', 'b', '']], lastEventId: '' }],
  ['ignores an id containing NUL', 'id: 1\n\nid: 2\0x\ndata: a\n\n', { events: [['message', 'a', '1']], lastEventId: '1' }],
  ['takes any other id as it is (commas, spaces, Unicode)', 'id:  3.k3f9,4.p0q1 é\n\n', { lastEventId: ' 3.k3f9,4.p0q1 é' }],
  ['takes the last id field of an event', 'id: 1\nid: 2\ndata: a\n\n', { events: [['message', 'a', '2']] }],
  // retry
  ['sets the reconnection time from retry', 'retry: 1500\n', { retries: [1500], events: [] }],
  ['takes retry: 0', 'retry: 0\n', { retries: [0] }],
  ['ignores retry with anything but ASCII digits', 'retry: 15x0\nretry: -1\nretry: 1.5\nretry:  100\nretry: 1e3\nretry: ١٢\nretry:\nretry\n', { retries: [] }],
  ['sets retry without a dispatch, and fires nothing', 'retry: 10\ndata: a\n\n', { retries: [10], events: [['message', 'a', '']] }],
];

/** The events another implementation (eventsource-parser) reads from the same text. */
function reference(text: string): [string, string, string][] {
  const events: [string, string, string][] = [];
  let id = '';
  const parser = createParser({
    onEvent: (event) => {
      if (event.id !== undefined) id = event.id;
      events.push([event.event ?? 'message', event.data, id]);
    },
  });
  // It holds a final CR back until it knows no LF follows; a comment line tells it.
  parser.feed(text.endsWith('\r') ? `${text}:\n` : text);
  return events;
}

describe('EventStreamParser#feed()', () => {
  describe('when a stream is cut into chunks anywhere', () => {
    it.each(VECTORS)('%s', (_name, stream, expected) => {
      for (const chunks of splits(stream)) {
        const outcome = parse(chunks);
        const seen = { events: outcome.events, lastEventId: outcome.lastEventId, retries: outcome.retries };
        expect({ chunks, ...seen }).toEqual({ chunks, ...seen, ...expected });
      }
    });
  });

  describe('when compared with another implementation (eventsource-parser)', () => {
    // It reports no id-only dispatch and keeps ids per event, so only streams whose ids arrive
    // with events are compared.
    const comparable = VECTORS.filter(([name]) => !/id-only|NUL|empty id|drops an id|BOM/.test(name));
    it.each(comparable)('agrees on the events when it %s', (_name, stream) => {
      expect(parse([stream]).events).toEqual(reference(stream));
    });
  });

  describe('when a connection starts with a last event ID', () => {
    it('uses it for events until the stream sets another', () => {
      expect(parse(['data: a\n\nid: 9\ndata: b\n\n'], '5').events).toEqual([['message', 'a', '5'], ['message', 'b', '9']]);
    });
  });

  describe('when a CR ends a chunk', () => {
    it('dispatches at once, without waiting for the next chunk', () => {
      const events: string[] = [];
      const parser = new EventStreamParser('', (_id, type, data) => type !== undefined && events.push(data), () => undefined);
      parser.feed('data: a\r\r');
      expect(events).toEqual(['a']);
      parser.feed('\ndata: b\n\n');
      expect(events).toEqual(['a', 'b']);
    });
  });

  describe('when the stream starts with a blank line', () => {
    it('is a blank line like any other: a dispatch step with no event (the spec has no special case for the start)', () => {
      const calls: [string, string | undefined, string][] = [];
      const parser = new EventStreamParser('5', (...call) => calls.push(call), () => undefined);
      parser.feed('\n');
      expect(calls).toEqual([['5', undefined, '']]);
      parser.feed('\uFEFF\r\ndata: a\n\n');
      // A BOM after the start is part of a field name: an unknown field.
      expect(calls).toEqual([['5', undefined, ''], ['5', 'message', 'a']]);
    });

    it('counts an LF after a leading BOM as that blank line', () => {
      const calls: [string, string | undefined, string][] = [];
      const parser = new EventStreamParser('', (...call) => calls.push(call), () => undefined);
      parser.feed('\uFEFF');
      parser.feed('\n');
      expect(calls).toEqual([['', undefined, '']]);
    });
  });

  describe('when chunks are empty', () => {
    it('neither loses the BOM rule nor the CR before an LF', () => {
      expect(parse(['', '\uFEFF', '', 'data: a\r', '', '\ndata: b\n\n']).events).toEqual([['message', 'a\nb', '']]);
    });
  });
});

describe('when one line is long and arrives in many chunks', () => {
  it('reads each character a bounded number of times (linear, not quadratic, in the line length)', () => {
    // What the parser's line-break search covers, counted where it happens: every exec() of a
    // global regular expression scans from lastIndex to the end of its string at most.
    let scanned = 0;
    const original = RegExp.prototype.exec;
    const spy = jest.spyOn(RegExp.prototype, 'exec').mockImplementation(function (this: RegExp, text: string) {
      if (this.global) scanned += text.length - this.lastIndex;
      return original.call(this, text);
    });
    try {
      const chunk = 16 * 1024;
      const line = 'x'.repeat(4 * 1024 * 1024);
      const text = `data: ${line}\n\n`;
      let data = '';
      const parser = new EventStreamParser('', (_id, _type, d) => (data = d), () => undefined);
      scanned = 0;
      for (let at = 0; at < text.length; at += chunk) parser.feed(text.slice(at, at + chunk));
      expect(data).toBe(line);
      // Once, plus what exec() passes over after the last line break of each chunk: at most
      // twice the text. (Scanning the unfinished line again with every chunk made it ~128 times.)
      expect(scanned).toBeLessThanOrEqual(2 * text.length);
    } finally {
      spy.mockRestore();
    }
  });
});
