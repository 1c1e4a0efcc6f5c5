// The reconnect policy of express-sse-hub/client, in Node, over real sockets to real servers:
// a silent connection noticed (the heartbeat the server announces, or heartbeatTimeout), a crowd
// refused together coming back spread out, Retry-After as a floor the backoff still applies to.
// Where time is the subject the clock is fake (useFakeClock): the client's and the server's timers
// run when the test moves time, so a busy machine cannot change what is measured.
// The arithmetic of the delays (backoffDelay, refusalDelay, retryAfterMs) is in backoff.test.ts.
import http from 'node:http';
import express from 'express';
import { sse } from 'express-sse-hub';
import { EventSource, type SseErrorEvent } from '../src/client';
import { DEFAULT_RETRY_MS, RETRY_AFTER_SPREAD } from '../src/client/backoff';
import { HEARTBEATS_PER_TIMEOUT } from '../src/client/event-source';
import { recordRequests, settle, trackSources, useFakeClock, type SeenRequest } from './helpers/client';
import { FaultProxy } from './helpers/proxy';
import { openStream, startServer, type TestServer, type TestStream } from './helpers/server';

const open = trackSources();
let servers: TestServer[] = [];
let proxies: FaultProxy[] = [];
let streams: TestStream[] = [];

afterEach(async () => {
  jest.useRealTimers();
  for (const s of streams) s.destroy();
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  proxies = [];
  streams = [];
});

async function serve(app: http.RequestListener): Promise<string> {
  const server = await startServer(app);
  servers.push(server);
  return server.url;
}

/** Every `error` event of `source`, as they come. */
function errors(source: EventSource): SseErrorEvent[] {
  const seen: SseErrorEvent[] = [];
  source.addEventListener('error', (event) => seen.push(event));
  return seen;
}

describe('a connection that goes silent (a relay stops forwarding, the socket stays open)', () => {
  const HEARTBEAT = 1000;
  const BOUND = HEARTBEATS_PER_TIMEOUT * HEARTBEAT;

  /** The package's own server (sse({ heartbeat: 1000 })) behind a TCP proxy the test can freeze. */
  async function silentRelay(): Promise<{ url: string; proxy: FaultProxy; seen: SeenRequest[] }> {
    const seen: SeenRequest[] = [];
    const app = express();
    let n = 0;
    app.get('/events', recordRequests(seen), sse({ heartbeat: HEARTBEAT, retry: 500 }), (_req, res) => {
      n += 1;
      res.sse.send(`hello ${n}`, { id: `é-${n}` });
    });
    const target = new URL(await serve(app));
    const proxy = await FaultProxy.start({ host: target.hostname, port: Number(target.port) });
    proxies.push(proxy);
    return { url: `${proxy.httpUrl}/events`, proxy, seen };
  }

  /** Moves fake time by `ms`, then lets the bytes that moved reach the client. */
  async function advance(ms: number, proxy: FaultProxy): Promise<void> {
    const before = proxy.bytesDown;
    await jest.advanceTimersByTimeAsync(ms);
    // A heartbeat went out during the step: wait until the proxy passed it on, then until the
    // client's read of it ran (a few turns of the event loop).
    await settle(() => proxy.bytesDown > before, 'the heartbeat to pass the proxy');
    for (let i = 0; i < 50; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  it(`is taken for dead after ${HEARTBEATS_PER_TIMEOUT} announced heartbeat intervals, and re-established with Last-Event-ID, on default options`, async () => {
    useFakeClock();
    const { url, proxy, seen } = await silentRelay();
    const source = open(url);
    const failures = errors(source);
    const messages: string[] = [];
    source.addEventListener('message', (event) => messages.push(event.data));
    await settle(() => messages.length === 1, 'the first event');
    // Heartbeats keep a quiet stream alive: twice the bound passes without a reconnect.
    for (let t = 0; t < 2 * BOUND; t += HEARTBEAT) await advance(HEARTBEAT, proxy);
    expect([failures.length, seen.length, source.readyState]).toEqual([0, 1, EventSource.OPEN]);
    // The relay goes silent: bytes are held, the socket stays open.
    proxy.pause();
    await jest.advanceTimersByTimeAsync(BOUND - 1);
    expect(failures).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(failures.map((e) => [e.status, e.message, e.reconnectIn])).toEqual([
      [undefined, `express-sse-hub: no byte for ${BOUND} ms: the connection is taken for dead`, 500],
    ]);
    expect(source.readyState).toBe(EventSource.CONNECTING);
    proxy.resume();
    await jest.advanceTimersByTimeAsync(500);
    await settle(() => messages.length === 2, 'the event of the new connection');
    expect(seen.map((r) => r.headers['last-event-id'])).toEqual([undefined, Buffer.from('é-1').toString('latin1')]);
    expect(messages).toEqual(['hello 1', 'hello 2']);
  });

  /** A server that announces no heartbeat: one event, then silence on an open socket. */
  async function quietServer(): Promise<{ url: string; requests: () => number }> {
    let requests = 0;
    const url = await serve((_req, res) => {
      requests += 1;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 200\ndata: once\n\n');
    });
    return { url, requests: () => requests };
  }

  it('is taken for dead after heartbeatTimeout ms without a byte on a server that announces nothing', async () => {
    useFakeClock();
    const { url, requests } = await quietServer();
    const source = open(url, { heartbeatTimeout: 5000 });
    const failures = errors(source);
    await settle(() => source.readyState === EventSource.OPEN, 'the stream to open');
    await jest.advanceTimersByTimeAsync(4999);
    expect(failures).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(failures.map((e) => e.reconnectIn)).toEqual([200]);
    await jest.advanceTimersByTimeAsync(200);
    await settle(() => requests() === 2, 'the reconnect');
  });

  it.each([
    ['without heartbeatTimeout, on a server that announces nothing', {}],
    ['with heartbeatTimeout: 0', { heartbeatTimeout: 0 }],
  ])('is left alone %s (as EventSource does)', async (_name, init) => {
    useFakeClock();
    const { url, requests } = await quietServer();
    const source = open(url, init);
    const failures = errors(source);
    await settle(() => source.readyState === EventSource.OPEN, 'the stream to open');
    await jest.advanceTimersByTimeAsync(60 * 60 * 1000);
    expect([failures.length, requests(), source.readyState]).toEqual([0, 1, EventSource.OPEN]);
  });

  it('lets heartbeatTimeout: 0 turn off the watchdog of an announcing server', async () => {
    useFakeClock();
    const { url, proxy } = await silentRelay();
    const source = open(url, { heartbeatTimeout: 0 });
    const failures = errors(source);
    await settle(() => source.readyState === EventSource.OPEN, 'the stream to open');
    proxy.pause();
    await jest.advanceTimersByTimeAsync(10 * BOUND);
    expect([failures.length, source.readyState]).toEqual([0, EventSource.OPEN]);
  });

  it.each([-1, Number.NaN, 2 ** 31, '1000'])('refuses heartbeatTimeout: %p with a TypeError naming it', (value) => {
    expect(() => new EventSource('http://127.0.0.1:9/', { heartbeatTimeout: value as number })).toThrow(
      `express-sse-hub: heartbeatTimeout must be a number of ms from 0 to 2147483647, got ${String(value)}`,
    );
  });
});

describe('clients refused together (503, Retry-After: 10)', () => {
  const CLIENTS = 30;
  const WAIT = 10_000;

  it('come back spread over a window after Retry-After at least a quarter of it wide, never earlier, attempt after attempt', async () => {
    useFakeClock();
    const app = express();
    app.get('/events', sse({ maxConnections: 1, retryAfter: WAIT / 1000 }), () => undefined);
    const url = `${await serve(app)}/events`;
    // The one place is taken.
    streams.push(await openStream(url));
    const attempts: { client: number; at: number }[] = [];
    const refused: { client: number; at: number }[] = [];
    for (let client = 0; client < CLIENTS; client += 1) {
      const source = open(url, {
        fetch: (input, init) => {
          attempts.push({ client, at: Date.now() });
          return fetch(input, init);
        },
      });
      source.addEventListener('error', (event) => {
        expect(event.status).toBe(503);
        refused.push({ client, at: Date.now() });
      });
    }
    for (const round of [1, 2]) {
      await settle(() => refused.length === CLIENTS * round, `refusal ${round} of every client`);
      // (Refusals may arrive while fake time moves: each client's floor counts from its own.)
      const since = new Map(refused.slice(-CLIENTS).map((r) => [r.client, r.at]));
      const first = Math.min(...since.values());
      const last = Math.max(...since.values());
      await jest.advanceTimersByTimeAsync(first + WAIT - 1 - Date.now());
      expect(attempts).toHaveLength(CLIENTS * round); // Retry-After is a floor
      await jest.advanceTimersByTimeAsync(last + WAIT * (1 + RETRY_AFTER_SPREAD) + 1 - Date.now());
      const next = attempts.slice(CLIENTS * round);
      expect(next).toHaveLength(CLIENTS);
      for (const { client, at } of next) expect(at - since.get(client)!).toBeGreaterThanOrEqual(WAIT);
      const times = next.map((a) => a.at);
      // Uniform over 5 s, 30 draws: a range under 2.5 s has a chance of about 1 in 18 million.
      expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(WAIT / 4);
    }
  });
});

describe.each([
  ['Retry-After: 0 (the server option retryAfter: 0)', () => '0'],
  ['an HTTP-date in the past', () => new Date(Date.now() - 60_000).toUTCString()],
])('a refusal with %s', (_name, header) => {
  it(`still waits the backoff (at least the ${DEFAULT_RETRY_MS} ms reconnection time), instead of hammering the server`, async () => {
    const seen: SeenRequest[] = [];
    const url = await serve(
      express().get('/events', recordRequests(seen), (_req, res) => {
        res.status(503).set('Retry-After', header()).end();
      }),
    );
    const source = open(`${url}/events`);
    const failures = errors(source);
    await settle(() => failures.length === 1, 'the refusal');
    expect(failures[0]!.reconnectIn).toBeGreaterThanOrEqual(DEFAULT_RETRY_MS);
    // However slow the machine, no second attempt comes sooner than the backoff.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(seen).toHaveLength(1);
  });
});
