// The test suite of the `eventsource` npm package (EventSource/eventsource, test/tests.ts, v3/v4),
// ported case by case against its own server routes (./server.ts, under /es/) with its own
// assertions, rewritten in our own code. `OurEventSource` there is the implementation under test
// here. Changes: its routes live under /es/; its other origin (localhost vs 127.0.0.1) is another
// port of the same host; its unreachable port 9999 is a port known to be closed.
import { deferClose, expect, getCallCounter, type Case, type Env, type EventSourceLike, type MessageEventLike } from './harness';

/** The package's test/fixtures.ts. */
export const UNICODE_LINES = ['🦄 are cool. 🐾 in the snow. Allyson Felix, 🏃🏽‍♀️ 🥇 2012 London!', 'Espen ♥ Kokos'] as const;

/** What the package's tests pass as `fetch`: Node's global one in Node, none in a browser. */
const fetchOption = (env: Env): typeof fetch | undefined => (env.node ? globalThis.fetch : undefined);
const originOf = (url: string): string => new URL(url).origin;
const request = (url: string): Promise<unknown> => globalThis.fetch(url).then((res) => res.json());
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function onmessageCase(name: string, event: string): Case {
  return {
    name,
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const onError = getCallCounter({ name: 'onError' });
      const es = new env.EventSource(`${env.esBase}/counter?event=${event}`, { fetch: fetchOption(env) });
      es.addEventListener('error', onError);
      es.onmessage = onMessage;
      await onError.waitForCallCount(2);
      es.onmessage = null;
      await onError.waitForCallCount(3); // 3 disconnects
      // If `es.onmessage = null` did not work, this should be 9, since each connect emits 3 message then closes
      expect(onMessage.callCount).toBe(6);
      await deferClose(es);
    },
  };
}

function notMessageCase(name: string): Case {
  return {
    name,
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const onOpen = getCallCounter({ name: 'onOpen' });
      const es = new env.EventSource(`${env.esBase}/counter`, { fetch: fetchOption(env) });
      es.addEventListener('open', onOpen);
      es.onmessage = onMessage;
      await onOpen.waitForCallCount(3);
      es.onmessage = null;
      // `event` was never "message" (or blank), only ever `counter`
      expect(onMessage.callCount).toBe(0);
      await deferClose(es);
    },
  };
}

function redirectCase(status: number, crossOrigin: boolean): Case {
  return {
    name: `redirects: handles ${status} to ${crossOrigin ? 'different' : 'same'} origin`,
    from: 'test/tests.ts',
    oursOnly: 'it adds a header through the `fetch` init field',
    async run(_t, env) {
      const id = Math.random().toString(36).slice(2);
      const onMessage = getCallCounter({ name: 'onMessage' });
      const onOpen = getCallCounter({ name: 'onOpen' });
      const origin = originOf(env.esBase);
      const target = crossOrigin ? originOf(env.esCrossBase) : origin;
      const url = `${env.esBase}/redirect?status=${status}&id=${id}${crossOrigin ? '&cors=true' : ''}`;
      const es = new env.EventSource(url, {
        withCredentials: true,
        fetch: (dstUrl: string, init: RequestInit) => globalThis.fetch(dstUrl, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: 'Bearer foo' } }),
      });
      es.addEventListener('message', onMessage);
      es.addEventListener('open', onOpen);
      await onMessage.waitForCallCount(1);
      // URL should be the original connected URL, even after redirect
      expect(es.url).toBe(url);
      const firstMessage = onMessage.lastCall.lastArg as MessageEventLike;
      expect(firstMessage).toMatchObject({ origin: target });
      // Authorization header should not follow cross-origin redirects
      expect(JSON.parse(firstMessage.data)).toMatchObject({ origin: target, from: url, redirects: 1, auth: crossOrigin ? null : 'Bearer foo' });
      // Reconnected and received another message
      await onOpen.waitForCallCount(2);
      await onMessage.waitForCallCount(2);
      const lastMessage = onMessage.lastCall.lastArg as MessageEventLike;
      expect(lastMessage).toMatchObject({ origin: target });
      expect(JSON.parse(lastMessage.data)).toMatchObject({ origin: target, from: url, redirects: 2, auth: crossOrigin ? null : 'Bearer foo' });
      if (firstMessage.timeStamp > 0) expect(firstMessage.timeStamp).notToBe(lastMessage.timeStamp);
      await deferClose(es);
    },
  };
}

/** A fetch that answers a 200 event stream whose body is not a web ReadableStream (or is missing). */
function faultyFetchCase(name: string, body: { body?: unknown }): Case {
  return {
    name,
    from: 'test/tests.ts',
    oursOnly: 'it replaces fetch through the `fetch` init field',
    async run(_t, env) {
      const url = `${env.esBase}/`;
      const faultyFetch = (): Promise<unknown> => Promise.resolve({ ...body, redirected: false, status: 200, headers: new Headers({ 'content-type': 'text/event-stream' }), url });
      const onError = getCallCounter({ name: 'onError' });
      const es = new env.EventSource(url, { fetch: faultyFetch });
      es.addEventListener('error', onError);
      await onError.waitForCallCount(1);
      expect(onError.lastCall.lastArg).toMatchObject({
        type: 'error',
        defaultPrevented: false,
        cancelable: false,
        timeStamp: expect.any('number'),
        message: 'Invalid response body, expected a web ReadableStream',
        code: 200,
      });
      await deferClose(es);
    },
  };
}

export const EVENTSOURCE_PACKAGE_CASES: readonly Case[] = [
  {
    name: 'can connect, receive message, manually disconnect',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const es = new env.EventSource(new URL(`${env.esBase}/`));
      es.addEventListener('welcome', onMessage, false);
      await onMessage.waitForCallCount(1);
      expect(onMessage.callCount).toBe(1);
      expect(onMessage.lastCall.lastArg).toMatchObject({ data: 'Hello, world!', origin: originOf(env.esBase) });
      await deferClose(es);
    },
  },
  {
    name: '`target` on open, message and error events is the EventSource instance',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onOpen = getCallCounter({ name: 'onOpen' });
      const onMessage = getCallCounter({ name: 'onMessage' });
      const onError = getCallCounter({ name: 'onError' });
      const es = new env.EventSource(`${env.esBase}/end-after-one`);
      es.addEventListener('open', onOpen);
      es.addEventListener('progress', onMessage);
      es.addEventListener('error', onError);
      await onOpen.waitForCallCount(1);
      await onMessage.waitForCallCount(1);
      await onError.waitForCallCount(1);
      expect((onOpen.lastCall.lastArg as Event).target).toBe(es);
      expect((onMessage.lastCall.lastArg as Event).target).toBe(es);
      expect((onError.lastCall.lastArg as Event).target).toBe(es);
      await deferClose(es);
    },
  },
  {
    name: 'can connect using URL string only',
    from: 'test/tests.ts',
    async run(_t, env) {
      const es = new env.EventSource(`${env.esBase}/`);
      const onMessage = getCallCounter({ name: 'onMessage' });
      es.addEventListener('welcome', onMessage, false);
      await onMessage.waitForCallCount(1);
      await deferClose(es);
    },
  },
  {
    name: 'passes `no-store` to `fetch`, avoiding cache',
    from: 'test/tests.ts',
    oursOnly: 'it looks at what the `fetch` init field is called with',
    async run(_t, env) {
      let passedInit: RequestInit | undefined;
      const onMessage = getCallCounter({ name: 'onMessage' });
      const es = new env.EventSource(new URL(`${env.esBase}/debug`), {
        fetch: (url: string, init: RequestInit) => {
          passedInit = init;
          return globalThis.fetch(url, init);
        },
      });
      es.addEventListener('debug', onMessage, false);
      await onMessage.waitForCallCount(1);
      expect(passedInit).toMatchObject({ cache: 'no-store' });
      await deferClose(es);
    },
  },
  {
    name: 'can handle unicode data correctly',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const es = new env.EventSource(`${env.esBase}/unicode`, { fetch: fetchOption(env) });
      const messages: MessageEventLike[] = [];
      es.addEventListener('unicode', (evt) => {
        messages.push(evt as MessageEventLike);
        onMessage();
      });
      await onMessage.waitForCallCount(2);
      expect(messages[0]!.data).toBe(UNICODE_LINES[0]);
      expect(messages[1]!.data).toBe(UNICODE_LINES[1]);
      await deferClose(es);
    },
  },
  {
    name: 'can use `es.onopen` to listen for open events, nulling it unsubscribes',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onError = getCallCounter({ name: 'onError' });
      const onOpen = getCallCounter({ name: 'onOpen' });
      const es = new env.EventSource(`${env.esBase}/counter`, { fetch: fetchOption(env) });
      es.addEventListener('error', onError);
      es.onopen = onOpen;
      await onOpen.waitForCallCount(2);
      es.onopen = null;
      await onError.waitForCallCount(4); // 4 disconnects
      // If `es.onopen = null` did not work, this should be 4
      expect(onOpen.callCount).toBe(2);
      await deferClose(es);
    },
  },
  {
    name: 'can use `es.onerror` to listen for error events, nulling it unsubscribes',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onError = getCallCounter({ name: 'onError' });
      const onOpen = getCallCounter({ name: 'onOpen' });
      const es = new env.EventSource(`${env.esBase}/counter`, { fetch: fetchOption(env) });
      es.addEventListener('open', onOpen);
      es.onerror = onError;
      await onOpen.waitForCallCount(3);
      es.onerror = null;
      await onOpen.waitForCallCount(4); // 4 connects
      // If `es.onerror = null` did not work, this should be 4
      expect(onError.callCount).toBe(2);
      await deferClose(es);
    },
  },
  onmessageCase('can use `es.onmessage` to listen for explicit `message` events, nulling it unsubscribes', 'message'),
  onmessageCase('can use `es.onmessage` to listen for implicit `message` events, nulling it unsubscribes', ''),
  notMessageCase('`es.onmessage` does not fire for non-`message` events'),
  notMessageCase('`es.onmessage` does not fire for non-`message` events (the suite has it twice)'),
  {
    name: 'can redeclare `es.onopen` after initial assignment',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onError = getCallCounter({ name: 'onError' });
      const onOpen = getCallCounter({ name: 'onOpen' });
      const onOpenNew = getCallCounter({ name: 'onOpen (new)' });
      const es = new env.EventSource(`${env.esBase}/counter`, { fetch: fetchOption(env) });
      es.addEventListener('error', onError);
      es.onopen = onOpen;
      await onOpen.waitForCallCount(2);
      es.onopen = onOpenNew;
      await onError.waitForCallCount(4); // 4 disconnects
      // If `es.onopen = <new-fn>` did not work, this should be 4
      expect(onOpen.callCount).toBe(2);
      expect(onOpenNew.callCount).toBe(2);
      await deferClose(es);
    },
  },
  {
    name: 'can redeclare `es.onerror` after initial assignment',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onError = getCallCounter({ name: 'onError' });
      const onErrorNew = getCallCounter({ name: 'onError (new)' });
      const onOpen = getCallCounter({ name: 'onOpen' });
      const es = new env.EventSource(`${env.esBase}/counter`, { fetch: fetchOption(env) });
      es.addEventListener('open', onOpen);
      es.onerror = onError;
      await onOpen.waitForCallCount(3);
      es.onerror = onErrorNew;
      await onOpen.waitForCallCount(4); // 4 connects
      // If `es.onerror = <new-fn>` did not work, this should be 4
      expect(onError.callCount).toBe(2);
      expect(onErrorNew.callCount).toBe(1);
      await deferClose(es);
    },
  },
  {
    name: 'can redeclare `es.onmessage` after initial assignment',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const onMessageNew = getCallCounter({ name: 'onMessage (new)' });
      const onError = getCallCounter({ name: 'onError' });
      const es = new env.EventSource(`${env.esBase}/counter?event=message`, { fetch: fetchOption(env) });
      es.addEventListener('error', onError);
      es.onmessage = onMessage;
      await onError.waitForCallCount(2);
      es.onmessage = onMessageNew;
      await onError.waitForCallCount(3); // 3 disconnects
      expect(onMessage.callCount).toBe(6);
      expect(onMessageNew.callCount).toBe(3);
      await deferClose(es);
    },
  },
  {
    name: 'message event contains correct properties',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const es = new env.EventSource(`${env.esBase}/counter`, { fetch: fetchOption(env) });
      es.addEventListener('counter', onMessage);
      await onMessage.waitForCallCount(1);
      expect(onMessage.lastCall.lastArg).toMatchObject({
        data: 'Counter is at 1',
        type: 'counter',
        lastEventId: '1',
        origin: originOf(env.esBase),
        defaultPrevented: false,
        cancelable: false,
        timeStamp: expect.any('number'),
      });
      await deferClose(es);
    },
  },
  {
    name: 'will reconnect with last received message id if server disconnects',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const onError = getCallCounter({ name: 'onError' });
      const url = `${env.esBase}/counter`;
      const es = new env.EventSource(url, { fetch: fetchOption(env) });
      es.addEventListener('counter', onMessage);
      es.addEventListener('error', onError);
      // While still receiving messages (we receive 3 at a time before it disconnects)
      await onMessage.waitForCallCount(1);
      expect(es.readyState, 'readyState').toBe(env.EventSource.OPEN);
      // While waiting for reconnect (after 3 messages it will disconnect and reconnect)
      await onError.waitForCallCount(1);
      expect(es.readyState, 'readyState').toBe(env.EventSource.CONNECTING);
      expect(onMessage.callCount).toBe(3);
      // Will reconnect infinitely, stop at 8 messages
      await onMessage.waitForCallCount(8);
      expect(es.url).toBe(url);
      expect(onMessage.lastCall.lastArg).toMatchObject({ data: 'Counter is at 8', type: 'counter', lastEventId: '8', origin: originOf(env.esBase) });
      expect(onMessage.callCount).toBe(8);
      await deferClose(es);
    },
  },
  {
    name: 'will not reconnect after explicit `close()`',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const onError = getCallCounter({ name: 'onError' });
      const clientId = Math.random().toString(36).slice(2);
      const url = `${env.esBase}/identified?client-id=${clientId}`;
      const es = new env.EventSource(url, { fetch: fetchOption(env) });
      es.addEventListener('message', onMessage);
      es.addEventListener('error', onError);
      // Should receive a message containing the number of listeners on the given ID
      await onMessage.waitForCallCount(1);
      expect(onMessage.lastCall.lastArg).toMatchObject({ data: '1' });
      expect(es.readyState, 'readyState').toBe(env.EventSource.OPEN);
      // Explicitly disconnect. Should normally reconnect within ~250ms (server sends retry: 250)
      es.close();
      expect(es.readyState, 'readyState').toBe(env.EventSource.CLOSED);
      expect(onMessage.callCount).toBe(1);
      await sleep(500);
      expect(await request(url)).toMatchObject({ clientIdConnects: 1 });
      await sleep(500);
      expect(await request(url)).toMatchObject({ clientIdConnects: 1 });
    },
  },
  {
    name: 'will not reconnect after explicit `close()` in `onError`',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const made: { es?: EventSourceLike } = {};
      const onError = getCallCounter({ name: 'onError', onCall: () => made.es?.close() });
      const clientId = Math.random().toString(36).slice(2);
      const url = `${env.esBase}/identified?client-id=${clientId}&auto-close=true`;
      const source = new env.EventSource(url, { fetch: fetchOption(env) });
      made.es = source;
      source.addEventListener('open', () => expect(source.readyState).toBe(env.EventSource.OPEN));
      source.addEventListener('message', onMessage);
      source.addEventListener('error', onError);
      await onMessage.waitForCallCount(1);
      expect(onMessage.lastCall.lastArg, 'onMessage `event` argument').toMatchObject({ data: '1' });
      await onError.waitForCallCount(1);
      expect(source.readyState, 'readyState').toBe(env.EventSource.CLOSED);
      await sleep(500);
      expect(await request(url)).toMatchObject({ clientIdConnects: 1 });
      expect(source.readyState, 'readyState').toBe(env.EventSource.CLOSED);
      await sleep(500);
      expect(await request(url)).toMatchObject({ clientIdConnects: 1 });
      expect(source.readyState, 'readyState').toBe(env.EventSource.CLOSED);
    },
  },
  {
    name: 'will have correct ready state throughout lifecycle',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const onOpen = getCallCounter({ name: 'onOpen' });
      const onError = getCallCounter({ name: 'onError' });
      const es = new env.EventSource(`${env.esBase}/slow-connect`, { fetch: fetchOption(env) });
      es.addEventListener('message', onMessage);
      es.addEventListener('open', onOpen);
      es.addEventListener('error', onError);
      expect(es.readyState, 'readyState').toBe(env.EventSource.CONNECTING);
      await onOpen.waitForCallCount(1);
      expect(es.readyState, 'readyState').toBe(env.EventSource.OPEN);
      await onError.waitForCallCount(1);
      expect(es.readyState, 'readyState').toBe(env.EventSource.CONNECTING);
      es.close();
      expect(es.readyState, 'readyState').toBe(env.EventSource.CLOSED);
    },
  },
  {
    name: 'will close stream on HTTP 204',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const onError = getCallCounter({ name: 'onError' });
      const es = new env.EventSource(`${env.esBase}/end-after-one`, { fetch: fetchOption(env) });
      es.addEventListener('progress', onMessage);
      es.addEventListener('error', onError);
      // First disconnect, then reconnect and given a 204
      await onError.waitForCallCount(2);
      // Only the first connect should have given a message
      await onMessage.waitForCallCount(1);
      expect(onMessage.callCount).toBe(1);
      expect(onMessage.lastCall.lastArg).toMatchObject({ data: '100%', type: 'progress', lastEventId: 'prct-100' });
      expect(es.readyState, 'readyState').toBe(env.EventSource.CLOSED);
      await deferClose(es);
    },
  },
  {
    // The suite's note: Chrome and Safari toString() the value; the spec (and Firefox) throw.
    name: 'throws if `url` is not a string/url',
    from: 'test/tests.ts',
    run(t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      try {
        const es = new env.EventSource(123 as unknown as string, { fetch: fetchOption(env) });
        es.addEventListener('message', onMessage);
        es.close();
      } catch (err) {
        expect(err instanceof DOMException).toBe(true);
        expect((err as Error).message).toBe('An invalid or illegal string was specified');
        t.done();
        return;
      }
      throw new Error('Expected invalid URL to throw');
    },
  },
  {
    name: 'can request cross-origin',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onMessage = getCallCounter({ name: 'onMessage' });
      const es = new env.EventSource(new URL(`${env.esCrossBase}/cors`), { fetch: fetchOption(env) });
      es.addEventListener('origin', onMessage);
      await onMessage.waitForCallCount(1);
      expect(onMessage.callCount).toBe(1);
      const lastMessage = onMessage.lastCall.lastArg;
      expect(lastMessage).toMatchObject({ type: 'origin' });
      if (!env.node) expect(lastMessage).toMatchObject({ data: originOf(env.esBase) });
      else expect(lastMessage).toMatchObject({ data: '<none>' });
      await deferClose(es);
    },
  },
  ...[301, 302, 307, 308].map((status) => redirectCase(status, false)),
  ...[301, 302, 307, 308].map((status) => redirectCase(status, true)),
  {
    name: 'can use the `withCredentials` option to control cookies being sent/not sent cross-origin',
    from: 'test/tests.ts',
    browserOnly: 'the suite runs it in browsers only',
    oursOnly: 'it looks at what the `fetch` init field is called with',
    async run(_t, env) {
      const corsOrigin = originOf(env.esCrossBase);
      const open = async (init: Record<string, unknown>): Promise<void> => {
        const onOpen = getCallCounter({ name: 'onOpen' });
        const es = new env.EventSource(`${corsOrigin}/es/authed`, init);
        es.addEventListener('open', onOpen);
        await onOpen.waitForCallCount(1);
        await deferClose(es);
      };
      await open({
        withCredentials: true,
        fetch: (url: string, init: RequestInit) => {
          expect(init).toMatchObject({ credentials: 'include' });
          return globalThis.fetch(url, init);
        },
      });
      await open({
        withCredentials: false,
        fetch: (url: string, init: RequestInit) => {
          expect(init).toMatchObject({ credentials: 'same-origin' });
          return globalThis.fetch(url, init);
        },
      });
      await open({});
    },
  },
  faultyFetchCase('throws on `fetch()` that does not return web-stream', { body: 'not a stream' }),
  faultyFetchCase('throws on `fetch()` that does not return a body', {}),
  {
    name: '[NON-SPEC] message event contains extended properties (failed connection)',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onError = getCallCounter({ name: 'onError' });
      const es = new env.EventSource(`${env.closedOrigin}/should-not-connect`, { fetch: fetchOption(env) });
      es.addEventListener('error', onError);
      await onError.waitForCallCount(1);
      expect(onError.lastCall.lastArg).toMatchObject({
        type: 'error',
        defaultPrevented: false,
        cancelable: false,
        timeStamp: expect.any('number'),
        // Node, Deno, Bun, Chromium, Webkit, Firefox _ALL_ have different messages
        message: expect.stringMatching(/fetch failed|failed to fetch|load failed|attempting to fetch|connection refused|unable to connect/i),
        code: undefined,
      });
      await deferClose(es);
    },
  },
  {
    name: '[NON-SPEC] message event contains extended properties (invalid http response)',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onError = getCallCounter({ name: 'onError' });
      const es = new env.EventSource(`${env.esBase}/end-after-one`, { fetch: fetchOption(env) });
      es.addEventListener('error', onError);
      await onError.waitForCallCount(2);
      expect(onError.lastCall.lastArg).toMatchObject({
        type: 'error',
        defaultPrevented: false,
        cancelable: false,
        timeStamp: expect.any('number'),
        message: 'Server sent HTTP 204, not reconnecting',
        code: 204,
      });
      await deferClose(es);
    },
  },
  {
    name: 'has CONNECTING constant',
    from: 'test/tests.ts',
    async run(_t, env) {
      const es = new env.EventSource(`${env.esBase}/`);
      expect(es.readyState).toBe(env.EventSource.CONNECTING);
      expect(es.CONNECTING).toBe(0);
      expect(env.EventSource.CONNECTING).toBe(0);
      await deferClose(es);
    },
  },
  {
    name: 'has OPEN constant',
    from: 'test/tests.ts',
    async run(_t, env) {
      const onOpen = getCallCounter({ name: 'onOpen' });
      const es = new env.EventSource(`${env.esBase}/`);
      es.onopen = onOpen;
      await onOpen.waitForCallCount(1);
      expect(es.readyState).toBe(env.EventSource.OPEN);
      expect(es.OPEN).toBe(1);
      expect(env.EventSource.OPEN).toBe(1);
      await deferClose(es);
    },
  },
  {
    name: 'has CLOSED constant',
    from: 'test/tests.ts',
    async run(_t, env) {
      const es = new env.EventSource(`${env.esBase}/`);
      es.close();
      expect(es.readyState).toBe(env.EventSource.CLOSED);
      expect(es.CLOSED).toBe(2);
      expect(env.EventSource.CLOSED).toBe(2);
      await deferClose(es);
    },
  },
];
