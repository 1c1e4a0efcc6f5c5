import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { build } from 'esbuild';
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { ChannelRegistry, MemoryAdapter, sse } from 'express-sse-hub';
import type { Adapter } from 'express-sse-hub/adapter';
import { durableStreams } from 'express-sse-hub/durable-streams';
import { collectMetrics } from 'express-sse-hub/metrics';
import { Registry as MetricsRegistry } from 'prom-client';
import { randomCatFact, randomEvent, tokenStream, uiMessageChunks } from './feeds';

export const PUBLIC_DIR = path.join(__dirname, '..', 'public');
/** The browser client as `npm run build` bundles it (ESM), served to the page as /client.js. */
export const CLIENT_FILE = path.join(__dirname, '..', 'dist', 'client', 'index.mjs');
/** The page's Durable Streams panel (the AI SDK transport), bundled by esbuild when first asked for as /durable.js. */
export const DURABLE_PAGE = path.join(__dirname, 'page', 'durable.mjs');

/** Bundles a page script and what it imports for the browser. */
async function bundlePage(entry: string): Promise<string> {
  const result = await build({ entryPoints: [entry], bundle: true, format: 'esm', target: 'es2022', platform: 'browser', minify: true, write: false, logLevel: 'silent' });
  return result.outputFiles[0]!.text;
}
/** The one bearer token the /private routes accept: a demo's stand-in for a real access token. */
export const DEMO_TOKEN = 'demo-token';
/** Seconds a client refused by /private/solo is asked to wait (Retry-After). */
export const SOLO_RETRY_AFTER = 3;

/** The channel a bare /subscribe joins and a POST /generateEvent without `channel` reaches. */
export const DEFAULT_CHANNEL = 'news';
/** Emits `current-date` every `clockIntervalMs`. */
export const CLOCK_CHANNEL = 'clock';
const PRESENCE_CHANNEL = 'presence';
/**
 * The channels a client may name. The demo is public: a channel per made-up name (each with a
 * log for Last-Event-ID) would let anyone grow the heap until it crashes.
 */
export const PUBLIC_CHANNELS: readonly string[] = [DEFAULT_CHANNEL, 'sport'];
/** Names the server alone sends on: they have their own message when a client names them. */
const RESERVED_CHANNELS: Readonly<Record<string, string>> = {
  [PRESENCE_CHANNEL]: 'every stream gets the head count by itself',
  [CLOCK_CHANNEL]: 'the server ticks it; subscribe to it, but only the server broadcasts there',
};
/** Milliseconds presence changes are gathered into one `presence` event. */
export const PRESENCE_COALESCE_MS = 250;
/** A Last-Event-ID the demo accepts: one line of printable ASCII, as this package's ids are. */
const LAST_EVENT_ID = /^[\x20-\x7e]{0,512}$/;
/** Milliseconds over which a shutdown spreads its clients' reconnections (`retry:`). */
export const SHUTDOWN_RETRY_JITTER_MS = 5000;
/** Events of the random-events stream before it ends by itself (the last seed's demo). */
export const RANDOM_EVENTS_TOTAL = 30;
/** Channel and event names the demo accepts: short tokens. */
const TOKEN = /^[A-Za-z0-9_-]{1,32}$/;
const BODY_LIMIT = '8kb';

export interface DemoOptions {
  /** Where channels live; pass one built on a Redis adapter to share them between processes. */
  readonly registry?: ChannelRegistry;
  /**
   * The registry's adapter: Durable Streams (/v1/stream) live there too, and runs are read
   * through it. @default a new MemoryAdapter (also the default registry's)
   */
  readonly adapter?: Adapter;
  /** Rate limit of /v1/stream per client IP (every method). @default { windowMs: 600000, limit: 10000 } (a full conformance run makes about 3 700 requests) */
  readonly durableLimit?: { readonly windowMs: number; readonly limit: number };
  /** Milliseconds between `current-date` events. @default 5000 */
  readonly clockIntervalMs?: number;
  /** Milliseconds between streamed tokens on /ai/stream, unless `?pace=` says otherwise. @default 60 */
  readonly tokenPaceMs?: number;
  /** Milliseconds between random events on average, unless `?pace=` says otherwise. @default 700 */
  readonly randomPaceMs?: number;
  /**
   * Rate limit of /generateEvent (GET and POST together) per client IP.
   * @default { windowMs: 60000, limit: 60 }
   */
  readonly generateEventLimit?: { readonly windowMs: number; readonly limit: number };
  /**
   * Rate limit of `POST /ai/runs` per client IP.
   * @default { windowMs: 60000, limit: 20 }
   */
  readonly runLimit?: { readonly windowMs: number; readonly limit: number };
  /**
   * Express's `trust proxy` setting (the server reads TRUST_PROXY): behind nginx, `1` or
   * `'loopback'`, so `req.ip` (and every per-IP limit) is the client's, not the proxy's.
   * @default false
   */
  readonly trustProxy?: boolean | number | string;
  /** Stream limits of each stream route: in all, and per client IP. @default { max: 10000, perIp: 50 } */
  readonly streamLimits?: { readonly max: number; readonly perIp: number };
}

/** Most runs one demo process generates at once; one more is answered 503. */
export const MAX_RUNS = 100;

/** Live counters of the demo, for tests and curiosity. */
export interface DemoMetrics {
  /** Token streams currently generating. */
  generating: number;
  /** Tokens produced in total. */
  tokens: number;
  /** Random-event streams currently running. */
  randomStreams: number;
}

export interface Demo {
  readonly app: Express;
  readonly registry: ChannelRegistry;
  readonly metrics: DemoMetrics;
  /** The prom-client registry behind GET /metrics. */
  readonly prometheus: MetricsRegistry;
  /**
   * Stops the clock and ends every stream however it was opened (channels, random events, token
   * streams): each gets a `shutdown` event, their signals abort, stragglers are reset after 1 s.
   */
  close(): Promise<void>;
}

function paceFrom(req: Request, fallback: number): number {
  const pace = Number(req.query.pace);
  return Number.isFinite(pace) && pace >= 1 && pace <= 5000 ? Math.round(pace) : fallback;
}

function badRequest(res: Response, status: number, error: string): void {
  res.status(status).json({ error });
}

/** Parses ?channels=a,b into validated names (400 before any stream byte if one is bad). */
const channelList: RequestHandler = (req, res, next) => {
  const raw = req.query.channels;
  if (raw !== undefined && typeof raw !== 'string') {
    badRequest(res, 400, 'channels must be one comma-separated list');
    return;
  }
  const names = raw === undefined || raw === '' ? [DEFAULT_CHANNEL, CLOCK_CHANNEL] : raw.split(',');
  if (names.includes(PRESENCE_CHANNEL)) {
    badRequest(res, 400, `channels: "${PRESENCE_CHANNEL}" is reserved (${RESERVED_CHANNELS[PRESENCE_CHANNEL]})`);
    return;
  }
  const bad = names.find((n) => !TOKEN.test(n));
  if (bad !== undefined || names.length > 10) {
    badRequest(res, 400, `channels must be 1 to 10 names of letters, digits, "-" or "_" (at most 32 each); got ${JSON.stringify(raw)}`);
    return;
  }
  const unknown = names.find((n) => n !== CLOCK_CHANNEL && !PUBLIC_CHANNELS.includes(n));
  if (unknown !== undefined) {
    badRequest(res, 400, `channels: no channel "${unknown}" here; this demo has ${[...PUBLIC_CHANNELS, CLOCK_CHANNEL].join(', ')}`);
    return;
  }
  res.locals.channels = names;
  next();
};

/** 400 for a Last-Event-ID (header or ?lastEventId=) that no event of this server could have had. */
const lastEventIdCheck: RequestHandler = (req, res, next) => {
  const header = req.get('last-event-id');
  const query = req.query.lastEventId;
  if (query !== undefined && typeof query !== 'string') {
    badRequest(res, 400, 'lastEventId must be given once');
    return;
  }
  for (const id of [header, query]) {
    if (id !== undefined && !LAST_EVENT_ID.test(id)) {
      badRequest(res, 400, 'Last-Event-ID must be one line of printable ASCII, at most 512 characters');
      return;
    }
  }
  next();
};

/** TRUST_PROXY as Express takes it: true/false, a hop count, or addresses and names ("loopback, 10.0.0.0/8"). */
export function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}

/** Lets through requests with `Authorization: Bearer <DEMO_TOKEN>`; 401 otherwise (before any stream byte). */
const requireDemoToken: RequestHandler = (req, res, next) => {
  if (req.get('authorization') === `Bearer ${DEMO_TOKEN}`) {
    next();
    return;
  }
  res.set('WWW-Authenticate', 'Bearer');
  badRequest(res, 401, `send the header Authorization: Bearer ${DEMO_TOKEN}`);
};

/** Builds the demo: the Express app and the state behind it. Uses only the package's public API. */
export function createDemoApp(options: DemoOptions = {}): Demo {
  const adapter = options.adapter ?? new MemoryAdapter();
  const registry = options.registry ?? new ChannelRegistry({ history: 200, adapter });
  // The clock and the head count belong to this process: with a shared (Redis) registry, every
  // process would otherwise broadcast its own tick and its own count to everyone.
  const local = new ChannelRegistry();
  const clockIntervalMs = options.clockIntervalMs ?? 5000;
  const tokenPaceMs = options.tokenPaceMs ?? 60;
  const randomPaceMs = options.randomPaceMs ?? 700;
  const metrics: DemoMetrics = { generating: 0, tokens: 0, randomStreams: 0 };
  // Dates and head counts are only true now: no history, so nobody is replayed stale ones.
  const clock = local.channel(CLOCK_CHANNEL);
  const presence = local.channel(PRESENCE_CHANNEL);
  // Coalesced: 9 000 clients leaving at once make one event, not 9 000 events to everyone.
  let presenceTimer: NodeJS.Timeout | undefined;
  const announcePresence = (): void => {
    if (presenceTimer !== undefined) return;
    presenceTimer = setTimeout(() => {
      presenceTimer = undefined;
      void presence.broadcast({ count: presence.size }, { event: 'presence' });
    }, PRESENCE_COALESCE_MS);
    presenceTimer.unref();
  };

  // One timer for the whole app, not one per connection; a new subscriber gets the date at once.
  const clockTimer = setInterval(() => void clock.broadcast(new Date().toISOString(), { event: 'current-date' }), clockIntervalMs);
  const sendDate = (res: Response): void => void res.sse.send(new Date().toISOString(), { event: 'current-date' });
  clockTimer.unref();

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', options.trustProxy ?? false);
  app.use(express.static(PUBLIC_DIR));

  // The first seed's stream, on the channel registry: `connected`, then the channels asked for.
  // Connection limits: a client (IP) that opens more than 50 streams gets 429, a server with
  // 10 000 open gets 503; both before any stream byte.
  // One sse() per kind of stream, each with its own limits; close() ends all of them.
  const { max, perIp } = options.streamLimits ?? { max: 10_000, perIp: 50 };
  const subscribeStreams = sse({ retry: 2000, maxConnections: max, maxConnectionsPerKey: perIp });
  // Every stream route has limits: without them one IP held 5 000 random-event streams, then
  // the process ran out of file descriptors and even GET / failed.
  const streamsOfRandomEvents = sse({ maxConnections: max, maxConnectionsPerKey: perIp });
  const tokenStreams = sse({ maxConnections: max, maxConnectionsPerKey: perIp });
  const subscribeTo: RequestHandler = (_req, res) => {
    const names = res.locals.channels as string[];
    // No id here: the subscription below tells the client its position in the channels itself
    // (an id-only frame), and a reconnecting client keeps its own.
    res.sse.send('You are now subscribed!', { event: 'connected' });
    const shared = names.filter((n) => n !== CLOCK_CHANNEL);
    if (shared.length > 0) registry.subscribe(res, shared);
    local.subscribe(res, names.includes(CLOCK_CHANNEL) ? [CLOCK_CHANNEL, PRESENCE_CHANNEL] : [PRESENCE_CHANNEL]);
    // The time now, not at the next tick (up to clockIntervalMs away).
    if (names.includes(CLOCK_CHANNEL)) sendDate(res);
    announcePresence();
    res.sse.signal.addEventListener('abort', announcePresence, { once: true });
  };
  app.get('/subscribe', channelList, lastEventIdCheck, subscribeStreams, subscribeTo);

  // The same stream behind a bearer token, which EventSource cannot send and the package's browser
  // client (express-sse-hub/client, served below as /client.js) sends as a header: the page uses it.
  app.get('/private/subscribe', requireDemoToken, channelList, lastEventIdCheck, subscribeStreams, subscribeTo);

  // One stream per client at a time: a second one gets 429 with Retry-After, and the browser
  // client waits that long and tries again (EventSource would give up for good).
  const soloStreams = sse({ maxConnections: max, maxConnectionsPerKey: 1, retryAfter: SOLO_RETRY_AFTER });
  app.get('/private/solo', requireDemoToken, soloStreams, (_req, res) => {
    res.sse.send('You hold the one stream a client may have here.', { event: 'connected' });
    local.subscribe(res, [CLOCK_CHANNEL]);
    sendDate(res);
  });

  app.get('/client.js', (_req, res, next) => {
    res.sendFile(CLIENT_FILE, { headers: { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' } }, (error?: Error) => {
      if (error !== undefined && !res.headersSent) {
        res.status(500).type('text/plain').send('express-sse-hub: dist/client/index.mjs is missing; run `npm run build` first');
      } else if (error !== undefined) next(error);
    });
  });

  // Broadcast from anyone to a channel's subscribers (the last seed's second demo).
  // Anyone may broadcast here, so anyone could flood every subscriber: a per-IP rate limit
  // (express-rate-limit; 429 with RateLimit and Retry-After headers beyond it).
  const { windowMs, limit } = options.generateEventLimit ?? { windowMs: 60_000, limit: 60 };
  const generateLimit = rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    message: { error: `too many events: at most ${limit} per ${Math.round(windowMs / 1000)} s per client; retry later` },
  });
  app.post('/generateEvent', generateLimit, express.json({ limit: BODY_LIMIT }), async (req, res) => {
    if (!req.is('application/json')) {
      badRequest(res, 415, 'send a JSON body with Content-Type: application/json');
      return;
    }
    const body: unknown = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      badRequest(res, 400, 'the body must be a JSON object { channel?, event?, data? }');
      return;
    }
    const { channel = DEFAULT_CHANNEL, event, data = '' } = body as Record<string, unknown>;
    if (typeof channel === 'string' && Object.hasOwn(RESERVED_CHANNELS, channel)) {
      badRequest(res, 400, `channel "${channel}" is reserved: ${RESERVED_CHANNELS[channel]}`);
      return;
    }
    if (typeof channel !== 'string' || !TOKEN.test(channel)) {
      badRequest(res, 400, `channel must be a name of letters, digits, "-" or "_" (at most 32); got ${JSON.stringify(channel)}`);
      return;
    }
    if (!PUBLIC_CHANNELS.includes(channel)) {
      badRequest(res, 400, `channel: no channel "${channel}" here; broadcast to ${PUBLIC_CHANNELS.join(' or ')}`);
      return;
    }
    if (event !== undefined && (typeof event !== 'string' || !TOKEN.test(event))) {
      badRequest(res, 400, `event must be a name of letters, digits, "-" or "_" (at most 32); got ${JSON.stringify(event)}`);
      return;
    }
    const { id, delivered } = await registry.channel(channel).broadcast(data, event === undefined ? {} : { event });
    res.json({ delivered, id: id ?? null });
  });

  app.get('/generateEvent', generateLimit, async (_req, res) => {
    const { id, delivered } = await registry.channel(DEFAULT_CHANNEL).broadcast(randomCatFact(), { event: 'catFact' });
    res.json({ delivered, id: id ?? null });
  });

  // The four-event-type demo: random pace, ends after 30 events with an agreed end event
  // (id -1, as in the seed), or earlier when the client or the server stops it.
  const randomStreams = new Map<string, (reason: string) => void>();
  app.get('/random-events', streamsOfRandomEvents, (req, res) => {
    const pace = paceFrom(req, randomPaceMs);
    const streamId = randomUUID();
    const stream = res.sse;
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const end = (reason: string): void => {
      clearTimeout(timer);
      if (!randomStreams.delete(streamId)) return;
      metrics.randomStreams -= 1;
      stream.send(reason, { event: 'end', id: -1 });
      stream.close();
    };
    const tick = (): void => {
      const { type, data } = randomEvent();
      sent += 1;
      stream.send(data, { event: type, id: sent });
      if (sent >= RANDOM_EVENTS_TOTAL) end('complete');
      else timer = setTimeout(tick, pace * (0.5 + Math.random()));
    };
    randomStreams.set(streamId, end);
    metrics.randomStreams += 1;
    stream.send({ stream: streamId, total: RANDOM_EVENTS_TOTAL }, { event: 'stream' });
    timer = setTimeout(tick, pace * (0.5 + Math.random()));
    stream.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      if (randomStreams.delete(streamId)) metrics.randomStreams -= 1;
    });
  });

  app.post('/random-events/:id/stop', (req, res) => {
    const end = randomStreams.get(req.params.id);
    if (end === undefined) {
      badRequest(res, 404, 'no such random-events stream (it may have ended already)');
      return;
    }
    end('stopped by the server');
    res.json({ stopped: true });
  });

  // Token streaming (the second seed): GET for EventSource, POST for fetch with a body. The
  // prompt is checked before sse(), so a bad one still gets a plain 400.
  const promptFrom =
    (read: (req: Request) => unknown): RequestHandler =>
    (req, res, next) => {
      const prompt = read(req) ?? '';
      if (typeof prompt !== 'string' || prompt.length > 500) {
        badRequest(res, 400, 'prompt must be a string of at most 500 characters');
        return;
      }
      next();
    };
  const streamAnswer: RequestHandler = async (req, res) => {
    metrics.generating += 1;
    try {
      const finished = await res.sse.pipe(tokenStream(res.sse.signal, paceFrom(req, tokenPaceMs), () => (metrics.tokens += 1)));
      if (finished) res.sse.send('[DONE]');
    } finally {
      metrics.generating -= 1;
      res.sse.close();
    }
  };
  app.get('/ai/stream', promptFrom((req) => req.query.prompt), tokenStreams, streamAnswer);
  app.post(
    '/ai/stream',
    express.json({ limit: BODY_LIMIT }),
    promptFrom((req) => (req.body as { prompt?: unknown } | undefined)?.prompt),
    tokenStreams,
    streamAnswer,
  );

  // Resumable runs: the answer is generated apart from any request and kept (registry.run()), so
  // a reload, a lost connection or another instance (with REDIS_URL) picks it up where it was.
  // POST starts one; GET follows it (from Last-Event-ID, or from the start); POST …/stop ends it
  // from anywhere. /ai/chat/:id/stream serves it to the AI SDK (useChat with resume: true).
  const runStreams = sse({ maxConnections: 2000, maxConnectionsPerKey: 20 });
  const runLimit = rateLimit({
    windowMs: options.runLimit?.windowMs ?? 60_000,
    limit: options.runLimit?.limit ?? 20,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    message: { error: 'too many runs started from here; retry later' },
  });
  let generatingRuns = 0;
  app.post('/ai/runs', runLimit, express.json({ limit: BODY_LIMIT }), promptFrom((req) => (req.body as { prompt?: unknown } | undefined)?.prompt), async (req, res) => {
    if (generatingRuns >= MAX_RUNS) {
      res.set('Retry-After', '5');
      badRequest(res, 503, `this server generates ${MAX_RUNS} answers already; retry later`);
      return;
    }
    const id = randomUUID();
    const pace = paceFrom(req, tokenPaceMs);
    const run = await registry.run(id, (signal) => tokenStream(signal, pace, () => (metrics.tokens += 1)));
    generatingRuns += 1;
    void run.done.then(() => (generatingRuns -= 1));
    const url = `/ai/runs/${id}`;
    res.status(201).location(url).json({ id, url });
  });
  app.get('/ai/runs/:id', runStreams, (req, res) => void registry.followRun(res, String(req.params.id)));
  app.get('/ai/chat/:id/stream', runStreams, (req, res) => void registry.followRun(res, String(req.params.id), { format: 'ai-sdk' }));
  app.post('/ai/runs/:id/stop', async (req, res) => {
    res.json({ stopped: await registry.stopRun(String(req.params.id)) });
  });

  // Durable Streams (the protocol: PUT, POST, GET with offsets, long-poll, SSE) at /v1/stream,
  // on the registry's adapter, so with REDIS_URL every process serves the same streams, and
  // runs are read there too (/v1/stream/_runs/<id>). Bounded like every route: a rate limit per
  // client IP (set so one client's full conformance run goes through), bodies, bytes per stream
  // and in all, number of streams.
  const durableLimit = rateLimit({
    windowMs: options.durableLimit?.windowMs ?? 600_000,
    limit: options.durableLimit?.limit ?? 10_000,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    message: { error: 'too many Durable Streams requests from here; retry later' },
  });
  const streams = durableStreams({
    adapter,
    maxBodyBytes: 256 * 1024,
    maxStreamBytes: 1024 * 1024,
    maxTotalBytes: 256 * 1024 * 1024,
    maxStreams: 10_000,
    onError: (error) => console.error(`[express-sse-hub] ${error.message}`),
  });
  app.use('/v1/stream', durableLimit, streams);

  // A chat answered by a run and read through /v1/stream by the AI SDK's Durable Streams
  // transport (@durable-streams/aisdk-transport): POST starts the run and answers where to read
  // it; GET …/:chatId/stream says where the chat's answer in progress is (204: none), which is
  // how a reloaded page resumes. Chats with an answer in progress are this process's (a Map).
  const activeChats = new Map<string, string>();
  const CHAT_ID = /^[A-Za-z0-9-]{1,64}$/;
  app.post('/ai/durable-chat', runLimit, express.json({ limit: BODY_LIMIT }), async (req, res) => {
    const chatId = (req.body as { id?: unknown } | undefined)?.id;
    if (typeof chatId !== 'string' || !CHAT_ID.test(chatId)) {
      badRequest(res, 400, 'id must be 1 to 64 letters, digits or "-"');
      return;
    }
    if (generatingRuns >= MAX_RUNS) {
      res.set('Retry-After', '5');
      badRequest(res, 503, `this server generates ${MAX_RUNS} answers already; retry later`);
      return;
    }
    const runId = `chat-${chatId}-${randomUUID().slice(0, 8)}`;
    const pace = paceFrom(req, tokenPaceMs);
    const run = await registry.run(runId, (signal) => uiMessageChunks(tokenStream(signal, pace, () => (metrics.tokens += 1))), { event: 'chunk' });
    generatingRuns += 1;
    activeChats.set(chatId, runId);
    void run.done.then(() => {
      generatingRuns -= 1;
      if (activeChats.get(chatId) === runId) activeChats.delete(chatId);
    });
    const streamUrl = `/v1/stream/_runs/${runId}`;
    res.status(201).location(streamUrl).json({ streamUrl });
  });
  app.get('/ai/durable-chat/:chatId/stream', (req, res) => {
    const runId = activeChats.get(String(req.params.chatId));
    if (runId === undefined) {
      res.status(204).end();
      return;
    }
    const streamUrl = `/v1/stream/_runs/${runId}`;
    res.status(200).location(streamUrl).json({ streamUrl });
  });
  let durablePage: Promise<string> | undefined;
  app.get('/durable.js', (_req, res, next) => {
    durablePage ??= bundlePage(DURABLE_PAGE);
    durablePage.then((code) => res.type('text/javascript').set('Cache-Control', 'no-cache').send(code), next);
  });

  // Operations: Prometheus metrics of every stream route and both registries, and the same
  // figures as JSON for the page's operations panel.
  const prometheus = new MetricsRegistry();
  const handlers = [subscribeStreams, soloStreams, streamsOfRandomEvents, tokenStreams, runStreams];
  const collected = collectMetrics({ registry: prometheus, channels: [registry, local], handlers });
  app.get('/metrics', async (_req, res) => {
    res.set('Cache-Control', 'no-store').type(prometheus.contentType).send(await prometheus.metrics());
  });
  app.get('/metrics.json', async (_req, res) => {
    const figures: Record<string, number> = {};
    for (const metric of await prometheus.getMetricsAsJSON()) {
      if (String(metric.type) === 'histogram') continue;
      figures[metric.name] = metric.values.reduce((sum, { value }) => sum + value, 0);
    }
    res.set('Cache-Control', 'no-store').json({ time: Date.now(), rss: process.memoryUsage.rss(), ...figures });
  });

  // Bad JSON and oversized bodies come here from express.json().
  const onError: ErrorRequestHandler = (error: { status?: number; type?: string; message?: string }, _req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    if (error.type === 'entity.parse.failed') badRequest(res, 400, 'the body is not valid JSON');
    else if (error.type === 'entity.too.large') badRequest(res, 413, `the body is larger than ${BODY_LIMIT}`);
    else if (typeof error.status === 'number' && error.status >= 400 && error.status < 500) badRequest(res, error.status, error.message ?? 'bad request');
    else badRequest(res, 500, 'internal error');
  };
  app.use(onError);

  return {
    app,
    registry,
    metrics,
    prometheus,
    close: async () => {
      clearInterval(clockTimer);
      clearTimeout(presenceTimer);
      collected.close();
      for (const end of [...randomStreams.values()]) end('server shutting down');
      // Each client is told to come back after its own delay, spread over 5 s: a restart does not
      // bring every client back in the same instant.
      const last = { event: 'shutdown', data: 'The demo server is shutting down.', retryJitter: SHUTDOWN_RETRY_JITTER_MS };
      // Every stream, whichever channels it is in or whether it is in any: each handler ends its own.
      await Promise.all(handlers.map((handler) => handler.close(last)));
      await Promise.all([registry.close(), local.close(), streams.close()]);
    },
  };
}
