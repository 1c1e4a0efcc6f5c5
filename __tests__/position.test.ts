// Positions in a channel's log and how they travel as SSE ids: `<offset>.<epoch>`, one per
// channel, comma-separated (see src/log/position.ts). Pure functions, no server.
import { formatPosition, isEpoch, MAX_ID_ENTRIES, newEpoch, parseLastEventId, samePosition } from '../src/log/position';

describe('parseLastEventId()', () => {
  it.each([
    ['one position', '42.k3f9a2b1', { valid: true, positions: [{ offset: 42, epoch: 'k3f9a2b1' }] }],
    [
      'several',
      '1.aaaa,0.bbbb',
      {
        valid: true,
        positions: [
          { offset: 1, epoch: 'aaaa' },
          { offset: 0, epoch: 'bbbb' },
        ],
      },
    ],
    ['the largest offset (15 digits)', '999999999999999.z', { valid: true, positions: [{ offset: 999_999_999_999_999, epoch: 'z' }] }],
    ['the longest epoch (16 characters)', '7.0123456789abcdef', { valid: true, positions: [{ offset: 7, epoch: '0123456789abcdef' }] }],
    ['a plain number', '17', { valid: false, positions: [] }],
    ['garbage', 'x'.repeat(5000), { valid: false, positions: [] }],
    ['too many entries', Array.from({ length: 65 }, () => '1.a').join(','), { valid: false, positions: [] }],
  ])('reads %s', (_what, id, expected) => {
    expect(parseLastEventId(id)).toEqual(expected);
  });

  it('says "first connection" for no id', () => {
    expect(parseLastEventId(undefined)).toBeUndefined();
    expect(parseLastEventId('')).toBeUndefined();
  });

  it(`reads up to ${MAX_ID_ENTRIES} positions (one per channel of a connection)`, () => {
    const id = Array.from({ length: MAX_ID_ENTRIES }, (_, i) => `${i}.e${i}`).join(',');
    const read = parseLastEventId(id);
    expect(read?.valid).toBe(true);
    expect(read?.positions).toHaveLength(MAX_ID_ENTRIES);
    expect(read?.positions[MAX_ID_ENTRIES - 1]).toEqual({ offset: MAX_ID_ENTRIES - 1, epoch: `e${MAX_ID_ENTRIES - 1}` });
    expect(parseLastEventId(`${id},1.a`)).toEqual({ valid: false, positions: [] });
  });

  // Whatever is not exactly positions resets every channel: a guess could replay the wrong events.
  it.each([
    ['a leading zero', '01.abc'],
    ['an offset of 16 digits', '1000000000000000.abc'],
    ['a sign', '-1.abc'],
    ['a fraction', '1.5.abc'],
    ['no offset', '.abc'],
    ['no epoch', '1.'],
    ['no dot', '1abc'],
    ['an epoch of 17 characters', '1.0123456789abcdefg'],
    ['upper case in the epoch', '1.ABC'],
    ['another character in the epoch', '1.ab-c'],
    ['a space before', ' 1.abc'],
    ['a space after', '1.abc '],
    ['something before', 'x1.abc'],
    ['a newline after', '1.abc\n'],
    ['an empty entry', '1.abc,,2.def'],
    ['a trailing comma', '1.abc,'],
    ['one bad entry among good ones', '1.abc,2.DEF,3.ghi'],
  ])('reads %s as no position at all', (_what, id) => {
    expect(parseLastEventId(id)).toEqual({ valid: false, positions: [] });
  });
});

describe('formatPosition()', () => {
  it('writes <offset>.<epoch>, which parseLastEventId() reads back', () => {
    const position = { offset: 42, epoch: 'k3f9a2' };
    expect(formatPosition(position)).toBe('42.k3f9a2');
    expect(parseLastEventId(formatPosition(position))).toEqual({ valid: true, positions: [position] });
    expect(formatPosition({ offset: 0, epoch: 'a' })).toBe('0.a');
  });
});

describe('isEpoch()', () => {
  it.each(['a', '0', 'k3f9a2b1', '0123456789abcdef'])('takes %p', (epoch) => {
    expect(isEpoch(epoch)).toBe(true);
  });

  it.each(['', '0123456789abcdefg', 'ABC', 'a-b', ' a', 'a ', 'a\n', 'é', 7, undefined, null, ['a']])('refuses %p', (epoch) => {
    expect(isEpoch(epoch)).toBe(false);
  });
});

describe('newEpoch()', () => {
  it('makes 8 lower-case letters and digits, an epoch an id can carry', () => {
    for (let i = 0; i < 50; i += 1) {
      const epoch = newEpoch();
      expect(epoch).toMatch(/^[0-9a-z]{8}$/);
      expect(isEpoch(epoch)).toBe(true);
      expect(parseLastEventId(`1.${epoch}`)?.valid).toBe(true);
    }
  });

  it('makes a new one every time (about 41 random bits)', () => {
    const epochs = new Set(Array.from({ length: 200 }, () => newEpoch()));
    expect(epochs.size).toBe(200);
  });

  it('uses all 36 characters', () => {
    const seen = new Set(Array.from({ length: 200 }, () => newEpoch()).join(''));
    expect(seen.size).toBe(36);
  });
});

describe('samePosition()', () => {
  it('is true for the same offset in the same epoch only', () => {
    expect(samePosition({ offset: 3, epoch: 'abc' }, { offset: 3, epoch: 'abc' })).toBe(true);
    expect(samePosition({ offset: 3, epoch: 'abc' }, { offset: 4, epoch: 'abc' })).toBe(false);
    expect(samePosition({ offset: 3, epoch: 'abc' }, { offset: 3, epoch: 'abd' })).toBe(false);
    expect(samePosition({ offset: 3, epoch: 'abc' }, { offset: 4, epoch: 'abd' })).toBe(false);
  });
});
