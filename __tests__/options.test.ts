import { sse } from 'express-sse-hub';

describe('sse(options)', () => {
  describe.each([
    ['heartbeat', { heartbeat: 0 }],
    ['heartbeat', { heartbeat: -5 }],
    ['heartbeat', { heartbeat: 1.5 }],
    ['heartbeat', { heartbeat: '1000' }],
    ['heartbeat', { heartbeat: true }],
    ['heartbeat', { heartbeat: 2 ** 31 }],
    ['retry', { retry: -1 }],
    ['retry', { retry: 10.5 }],
    ['retry', { retry: '3000' }],
    ['serialize', { serialize: 'json' }],
  ])('when %s is invalid (%p)', (field, options) => {
    it('throws a TypeError naming the option at creation', () => {
      expect(() => sse(options as never)).toThrow(TypeError);
      expect(() => sse(options as never)).toThrow(new RegExp(`^express-sse-hub: ${field} must be`));
      expect(() => sse(options as never)).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }) as Error);
    });
  });

  describe('when an option name is misspelt', () => {
    it('throws, naming the unknown option', () => {
      expect(() => sse({ hearbeat: 100 } as never)).toThrow(/sse\(\) option "hearbeat" must be one of heartbeat, retry, serialize/);
    });
  });

  describe('when options is not an object', () => {
    it('throws', () => {
      expect(() => sse('fast' as never)).toThrow(/sse\(\) options must be an object/);
    });
  });

  describe('when the options object is frozen', () => {
    it('accepts it and leaves it untouched', () => {
      const options = Object.freeze({ heartbeat: 1000, retry: 500 });
      expect(() => sse(options)).not.toThrow();
      expect(options).toEqual({ heartbeat: 1000, retry: 500 });
    });
  });

  describe('when heartbeat is false or retry is 0', () => {
    it('accepts them', () => {
      expect(() => sse({ heartbeat: false, retry: 0 })).not.toThrow();
    });
  });
});
