// Checks every options object of the package shares: an object, with known names only (a
// misspelt one is told the nearest), and delays timers honour.
import { fieldError } from './errors';

// setInterval silently clamps anything above 2^31-1 ms to 1 ms, which would flood every stream.
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay timers honour: an integer from 1 to MAX_TIMER_MS. */
export function isTimerMs(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0 && (value as number) <= MAX_TIMER_MS;
}

export function checkOptionNames(options: object, known: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(options)) {
    if (known.has(key)) continue;
    const near = nearest(key, known);
    const hint = near === undefined ? '' : ` (did you mean "${near}"?)`;
    throw fieldError('ERR_SSE_INVALID_OPTION', `${what} option "${key}"`, `one of ${[...known].join(', ')}${hint}`, key);
  }
}

// The known name a misspelt one most likely meant: the same letters in another case, or at most
// two edits away (adaptor → adapter, authorise → authorize, hearbeat → heartbeat).
function nearest(name: string, known: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    if (candidate.toLowerCase() === name.toLowerCase()) return candidate;
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance with adjacent transpositions counted as one edit. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i += 1) {
    const row = [i];
    for (let j = 1; j <= b.length; j += 1) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

export function checkOptionsObject(options: unknown, what: string): asserts options is object {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', `${what} options`, 'an object', options);
  }
}
