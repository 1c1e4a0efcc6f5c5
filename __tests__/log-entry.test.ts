// Entries of a channel's log (src/log/entry.ts): which id one carries on the wire, which client
// position belongs to a log, and the value a filter sees again after the text crossed processes.
import { MemoryAdapter } from '../src/adapters/memory';
import { customIdOf, dataOf, entryAt, kindOf, matchPosition, type LogEntry, type PublishedEvent } from '../src/log/entry';

function published(fields: Partial<PublishedEvent> = {}): PublishedEvent {
  return { event: undefined, text: 'x', kind: 'text', id: undefined, origin: undefined, ...fields };
}

describe('kindOf()', () => {
  it('says how the text was made: a string as it is, JSON.stringify, or another serializer', () => {
    expect(kindOf('{"a":1}', JSON.stringify)).toBe('text');
    expect(kindOf({ a: 1 }, JSON.stringify)).toBe('json');
    expect(kindOf({ a: 1 }, (data) => String(data))).toBe('other');
    expect(kindOf('a', (data) => String(data))).toBe('text');
  });
});

describe('entryAt()', () => {
  it('places the event at the epoch and offset, keeping every field', () => {
    const event = published({ event: 'tick', text: '{"n":1}', kind: 'json', id: 'mine', origin: 'p1' });
    expect(entryAt(event, 'abc', 7)).toEqual({ epoch: 'abc', offset: 7, event: 'tick', text: '{"n":1}', kind: 'json', id: 'mine', origin: 'p1' });
  });

  it('carries the original value only when the publisher gave one (in-process), even undefined', () => {
    expect('data' in entryAt(published(), 'abc', 1)).toBe(false);
    const entry = entryAt({ ...published(), data: undefined }, 'abc', 1);
    expect('data' in entry).toBe(true);
    expect(entryAt({ ...published(), data: { n: 1 } }, 'abc', 1).data).toEqual({ n: 1 });
  });
});

describe('matchPosition()', () => {
  const after = [
    { epoch: 'other', offset: 5 },
    { epoch: 'abc', offset: 3 },
    { epoch: 'abc', offset: 1 },
  ];

  it('finds the first position in the log of that epoch', () => {
    expect(matchPosition(after, 'abc', 10)).toBe(1);
    expect(matchPosition(after, 'other', 10)).toBe(0);
  });

  it('takes a position at the head (the client has everything)', () => {
    expect(matchPosition([{ epoch: 'abc', offset: 3 }], 'abc', 3)).toBe(0);
    expect(matchPosition([{ epoch: 'abc', offset: 0 }], 'abc', 0)).toBe(0);
  });

  it('finds none for a position ahead of the head (a log that went back in time) or another epoch', () => {
    expect(matchPosition([{ epoch: 'abc', offset: 4 }], 'abc', 3)).toBe(-1);
    expect(matchPosition(after, 'new', 10)).toBe(-1);
    expect(matchPosition([], 'abc', 10)).toBe(-1);
  });

  it('skips a position ahead of the head for a later one that fits', () => {
    expect(matchPosition(after, 'abc', 2)).toBe(2);
  });
});

describe('customIdOf()', () => {
  it("is the publisher's id for an entry without a position (a channel without history)", () => {
    expect(customIdOf(entryAt(published({ id: 'mine' }), '', 0))).toBe('mine');
    expect(customIdOf(entryAt(published(), '', 0))).toBeUndefined();
  });

  it('is none for an entry with a position: its id is the position', () => {
    expect(customIdOf(entryAt(published({ id: 'mine' }), 'abc', 1))).toBeUndefined();
  });
});

describe('dataOf()', () => {
  const entry = (fields: Partial<LogEntry>): LogEntry => ({ ...entryAt(published(), 'abc', 1), ...fields });

  it('is the original value when the entry carries one', () => {
    const data = { n: 1 };
    expect(dataOf(entry({ data, text: '{"n":2}', kind: 'json' }))).toBe(data);
    expect(dataOf(entry({ data: undefined, text: 'x', kind: 'text' }))).toBeUndefined();
  });

  it('parses JSON text back into the value', () => {
    expect(dataOf(entry({ text: '{"n":[1,"a"]}', kind: 'json' }))).toEqual({ n: [1, 'a'] });
    expect(dataOf(entry({ text: '"s"', kind: 'json' }))).toBe('s');
  });

  it('gives the text when JSON text does not parse', () => {
    expect(dataOf(entry({ text: '{oops', kind: 'json' }))).toBe('{oops');
  });

  it('gives the text of a string or of another serializer as it is', () => {
    expect(dataOf(entry({ text: '{"n":1}', kind: 'text' }))).toBe('{"n":1}');
    expect(dataOf(entry({ text: '{"n":1}', kind: 'other' }))).toBe('{"n":1}');
  });
});

describe('a publish to a sealed log', () => {
  it('is refused with a message that says the log ended', async () => {
    const adapter = new MemoryAdapter();
    const options = { history: 10, ttl: 0 };
    try {
      await adapter.publish('c', published({ text: 'end' }), { ...options, seal: true });
      await expect(adapter.publish('c', published({ text: 'late' }), options)).rejects.toThrow('express-sse-hub: "c": the log is sealed: it ended, nothing more is appended');
    } finally {
      await adapter.close();
    }
  });
});
