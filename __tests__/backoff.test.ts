// When the client reconnects: the backoff after failed attempts, Retry-After after a refusal, and
// the delays setTimeout can honour. Pure functions: `random` and `now` are passed in.
import { backoffDelay, clampDelay, MAX_BACKOFF_MS, MIN_BACKOFF_MS, refusalDelay, retryAfterMs, RETRY_AFTER_SPREAD } from '../src/client/backoff';

const NOW = Date.parse('2025-01-01T00:00:00Z');
/** setTimeout fires at once for anything longer (about 24.8 days). */
const LONGEST_TIMEOUT = 2 ** 31 - 1;

describe('backoffDelay()', () => {
  it('stays in the upper half of retry × 2^failures', () => {
    for (const failures of [1, 2, 3]) {
      const ceiling = 1000 * 2 ** failures;
      expect(backoffDelay(failures, 1000, () => 0)).toBe(ceiling / 2);
      expect(backoffDelay(failures, 1000, () => 0.5)).toBe((ceiling * 3) / 4);
      expect(backoffDelay(failures, 1000, () => 0.999999)).toBeCloseTo(ceiling, -1);
    }
  });

  it('puts the delay as far into the upper half as the random number says', () => {
    // Retry 2000 ms after 2 failures: the upper half of 8000 ms, a quarter of the way in.
    expect(backoffDelay(2, 2000, () => 0.25)).toBe(4000 + 1000);
  });

  it('spreads clients out (jitter)', () => {
    const delays = new Set(Array.from({ length: 50 }, () => Math.round(backoffDelay(2, 1000))));
    expect(delays.size).toBeGreaterThan(40);
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(2000);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });

  it(`never grows past ${MAX_BACKOFF_MS} ms, unless the reconnection time is longer`, () => {
    expect(backoffDelay(20, 1000, () => 1)).toBe(MAX_BACKOFF_MS);
    expect(backoffDelay(20, 1000, () => 0)).toBe(MAX_BACKOFF_MS / 2);
    expect(backoffDelay(5, 1000, () => 1)).toBe(MAX_BACKOFF_MS);
    expect(backoffDelay(20, 60_000, () => 1)).toBe(60_000);
    expect(backoffDelay(1, 60_000, () => 0)).toBe(60_000);
  });

  it('never comes sooner than the reconnection time, also one above half the cap', () => {
    expect(backoffDelay(1, 20_000, () => 0)).toBe(20_000);
    expect(backoffDelay(1, 20_000, () => 0.5)).toBe(25_000);
    expect(backoffDelay(1, 20_000, () => 1)).toBe(MAX_BACKOFF_MS);
    expect(backoffDelay(3, 16_000, () => 0)).toBe(16_000);
    for (const retry of [100, 3000, 15_000, 15_001, 29_999, 30_000, 45_000]) {
      for (const failures of [1, 2, 5, 30]) {
        for (const r of [0, 0.3, 0.999]) expect(backoffDelay(failures, retry, () => r)).toBeGreaterThanOrEqual(retry);
      }
    }
  });

  it(`starts from at least ${MIN_BACKOFF_MS} ms after retry: 0`, () => {
    expect(backoffDelay(1, 0, () => 0)).toBe(MIN_BACKOFF_MS);
    expect(backoffDelay(1, 0, () => 1)).toBe(2 * MIN_BACKOFF_MS);
    expect(backoffDelay(2, 50, () => 0)).toBe(2 * MIN_BACKOFF_MS);
    expect(backoffDelay(1, 101, () => 0)).toBe(101);
  });

  it('never exceeds what setTimeout honours, whatever the reconnection time', () => {
    expect(backoffDelay(1, 2 ** 40, () => 0)).toBe(LONGEST_TIMEOUT);
  });
});

describe('refusalDelay()', () => {
  it('is the backoff when Retry-After asks for nothing (absent, 0, past, unreadable)', () => {
    for (const header of [null, '0', 'Tue, 31 Dec 2024 23:59:00 GMT', 'soon', '-5']) {
      expect(refusalDelay(1, 1000, header, NOW, () => 0)).toBe(backoffDelay(1, 1000, () => 0));
      expect(refusalDelay(2, 1000, header, NOW, () => 0.5)).toBe(3000);
    }
    expect(refusalDelay(1, 0, '0', NOW, () => 0)).toBe(MIN_BACKOFF_MS);
  });

  it(`is Retry-After plus up to ${RETRY_AFTER_SPREAD * 100} % of it, at random, when that is longer than the backoff`, () => {
    expect(refusalDelay(1, 1000, '10', NOW, () => 0)).toBe(10_000);
    expect(refusalDelay(1, 1000, '10', NOW, () => 0.999999)).toBeCloseTo(15_000, -1);
    expect(refusalDelay(1, 1000, 'Wed, 01 Jan 2025 00:00:30 GMT', NOW, () => 0)).toBe(30_000);
  });

  it('takes the later of the backoff and the point in the Retry-After window', () => {
    // Backoff 1000 + 0.5 × 1000 against Retry-After 10 s + 0.5 × 50 % of 10 s.
    expect(refusalDelay(1, 1000, '10', NOW, () => 0.5)).toBe(12_500);
    // Backoff 8000 + 0.9 × 8000 against Retry-After 2 s + 0.9 × 50 % of 2 s.
    expect(refusalDelay(4, 1000, '2', NOW, () => 0.9)).toBe(15_200);
  });

  it('keeps the backoff growing past a shorter Retry-After', () => {
    expect(refusalDelay(5, 1000, '1', NOW, () => 0)).toBe(backoffDelay(5, 1000, () => 0));
    expect(refusalDelay(5, 1000, '1', NOW, () => 0)).toBe(15_000);
  });

  it('never exceeds what setTimeout honours, however long Retry-After asks for', () => {
    expect(refusalDelay(1, 1000, '99999999', NOW, () => 1)).toBe(LONGEST_TIMEOUT);
  });
});

describe('retryAfterMs()', () => {
  it('reads delay-seconds and HTTP dates, and gives no wait for 0, a date now or past, or anything else', () => {
    expect(retryAfterMs('1', NOW)).toBe(1000);
    expect(retryAfterMs(' 120 ', NOW)).toBe(120_000);
    expect(retryAfterMs('Wed, 01 Jan 2025 00:00:30 GMT', NOW)).toBe(30_000);
    for (const nothing of [null, '', '0', '00', 'Wed, 01 Jan 2025 00:00:00 GMT', 'Tue, 31 Dec 2024 23:59:00 GMT', 'soon', '-5', '1.5', '+5', '1e3', '0x10', '5 s']) {
      expect(retryAfterMs(nothing, NOW)).toBeUndefined();
    }
  });

  it('reads the obsolete HTTP-date format too (RFC 850), as recipients must (RFC 9110 §5.6.7)', () => {
    expect(retryAfterMs('Wednesday, 01-Jan-25 00:00:30 GMT', NOW)).toBe(30_000);
  });

  it('reads a month name in any case', () => {
    expect(retryAfterMs('WED, 01 JAN 2025 00:00:30 GMT', NOW)).toBe(30_000);
  });

  it('reads no date without a month name (Date.parse would take "2025-01-02" or "5" as dates)', () => {
    expect(retryAfterMs('2025-01-02', NOW)).toBeUndefined();
    expect(retryAfterMs('2025/01/02 00:00:00', NOW)).toBeUndefined();
  });

  it('counts the wait to a date to the millisecond', () => {
    expect(retryAfterMs(new Date(NOW + 1000).toUTCString(), NOW)).toBe(1000);
    expect(retryAfterMs(new Date(NOW).toUTCString(), NOW - 1)).toBe(1);
  });

  it('caps a wait longer than setTimeout honours (it would fire at once)', () => {
    expect(retryAfterMs('2147483', NOW)).toBe(2_147_483_000);
    expect(retryAfterMs('2147484', NOW)).toBe(LONGEST_TIMEOUT);
    expect(retryAfterMs('Fri, 01 Jan 2100 00:00:00 GMT', NOW)).toBe(LONGEST_TIMEOUT);
  });

  it('reads the current time when none is given', () => {
    jest.useFakeTimers({ now: NOW });
    try {
      expect(retryAfterMs('Wed, 01 Jan 2025 00:00:30 GMT')).toBe(30_000);
      expect(refusalDelay(1, 1000, 'Wed, 01 Jan 2025 00:00:30 GMT', undefined, () => 0)).toBe(30_000);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('clampDelay()', () => {
  it.each([
    [-1, 0],
    [Number.NEGATIVE_INFINITY, 0],
    [0, 0],
    [1, 1],
    [1500.5, 1501], // whole milliseconds: a timer truncates a fraction
    [1500.4, 1500],
    [LONGEST_TIMEOUT, LONGEST_TIMEOUT],
    [LONGEST_TIMEOUT + 1, LONGEST_TIMEOUT],
    [Number.POSITIVE_INFINITY, LONGEST_TIMEOUT],
  ])('makes %p ms %p ms', (ms, clamped) => {
    expect(clampDelay(ms)).toBe(clamped);
  });
});
