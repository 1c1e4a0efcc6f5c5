// Helpers for the tests of the browser client (express-sse-hub/client) in Node.
import type { NextFunction, Request, Response } from 'express';
import { EventSource, type EventSourceInit } from '../../src/client';

/** Resolves with the next `type` event of `target` (rejects after `timeoutMs`). */
export function nextEvent<E extends Event = Event>(target: EventTarget, type: string, timeoutMs = 20_000): Promise<E> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      target.removeEventListener(type, listener);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for a "${type}" event`));
    }, timeoutMs);
    const listener = (event: Event): void => {
      clearTimeout(timer);
      target.removeEventListener(type, listener);
      resolve(event as E);
    };
    target.addEventListener(type, listener);
  });
}

/** The data of every `type` event of `source`, as they arrive. */
export function collect(source: EventSource, type = 'message'): string[] {
  const data: string[] = [];
  source.addEventListener(type, (event) => data.push(event.data));
  return data;
}

/**
 * For one test file: `open(url, init)` makes an EventSource that is closed after each test, so a
 * failing test leaves no source reconnecting for ever.
 */
export function trackSources(): (url: string, init?: EventSourceInit) => EventSource {
  let open: EventSource[] = [];
  afterEach(() => {
    for (const source of open) source.close();
    open = [];
  });
  return (url, init) => {
    const source = new EventSource(url, init);
    open.push(source);
    return source;
  };
}

/** What a server saw of one request. */
export interface SeenRequest {
  readonly at: number;
  readonly method: string;
  readonly headers: Request['headers'];
}

/** Middleware recording every request (time, method, headers) into `into`. */
export function recordRequests(into: SeenRequest[]): (req: Request, res: Response, next: NextFunction) => void {
  return (req, _res, next) => {
    into.push({ at: performance.now(), method: req.method, headers: req.headers });
    next();
  };
}

/**
 * Fake timers for tests where time is the subject, over real sockets: setTimeout, setInterval and
 * Date are fake (the client's and the server's timers alike); performance.now(), setImmediate,
 * process.nextTick and queueMicrotask stay real, so I/O and the waits for it (settle) run.
 */
export function useFakeClock(): void {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'performance'] });
}

/**
 * Lets real I/O run until `check()` holds (fake time stands still meanwhile); fails after
 * `timeoutMs` of real time. For tests on a fake clock, where setTimeout-based waits never end.
 */
export async function settle(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Milliseconds between consecutive requests. */
export function gaps(requests: readonly SeenRequest[]): number[] {
  return requests.slice(1).map((r, i) => r.at - requests[i]!.at);
}

/**
 * An in-process stand-in for the Web Locks API (`navigator.locks`), which Node lacks: exclusive
 * locks granted in request order, asynchronously, released when the callback's promise settles;
 * a request whose signal aborts leaves the queue.
 */
export class TestLocks {
  readonly #held = new Set<string>();
  readonly #queues = new Map<string, (() => void)[]>();

  request(name: string, options: { signal: AbortSignal }, callback: () => Promise<void>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const queue = this.#queues.get(name) ?? [];
      this.#queues.set(name, queue);
      const grant = (): void => {
        options.signal.removeEventListener('abort', onAbort);
        this.#held.add(name);
        callback()
          .then(resolve, reject)
          .finally(() => {
            this.#held.delete(name);
            this.#next(name);
          });
      };
      const onAbort = (): void => {
        const at = queue.indexOf(grant);
        if (at >= 0) queue.splice(at, 1);
        reject(new Error('aborted'));
      };
      options.signal.addEventListener('abort', onAbort);
      queue.push(grant);
      if (!this.#held.has(name)) this.#next(name);
    });
  }

  /** Whether `name` is held now. */
  held(name: string): boolean {
    return this.#held.has(name);
  }

  #next(name: string): void {
    const grant = this.#queues.get(name)?.shift();
    if (grant === undefined) return;
    this.#held.add(name); // taken now, granted in a moment
    queueMicrotask(grant);
  }
}
