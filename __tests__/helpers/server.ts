import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express5 from 'express';
import express4 from 'express4';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** Both supported Express majors, for `describe.each`. */
export const EXPRESS_VERSIONS = [
  ['Express 5', express5],
  ['Express 4', express4],
] as const;

export interface TestServer {
  readonly server: http.Server;
  readonly url: string;
  close(): Promise<void>;
}

/** Starts `handler` on 127.0.0.1 on a free port (or on `port`: a server started again where it was). */
export async function startServer(handler: http.RequestListener, port = 0): Promise<TestServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface OpenStreamOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Keep every event and byte (default). False keeps only counts and the last event, for big runs. */
  retain?: boolean;
}

/** A raw HTTP client on an event stream, parsed by eventsource-parser. */
export interface TestStream {
  readonly response: http.IncomingMessage;
  readonly events: EventSourceMessage[];
  readonly comments: string[];
  readonly retries: number[];
  /** Events received so far (also when `retain` is false). */
  readonly count: () => number;
  readonly lastEvent: () => EventSourceMessage | undefined;
  /** Every byte received, as text. */
  readonly raw: () => string;
  /**
   * The id a browser would send as Last-Event-ID now, by the HTML standard: set at each dispatch
   * from the last `id:` field, even for a frame without data (which eventsource-parser does not
   * report).
   */
  readonly lastEventId: () => string | undefined;
  /** Resolves once `count` events have arrived in total. */
  waitForEvents(count: number, timeoutMs?: number): Promise<EventSourceMessage[]>;
  /** Resolves once `count` comments have arrived in total. */
  waitForComments(count: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves when the server ends the response. */
  ended: Promise<void>;
  /** Destroys the socket, as a client that vanishes. */
  destroy(): void;
}

export function openStream(url: string, options: OpenStreamOptions = {}): Promise<TestStream> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: options.method ?? 'GET',
      headers: { accept: 'text/event-stream', ...options.headers },
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (response) => {
      const events: EventSourceMessage[] = [];
      const comments: string[] = [];
      const retries: number[] = [];
      let raw = '';
      const ids = new SpecIds();
      let count = 0;
      let lastEvent: EventSourceMessage | undefined;
      const retain = options.retain ?? true;
      const waiters = new Set<() => void>();
      const notify = (): void => {
        for (const w of waiters) w();
      };
      const parser = createParser({
        onEvent: (event) => {
          count += 1;
          lastEvent = event;
          if (retain) events.push(event);
          notify();
        },
        onComment: (comment) => {
          comments.push(comment);
          notify();
        },
        onRetry: (retry) => retries.push(retry),
      });
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (retain) raw += chunk;
        ids.feed(chunk);
        parser.feed(chunk);
      });
      const ended = new Promise<void>((done) => {
        response.on('end', done);
        response.on('close', done);
      });
      ended.then(notify, notify);
      const waitFor = <T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
        new Promise<T>((done, fail) => {
          const attempt = (): boolean => {
            const value = check();
            if (value === undefined) return false;
            clearTimeout(timer);
            waiters.delete(onChange);
            done(value);
            return true;
          };
          const onChange = (): void => {
            attempt();
          };
          const timer = setTimeout(() => {
            waiters.delete(onChange);
            fail(new Error(`timed out waiting for ${what}; got ${count} events, raw: ${JSON.stringify(raw.slice(-300))}`));
          }, timeoutMs);
          if (!attempt()) waiters.add(onChange);
        });
      resolve({
        response,
        events,
        comments,
        retries,
        raw: () => raw,
        lastEventId: () => ids.lastEventId,
        count: () => count,
        lastEvent: () => lastEvent,
        ended,
        waitForEvents: (wanted, timeoutMs = 5000) =>
          waitFor(() => (count >= wanted ? events.slice() : undefined), `${wanted} events`, timeoutMs),
        waitForComments: (count, timeoutMs = 5000) =>
          waitFor(() => (comments.length >= count ? comments.slice() : undefined), `${count} comments`, timeoutMs),
        destroy: () => req.destroy(),
      });
    });
    req.end(options.body);
  });
}

/**
 * The "last event ID string" of the HTML standard's EventSource: the id buffer is set by every
 * `id` field without NUL and copied at every dispatch (a blank line), events without data
 * included. https://html.spec.whatwg.org/multipage/server-sent-events.html#dispatchMessage
 */
export class SpecIds {
  lastEventId: string | undefined;
  #buffer: string | undefined;
  /** An unfinished line (possibly ending in a CR whose LF may come in the next chunk). */
  #rest = '';

  feed(text: string): void {
    const input = this.#rest + text;
    const breaks = /\r\n|\r|\n/g;
    let start = 0;
    for (let match = breaks.exec(input); match !== null; match = breaks.exec(input)) {
      if (match[0] === '\r' && match.index === input.length - 1) break;
      this.#line(input.slice(start, match.index));
      start = breaks.lastIndex;
    }
    this.#rest = input.slice(start);
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#buffer !== undefined) this.lastEventId = this.#buffer;
      return;
    }
    if (!line.startsWith('id')) return;
    const colon = line.indexOf(':');
    if ((colon === -1 ? line : line.slice(0, colon)) !== 'id') return;
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (!value.includes('\0')) this.#buffer = value;
  }
}

/** Polls `check` until it returns true. */
export async function waitUntil(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A query parameter as a string, or `fallback` when it is absent or repeated. */
export function queryString(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

/**
 * For one test file: a function that opens streams (like `openStream`) and remembers them, all
 * destroyed after each test.
 */
export function trackStreams(): (url: string, headers?: Record<string, string>) => Promise<TestStream> {
  let open: TestStream[] = [];
  afterEach(() => {
    for (const s of open) s.destroy();
    open = [];
  });
  return async (url, headers) => {
    const s = await openStream(url, { headers });
    open.push(s);
    return s;
  };
}

/**
 * The `retry:` a shutdown with `retryJitter` sent, from a stream's raw text: checks that it is the
 * second one (after the stream's own, sent when it opened, and its `connected` event) and comes
 * before the `shutdown` event; returns its value in ms.
 */
export function shutdownRetry(raw: string): number {
  const retries = [...raw.matchAll(/^retry: (\d+)$/gm)];
  expect(retries).toHaveLength(2);
  expect(retries[1]!.index).toBeGreaterThan(raw.indexOf('event: connected'));
  expect(retries[1]!.index).toBeLessThan(raw.indexOf('event: shutdown'));
  return Number(retries[1]![1]);
}
