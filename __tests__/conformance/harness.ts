// A small stand-in for the parts of web-platform-tests' testharness.js (async_test, steps,
// assert_*) and of the `eventsource` package's test helpers (call counters, expect) that the
// ported cases use, so each case keeps its suite's own assertions. It runs in Node (jest) and,
// bundled by esbuild, in a Chromium page: no Node or DOM import, only what both have.

/** An EventSource constructor: express-sse-hub/client's, or the browser's own. */
export type EventSourceClass = new (url: string | URL, init?: Record<string, unknown>) => EventSourceLike;

/** The members of an EventSource the cases use. */
export interface EventSourceLike extends EventTarget {
  readonly url: string;
  readonly readyState: number;
  readonly withCredentials: boolean;
  readonly CONNECTING: number;
  readonly OPEN: number;
  readonly CLOSED: number;
  onopen: ((this: EventSourceLike, event: Event) => unknown) | null;
  onmessage: ((this: EventSourceLike, event: MessageEventLike) => unknown) | null;
  onerror: ((this: EventSourceLike, event: Event) => unknown) | null;
  close(): void;
}

export interface MessageEventLike extends Event {
  readonly data: string;
  readonly lastEventId: string;
  readonly origin: string;
}

/** Where a case runs. */
export interface Env {
  /** The EventSource under test (a subclass that remembers its instances, so each is closed after the case). */
  readonly EventSource: EventSourceClass & { readonly CONNECTING: number; readonly OPEN: number; readonly CLOSED: number; prototype: object };
  /** 'ours' (express-sse-hub/client) or 'native' (the browser's EventSource). */
  readonly impl: 'ours' | 'native';
  /** True in Node (no page: relative URLs, cookies, CORS, frames do not exist). */
  readonly node: boolean;
  /** A URL of the wpt `eventsource/` directory: as given in a page (which is in that directory), absolute in Node. */
  wpt(path: string): string;
  /** The same directory on another origin (another port of the same host: same site). */
  readonly crossWpt: string;
  /** The origin `crossWpt` is on. */
  readonly crossOrigin: string;
  /** The origin of the `eventsource` package's test routes, and the same routes on another origin. */
  readonly esBase: string;
  readonly esCrossBase: string;
  /** An origin where nothing listens. */
  readonly closedOrigin: string;
  /** The global scope (window in a page, globalThis in Node). */
  readonly scope: Record<string, unknown>;
  /** The module EventSource came from (express-sse-hub/client), or the scope for the native one. */
  readonly home: object;
}

/** One ported case. */
export interface Case {
  /** Its name in its suite (the wpt test title, or the `eventsource` test name). */
  readonly name: string;
  /** The file it was ported from. */
  readonly from: string;
  /** Why it needs a browser, when it does. */
  readonly browserOnly?: string;
  /** Why it cannot run against the browser's own EventSource (it uses an init field only ours has). */
  readonly oursOnly?: string;
  /** A time limit other than the default. */
  readonly timeoutMs?: number;
  /** The case leaves its page unusable for the next (window.stop()): a fresh page after it. */
  readonly spoilsPage?: true;
  /** A wpt case calls t.done(); an async case (the package's) is done when its promise resolves. */
  run(t: AsyncTest, env: Env): void | Promise<void>;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/** An assertion failed. */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// testharness.js assertions, as the wpt cases call them.
export function assert_equals(actual: unknown, expected: unknown, description = ''): void {
  if (!Object.is(actual, expected)) throw new AssertionError(`assert_equals: ${description} expected ${show(expected)} but got ${show(actual)}`);
}
export function assert_true(actual: unknown, description = ''): void {
  if (actual !== true) throw new AssertionError(`assert_true: ${description} expected true got ${show(actual)}`);
}
export function assert_false(actual: unknown, description = ''): void {
  if (actual !== false) throw new AssertionError(`assert_false: ${description} expected false got ${show(actual)}`);
}
export function assert_unreached(description = ''): never {
  throw new AssertionError(`assert_unreached: reached unreachable code ${description}`);
}
export function assert_regexp_match(actual: string, expected: RegExp, description = ''): void {
  if (!expected.test(actual)) throw new AssertionError(`assert_regexp_match: ${description} expected ${String(expected)} but got ${show(actual)}`);
}
export function assert_own_property(object: object, name: string, description = ''): void {
  if (!Object.prototype.hasOwnProperty.call(object, name)) throw new AssertionError(`assert_own_property: ${description} expected property ${show(name)} missing`);
}
export function assert_throws_dom(name: string, fn: () => unknown, description = ''): void {
  try {
    fn();
  } catch (error) {
    const thrown = error as { name?: unknown; constructor?: { name?: unknown } };
    if (thrown.name !== name || thrown.constructor?.name !== 'DOMException') {
      throw new AssertionError(`assert_throws_dom: ${description} expected a DOMException ${name}, got ${String(thrown.constructor?.name)} ${String(thrown.name)}`);
    }
    return;
  }
  throw new AssertionError(`assert_throws_dom: ${description} ${String(fn)} did not throw`);
}

/** testharness.js's async_test: steps that may fail it, done(), timeouts and cleanups. */
export class AsyncTest {
  readonly #settle: (error?: unknown) => void;
  readonly #cleanups: (() => void)[] = [];
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #over = false;

  constructor(settle: (error?: unknown) => void) {
    this.#settle = settle;
  }

  /** Runs `fn`; an exception fails the test. */
  step<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R | undefined {
    if (this.#over) return undefined;
    try {
      return fn(...args);
    } catch (error) {
      this.#end(error);
      return undefined;
    }
  }

  step_func<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R | undefined {
    return (...args: A) => this.step(fn, ...args);
  }

  step_func_done<A extends unknown[]>(fn?: (...args: A) => unknown): (...args: A) => void {
    return (...args: A) => {
      if (fn !== undefined) this.step(fn, ...args);
      this.done();
    };
  }

  unreached_func(description = ''): () => void {
    return this.step_func(() => assert_unreached(description));
  }

  step_timeout(fn: () => unknown, ms: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.step(fn);
    }, ms);
    this.#timers.add(timer);
  }

  add_cleanup(fn: () => void): void {
    this.#cleanups.push(fn);
  }

  done(): void {
    this.#end(undefined);
  }

  /** Fails the test (a timeout, an error outside a step). */
  fail(error: unknown): void {
    this.#end(error);
  }

  get over(): boolean {
    return this.#over;
  }

  #end(error: unknown): void {
    if (this.#over) return;
    this.#over = true;
    for (const timer of this.#timers) clearTimeout(timer);
    for (const cleanup of this.#cleanups) {
      try {
        cleanup();
      } catch {
        // A cleanup that throws does not change the outcome.
      }
    }
    this.#settle(error);
  }
}

/** What a case came to. */
export type Outcome = { readonly ok: true } | { readonly ok: false; readonly message: string };

/**
 * Runs `c` with `impl`: resolves with its outcome once it is done, failed or timed out, after
 * closing every EventSource it made.
 */
export async function runCase(c: Case, env: Omit<Env, 'EventSource'>, impl: EventSourceClass & Env['EventSource']): Promise<Outcome> {
  const made: EventSourceLike[] = [];
  // A subclass of the implementation under test that remembers its instances.
  const Tracked = class extends impl {
    constructor(url: string | URL, init?: Record<string, unknown>) {
      super(url, init);
      made.push(this);
    }
  } as unknown as Env['EventSource'];
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const error = await new Promise<unknown>((resolve) => {
      const t = new AsyncTest(resolve);
      timer = setTimeout(() => t.fail(new AssertionError(`timed out after ${c.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`)), c.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      try {
        const ran = c.run(t, { ...env, EventSource: Tracked });
        if (ran instanceof Promise) ran.then(() => t.done(), (e: unknown) => t.fail(e));
      } catch (e) {
        t.fail(e);
      }
    });
    return error === undefined ? { ok: true } : { ok: false, message: String((error as Error)?.message ?? error) };
  } finally {
    clearTimeout(timer);
    for (const source of made) source.close();
  }
}

// The `eventsource` package's helpers: a function that counts its calls, and its `expect`.

export interface CallCounter {
  (...args: unknown[]): void;
  readonly callCount: number;
  readonly lastCall: { readonly lastArg: unknown };
  waitForCallCount(count: number, timeoutMs?: number): Promise<void>;
}

export function getCallCounter(options: { name?: string; onCall?: (info: { numCalls: number }) => void } = {}): CallCounter {
  const waiting: [number, () => void][] = [];
  let calls = 0;
  let lastArgs: unknown[] = [];
  const counter = ((...args: unknown[]) => {
    calls += 1;
    lastArgs = args;
    options.onCall?.({ numCalls: calls });
    for (const [wanted, resolve] of waiting) if (wanted === calls) resolve();
  }) as CallCounter;
  Object.defineProperties(counter, {
    callCount: { get: () => calls },
    lastCall: { get: () => ({ lastArg: lastArgs[lastArgs.length - 1] }) },
  });
  counter.waitForCallCount = (count, timeoutMs = 10_000) =>
    new Promise<void>((resolve, reject) => {
      if (calls > count) reject(new Error(`Already past ${options.name ?? ''} call count of ${count}`));
      else if (calls === count) resolve();
      else {
        const timer = setTimeout(() => reject(new Error(`Timeout waiting for ${options.name ?? ''} call count of ${count}`)), timeoutMs);
        waiting.push([count, () => (clearTimeout(timer), resolve())]);
      }
    });
  return counter;
}

/** Closes `source` after `ms` (the package's deferClose). */
export function deferClose(source: EventSourceLike, ms = 25): Promise<void> {
  return new Promise((resolve) => setTimeout(() => resolve(source.close()), ms));
}

const TYPE = Symbol('type');
const PATTERN = Symbol('pattern');

/** The package's `expect`: toBe, notToBe, toMatchObject (own or inherited keys, strict equality), toThrowError. */
export function expect(thing: unknown, descriptor = '') {
  const fail = (message: string): never => {
    throw new AssertionError(message);
  };
  return {
    toBe(expected: unknown): void {
      if (thing !== expected) fail(`Expected ${descriptor || show(thing)} to be ${show(expected)}, got ${show(thing)}`);
    },
    notToBe(expected: unknown): void {
      if (thing === expected) fail(`Expected ${descriptor || show(thing)} NOT to be ${show(expected)}`);
    },
    toMatchObject(expected: Record<string, unknown>): void {
      if (typeof thing !== 'object' || thing === null) fail('Expected an object, was... not');
      const object = thing as Record<string, unknown>;
      for (const key of Object.keys(expected)) {
        const want = expected[key];
        if (!(key in object)) fail(`Expected key "${key}" to be in ${descriptor || 'object'}, was not`);
        if (typeof want === 'object' && want !== null && TYPE in want) {
          if (typeof object[key] !== want[TYPE]) fail(`Expected key "${key}" to be of type ${String(want[TYPE])}, got ${typeof object[key]}`);
        } else if (typeof want === 'object' && want !== null && PATTERN in want) {
          const pattern = want[PATTERN] as RegExp;
          if (typeof object[key] !== 'string' || !pattern.test(object[key])) fail(`Expected key "${key}" to match ${String(pattern)}, got ${show(object[key])}`);
        } else if (object[key] !== want) fail(`Expected key "${key}" of ${descriptor || 'object'} to be ${show(want)}, was ${show(object[key])}`);
      }
    },
  };
}
expect.any = (type: string): object => ({ [TYPE]: type });
expect.stringMatching = (pattern: RegExp): object => ({ [PATTERN]: pattern });
