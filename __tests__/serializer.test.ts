import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { formatComment, formatEvent, formatRetry, serializeData } from '../src/stream/serializer';

function parse(text: string): { events: EventSourceMessage[]; comments: string[] } {
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  const parser = createParser({ onEvent: (e) => events.push(e), onComment: (c) => comments.push(c) });
  parser.feed(text);
  return { events, comments };
}

describe('formatEvent()', () => {
  describe('when only data is given', () => {
    it('writes one data field and a blank line', () => {
      expect(formatEvent('hello')).toBe('data: hello\n\n');
    });
  });

  describe('when every field is given', () => {
    it('writes event, id, retry, then data', () => {
      expect(formatEvent('x', { event: 'tick', id: 7, retry: 3000 })).toBe('event: tick\nid: 7\nretry: 3000\ndata: x\n\n');
    });
  });

  describe.each([
    ['LF', 'a\nb\nc'],
    ['CRLF', 'a\r\nb\r\nc'],
    ['lone CR', 'a\rb\rc'],
    ['a mix', 'a\r\nb\rc'],
  ])('when the data has %s line breaks', (_name, data) => {
    it('writes a separate data field for each line', () => {
      expect(formatEvent(data)).toBe('data: a\ndata: b\ndata: c\n\n');
    });
    it('is rebuilt by a parser joined with LF', () => {
      expect(parse(formatEvent(data)).events.map((e) => e.data)).toEqual(['a\nb\nc']);
    });
  });

  describe('when the data ends with a line break', () => {
    it('keeps the trailing empty line', () => {
      expect(formatEvent('a\n')).toBe('data: a\ndata: \n\n');
      expect(parse(formatEvent('a\n')).events[0]?.data).toBe('a\n');
    });
  });

  describe('when the data is empty', () => {
    it('still dispatches an event with empty data', () => {
      expect(formatEvent('')).toBe('data: \n\n');
      expect(parse(formatEvent('')).events).toEqual([{ id: undefined, event: undefined, data: '' }]);
    });
  });

  describe('when the data starts with a space or a colon', () => {
    it('survives the round trip', () => {
      expect(parse(formatEvent('  two spaces')).events[0]?.data).toBe('  two spaces');
      expect(parse(formatEvent(':not a comment')).events[0]?.data).toBe(':not a comment');
    });
  });

  describe('when the data holds non-ASCII text', () => {
    it('passes it through unchanged', () => {
      const data = 'naïve — 日本語 — 🎉';
      expect(parse(formatEvent(data)).events[0]?.data).toBe(data);
    });
  });

  describe('when the data tries to inject fields', () => {
    it('keeps them inside the data', () => {
      const data = 'x\n\nevent: admin\ndata: pwned\nid: 999';
      const { events } = parse(formatEvent(data));
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ event: undefined, id: undefined, data });
    });
  });

  describe.each([
    ['event', { event: 'a\nevent: b' }, 'ERR_SSE_INVALID_EVENT'],
    ['event', { event: 'a\rb' }, 'ERR_SSE_INVALID_EVENT'],
    ['event', { event: '' }, 'ERR_SSE_INVALID_EVENT'],
    ['event', { event: 42 }, 'ERR_SSE_INVALID_EVENT'],
    ['id', { id: '1\ndata: x' }, 'ERR_SSE_INVALID_ID'],
    ['id', { id: '1\r\n' }, 'ERR_SSE_INVALID_ID'],
    ['id', { id: 'a\0b' }, 'ERR_SSE_INVALID_ID'],
    ['id', { id: Number.NaN }, 'ERR_SSE_INVALID_ID'],
    ['id', { id: {} }, 'ERR_SSE_INVALID_ID'],
    ['retry', { retry: -1 }, 'ERR_SSE_INVALID_RETRY'],
    ['retry', { retry: 1.5 }, 'ERR_SSE_INVALID_RETRY'],
    ['retry', { retry: '100' }, 'ERR_SSE_INVALID_RETRY'],
    ['retry', { retry: Number.POSITIVE_INFINITY }, 'ERR_SSE_INVALID_RETRY'],
  ])('when %s is %p', (field, fields, code) => {
    it('throws a TypeError naming the field', () => {
      const call = (): string => formatEvent('x', fields as never);
      expect(call).toThrow(TypeError);
      expect(call).toThrow(new RegExp(`^express-sse-hub: ${field} must be`));
      expect(call).toThrow(expect.objectContaining({ code }) as Error);
    });
  });
});

describe('formatComment()', () => {
  describe('when given no text', () => {
    it('writes a bare colon line', () => {
      expect(formatComment()).toBe(':\n\n');
    });
  });

  describe('when the text spans lines', () => {
    it('keeps every line a comment and dispatches nothing', () => {
      const frame = formatComment('one\r\nevent: x\rdata: y');
      expect(frame).toBe(': one\n: event: x\n: data: y\n\n');
      expect(parse(frame)).toEqual({ events: [], comments: ['one', 'event: x', 'data: y'] });
    });
  });
});

describe('formatRetry()', () => {
  it('writes a lone retry field', () => {
    expect(formatRetry(2500)).toBe('retry: 2500\n\n');
  });
});

describe('serializeData()', () => {
  describe('when the data is a string', () => {
    it('returns it untouched, without calling the serializer', () => {
      const serialize = jest.fn(() => 'no');
      expect(serializeData('{"a":1}', serialize)).toBe('{"a":1}');
      expect(serialize).not.toHaveBeenCalled();
    });
  });

  describe('when the data is an object', () => {
    it('uses the serializer', () => {
      expect(serializeData({ a: [1, 'b'] }, JSON.stringify)).toBe('{"a":[1,"b"]}');
    });
  });

  describe('when the serializer throws', () => {
    it('throws a TypeError with code ERR_SSE_INVALID_DATA and the cause', () => {
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      expect(() => serializeData(circular, JSON.stringify)).toThrow(
        expect.objectContaining({ code: 'ERR_SSE_INVALID_DATA', name: 'TypeError', cause: expect.any(TypeError) as unknown }) as Error,
      );
    });
  });

  describe('when the serializer returns no string', () => {
    it('throws rather than sending "undefined"', () => {
      expect(() => serializeData(undefined, JSON.stringify)).toThrow(/data must be a value the serializer turns into a string/);
    });
  });
});
