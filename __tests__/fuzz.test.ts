// Wire-format fuzzing: arbitrary data, event names, ids and retry values go through res.sse.send()
// and channel.broadcast() on a real connection and come back through eventsource-parser. Each
// call either throws a TypeError and writes nothing, or the client gets exactly one event whose
// data is what was sent (line breaks as LF; lone surrogates as U+FFFD, as UTF-8 has no other
// way) and whose fields are exactly those given: never an extra event or field.
//
// FUZZ_RUNS sets the cases per property (default 5 000: 10 000 per run over both properties).
import fc from 'fast-check';
import express, { type Response } from 'express';
import { ChannelRegistry, sse, type Channel } from 'express-sse-hub';
import { openStream, startServer, waitUntil, type TestServer, type TestStream } from './helpers/server';

const RUNS = Number(process.env.FUZZ_RUNS ?? 5000);
jest.setTimeout(180_000);

// Text a hostile or careless producer might send: every kind of line break, NUL, BOM, lone
// surrogates of both halves, field-like prefixes, astral characters, and arbitrary code points.
const piece = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  { weight: 3, arbitrary: fc.constantFrom('\r', '\n', '\r\n', '\n\r', '\r\r\n', '\0', '\uFEFF', ' ', ':', 'data:', 'event: x', 'id: 1', 'retry: 5', '\u2028', '😀') },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 70_000 }).map((n) => 'x'.repeat(n)) },
);
const text = fc.array(piece, { maxLength: 12 }).map((parts) => parts.join(''));
const eventName = fc.option(fc.oneof(fc.constantFrom('message', 'update', 'a b', ' lead', 'ünï', '😀'), text), { nil: undefined });
const id = fc.option(fc.oneof(text, fc.integer(), fc.double()), { nil: undefined });
const retry = fc.option(fc.oneof(fc.nat(), fc.integer({ min: -10, max: 10 }), fc.double()), { nil: undefined });

const LINE_BREAKS = /\r\n|\r|\n/g;
const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** What the spec says the client sees as data: LF line breaks, U+FFFD for lone surrogates. */
function asReceived(data: string): string {
  return data.replace(LONE_SURROGATES, '\uFFFD').replace(LINE_BREAKS, '\n');
}

function isBadName(value: string): boolean {
  return /[\r\n]/.test(value) || new RegExp(LONE_SURROGATES.source).test(value);
}

/** The documented contract of send()/broadcast(): which calls must throw. */
function expectedError(fields: { event?: unknown; id?: unknown; retry?: unknown }): string | undefined {
  const { event, id, retry: r } = fields;
  if (event !== undefined && (typeof event !== 'string' || event === '' || isBadName(event))) return 'ERR_SSE_INVALID_EVENT';
  if (id !== undefined && !(typeof id === 'number' && Number.isFinite(id)) && (typeof id !== 'string' || isBadName(id) || id.includes('\0'))) {
    return 'ERR_SSE_INVALID_ID';
  }
  if (r !== undefined && !(Number.isSafeInteger(r) && (r as number) >= 0)) return 'ERR_SSE_INVALID_RETRY';
  return undefined;
}

let server: TestServer | undefined;
let client: TestStream | undefined;
afterEach(async () => {
  client?.destroy();
  await server?.close();
});

/**
 * Waits for the event after the `before`-th, and checks it is the only new one. (The client keeps
 * only the last event: thousands of long ones would not fit in memory.)
 */
async function nextEvent(stream: TestStream, before: number): Promise<unknown> {
  await stream.waitForEvents(before + 1);
  await new Promise((resolve) => setImmediate(resolve));
  expect(stream.count()).toBe(before + 1);
  return stream.lastEvent();
}

/** After a call that threw: the next event must be this marker, whole, with nothing before it. */
async function expectNothingWritten(stream: TestStream, sendMarker: () => Promise<void> | void, n: number): Promise<void> {
  const before = stream.count();
  await sendMarker();
  expect(await nextEvent(stream, before)).toEqual({ event: 'marker', id: `m${n}`, data: `marker ${n}` });
}

describe('res.sse.send() under fuzzing', () => {
  it(`sends exactly what it was given, or throws and writes nothing (${RUNS} cases)`, async () => {
    let res: Response | undefined;
    const app = express();
    app.get('/events', sse({ heartbeat: false }), (_req, r) => {
      res = r;
    });
    server = await startServer(app);
    client = await openStream(`${server.url}/events`, { retain: false });
    await waitUntil(() => res !== undefined, 'the stream');
    const stream = client;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(text, eventName, id, retry, async (data, event, eventId, retryMs) => {
        n += 1;
        const options = { event, id: eventId, retry: retryMs };
        const code = expectedError(options);
        const retriesBefore = stream.retries.length;
        if (code !== undefined) {
          expect(() => res!.sse.send(data, options)).toThrow(expect.objectContaining({ name: 'TypeError', code }) as Error);
          await expectNothingWritten(stream, () => void res!.sse.send(`marker ${n}`, { event: 'marker', id: `m${n}` }), n);
          return;
        }
        const before = stream.count();
        res!.sse.send(data, options);
        expect(await nextEvent(stream, before)).toEqual({
          data: asReceived(data),
          event,
          id: eventId === undefined ? undefined : String(eventId),
        });
        // (-0 goes out as 0.)
        if (retryMs !== undefined) expect(stream.retries.slice(retriesBefore)).toEqual([retryMs + 0]);
      }),
      { numRuns: RUNS },
    );
    // Nothing arrived that no call sent.
    expect(stream.count()).toBe(n);
  });
});

describe('channel.broadcast() under fuzzing', () => {
  it(`delivers exactly what was broadcast, or rejects and delivers nothing (${RUNS} cases)`, async () => {
    // Without history, so the caller's ids go on the wire as they are (with history an id is the
    // event's position; serializer.test.ts and history.test.ts cover those).
    const registry = new ChannelRegistry();
    const channel: Channel = registry.channel('fuzz');
    const app = express();
    app.get('/events', sse({ heartbeat: false }), (_req, res) => channel.subscribe(res));
    server = await startServer(app);
    client = await openStream(`${server.url}/events`, { retain: false });
    await waitUntil(() => channel.size === 1, 'subscribed');
    const stream = client;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(text, eventName, id, async (data, event, eventId) => {
        n += 1;
        const options = { event, id: eventId };
        const code = expectedError(options);
        if (code !== undefined) {
          await expect(channel.broadcast(data, options)).rejects.toMatchObject({ name: 'TypeError', code });
          await expectNothingWritten(stream, () => channel.broadcast(`marker ${n}`, { event: 'marker', id: `m${n}` }).then(() => undefined), n);
          return;
        }
        const before = stream.count();
        const result = await channel.broadcast(data, options);
        expect(result).toEqual({ id: eventId === undefined ? undefined : String(eventId), delivered: 1 });
        expect(await nextEvent(stream, before)).toEqual({
          data: asReceived(data),
          event,
          id: eventId === undefined ? undefined : String(eventId),
        });
      }),
      { numRuns: RUNS },
    );
    expect(stream.count()).toBe(n);
    await registry.close();
  });
});
