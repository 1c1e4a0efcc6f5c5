// The frame of a log entry on the wire (src/channels/frame.ts): its event and data lines shared,
// its id last, so a connection in several channels can get its own id on the same text.
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { frameOf, frameWithId } from '../src/channels/frame';
import { entryAt, type PublishedEvent } from '../src/log/entry';

function published(fields: Partial<PublishedEvent> = {}): PublishedEvent {
  return { event: undefined, text: 'x', kind: 'text', id: undefined, origin: undefined, ...fields };
}

function parse(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  createParser({ onEvent: (e) => events.push(e) }).feed(text);
  return events;
}

describe('frameOf()', () => {
  describe('when the entry has a position in a log', () => {
    it('writes event, data, then the position as its id', () => {
      const frame = frameOf(entryAt(published({ event: 'tick', text: 'a\nb' }), 'k3f9a2', 42));
      expect(frame.text).toBe('event: tick\ndata: a\ndata: b\nid: 42.k3f9a2\n\n');
      expect(frame.positioned).toBe(true);
      expect(parse(frame.text)).toEqual([{ event: 'tick', data: 'a\nb', id: '42.k3f9a2' }]);
    });

    it("takes the position over a publisher's id", () => {
      expect(frameOf(entryAt(published({ id: 'mine' }), 'abc', 1)).text).toBe('data: x\nid: 1.abc\n\n');
    });
  });

  describe('when the entry has no position (a channel without history)', () => {
    it("writes the publisher's id", () => {
      const frame = frameOf(entryAt(published({ id: 'mine' }), '', 0));
      expect(frame.text).toBe('data: x\nid: mine\n\n');
      expect(frame.positioned).toBe(false);
    });

    it('writes an empty id as it is (it resets the last event ID)', () => {
      expect(frameOf(entryAt(published({ id: '' }), '', 0)).text).toBe('data: x\nid: \n\n');
    });

    it('writes no id line when there is none', () => {
      const frame = frameOf(entryAt(published({ event: 'tick' }), '', 0));
      expect(frame.text).toBe('event: tick\ndata: x\n\n');
      expect(parse(frame.text)).toEqual([{ event: 'tick', data: 'x', id: undefined }]);
    });

    it('refuses an id that would break the frame (one from another process is checked again)', () => {
      expect(() => frameOf(entryAt(published({ id: '1\ndata: injected' }), '', 0))).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_ID' }) as Error);
    });
  });

  it('refuses an event name that would break the frame', () => {
    expect(() => frameOf(entryAt(published({ event: 'a\r\nb' }), 'abc', 1))).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_EVENT' }) as Error);
  });

  it('measures the body (event and data lines) and the UTF-8 bytes of the whole text', () => {
    const frame = frameOf(entryAt(published({ event: 'é', text: '日本' }), 'abc', 1));
    expect(frame.text).toBe('event: é\ndata: 日本\nid: 1.abc\n\n');
    expect(frame.bodyLength).toBe('event: é\ndata: 日本\n'.length);
    expect(frame.bytes).toBe(Buffer.byteLength(frame.text));
    expect(frame.bytes).toBe(frame.text.length + 1 + 2 * 2);
  });

  it('builds the frame of an entry once', () => {
    const entry = entryAt(published(), 'abc', 1);
    expect(frameOf(entry)).toBe(frameOf(entry));
    expect(frameOf(entryAt(published(), 'abc', 1))).not.toBe(frameOf(entry));
  });
});

describe('frameWithId()', () => {
  it('gives the same event with another id', () => {
    const frame = frameOf(entryAt(published({ event: 'tick', text: 'a\nb' }), 'abc', 5));
    const text = frameWithId(frame, '5.abc,9.def');
    expect(text).toBe('event: tick\ndata: a\ndata: b\nid: 5.abc,9.def\n\n');
    expect(parse(text)).toEqual([{ event: 'tick', data: 'a\nb', id: '5.abc,9.def' }]);
  });

  it('gives an id to an entry that had none', () => {
    expect(frameWithId(frameOf(entryAt(published(), '', 0)), '3.abc')).toBe('data: x\nid: 3.abc\n\n');
  });
});
