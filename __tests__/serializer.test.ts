import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { formatComment, formatEvent, formatEventFields, formatRetry, serializeData } from '../src/stream/serializer';

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

  describe('when only some fields are given', () => {
    it('writes those and no other', () => {
      expect(formatEvent('x', {})).toBe('data: x\n\n');
      expect(formatEvent('x', { id: 1 })).toBe('id: 1\ndata: x\n\n');
      expect(formatEvent('x', { event: 'tick', id: undefined, retry: undefined })).toBe('event: tick\ndata: x\n\n');
      expect(formatEvent('x', { retry: 0 })).toBe('retry: 0\ndata: x\n\n');
    });
  });

  describe('when the id is a string', () => {
    it.each([
      ['a position', '42.k3f9a2'],
      ['several positions', '3.k3f9,4.p0q1'],
      ['spaces and Unicode', ' a b é 😀'],
      ['empty (which resets the last event ID)', ''],
    ])('writes %s as it is, and a parser reads it back', (_what, id) => {
      expect(formatEvent('x', { id })).toBe(`id: ${id}\ndata: x\n\n`);
      expect(parse(formatEvent('x', { id })).events[0]?.id).toBe(id);
    });
  });

  describe('when the id is a number', () => {
    it.each([
      [0, '0'],
      [-3, '-3'],
      [1.5, '1.5'],
      [Number.MAX_SAFE_INTEGER, '9007199254740991'],
    ])('writes %p as %s', (id, written) => {
      expect(formatEvent('x', { id })).toBe(`id: ${written}\ndata: x\n\n`);
    });
  });

  describe('when an event name or id holds a surrogate pair (an emoji)', () => {
    it('writes it, since UTF-8 carries it', () => {
      expect(formatEvent('x', { event: 'a😀', id: '😀b' })).toBe('event: a😀\nid: 😀b\ndata: x\n\n');
      expect(formatEvent('x', { event: '😀😀', id: '😀😀' })).toBe('event: 😀😀\nid: 😀😀\ndata: x\n\n');
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
    ['retry', { retry: 2 ** 53 }, 'ERR_SSE_INVALID_RETRY'],
    ['retry', { retry: -0.5 }, 'ERR_SSE_INVALID_RETRY'],
    ['id', { id: Number.POSITIVE_INFINITY }, 'ERR_SSE_INVALID_ID'],
    ['id', { id: 1n }, 'ERR_SSE_INVALID_ID'],
    ['id', { id: null }, 'ERR_SSE_INVALID_ID'],
    // UTF-8 cannot carry half of a surrogate pair: it would arrive as U+FFFD, another name or id.
    ['event', { event: 'a\uD83D' }, 'ERR_SSE_INVALID_EVENT'],
    ['event', { event: '\uDE00a' }, 'ERR_SSE_INVALID_EVENT'],
    ['id', { id: 'a\uD83Db' }, 'ERR_SSE_INVALID_ID'],
    ['id', { id: 'a\uDE00' }, 'ERR_SSE_INVALID_ID'],
    ['id', { id: '\uDE00\uD83D' }, 'ERR_SSE_INVALID_ID'],
  ])('when %s is %p', (field, fields, code) => {
    it('throws a TypeError naming the field', () => {
      const call = (): string => formatEvent('x', fields as never);
      expect(call).toThrow(TypeError);
      expect(call).toThrow(new RegExp(`^express-sse-hub: ${field} must be`));
      expect(call).toThrow(expect.objectContaining({ code }) as Error);
    });
  });

  describe('when a field is invalid', () => {
    it('says what the field accepts and what it received', () => {
      expect(() => formatEvent('x', { event: '' })).toThrow('express-sse-hub: event must be a non-empty string without CR, LF or lone surrogates, received ""');
      expect(() => formatEvent('x', { id: 'a\nb' })).toThrow('express-sse-hub: id must be a finite number or a string without CR, LF, NUL or lone surrogates, received "a\\nb"');
      expect(() => formatEvent('x', { retry: -1 })).toThrow('express-sse-hub: retry must be a non-negative integer (milliseconds), received -1');
    });

    it('throws before writing anything, even when the fields before it are valid', () => {
      expect(() => formatEvent('x', { event: 'ok', id: 1, retry: -1 })).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_RETRY' }) as Error);
      expect(() => formatEvent('x', { event: 'ok', id: 'a\0' })).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_ID' }) as Error);
    });
  });
});

describe('formatEventFields()', () => {
  it('writes the event and data lines, without an id or the closing blank line', () => {
    expect(formatEventFields('a\r\nb')).toBe('data: a\ndata: b\n');
    expect(formatEventFields('x', 'tick')).toBe('event: tick\ndata: x\n');
  });

  it('refuses an event name a parser would read differently', () => {
    expect(() => formatEventFields('x', 'a\nb')).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_EVENT' }) as Error);
    expect(() => formatEventFields('x', '')).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_EVENT' }) as Error);
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

  describe('when the text is not a string', () => {
    it('throws a TypeError with code ERR_SSE_INVALID_COMMENT', () => {
      expect(() => formatComment(42 as never)).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_COMMENT', name: 'TypeError' }) as Error);
      expect(() => formatComment(42 as never)).toThrow('express-sse-hub: comment must be a string, received 42');
    });
  });
});

describe('formatRetry()', () => {
  it('writes a lone retry field', () => {
    expect(formatRetry(2500)).toBe('retry: 2500\n\n');
  });

  it('takes 0 (reconnect at once)', () => {
    expect(formatRetry(0)).toBe('retry: 0\n\n');
  });

  it.each([-1, 0.5, Number.NaN, '10'])('refuses %p', (retry) => {
    expect(() => formatRetry(retry as never)).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_RETRY' }) as Error);
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

    it("says so, with the serializer's own message", () => {
      const failing = (): string => {
        throw new RangeError('too deep');
      };
      expect(() => serializeData({ a: 1 }, failing)).toThrow('express-sse-hub: data must be serializable, received an object (too deep)');
    });

    it('takes a thrown value that is not an Error as the message', () => {
      const failing = (): string => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw 'no way';
      };
      expect(() => serializeData([1], failing)).toThrow(expect.objectContaining({ message: 'express-sse-hub: data must be serializable, received an array (no way)', cause: 'no way' }) as Error);
    });
  });

  describe('when the serializer returns no string', () => {
    it('throws rather than sending "undefined"', () => {
      expect(() => serializeData(undefined, JSON.stringify)).toThrow(/data must be a value the serializer turns into a string/);
      expect(() => serializeData(() => 1, JSON.stringify)).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_DATA', name: 'TypeError' }) as Error);
    });
  });
});
