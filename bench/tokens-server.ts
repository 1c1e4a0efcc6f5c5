// One target of the token-streaming benchmark (bench/tokens.ts) in its own process.
// Usage: node --expose-gc --import tsx bench/tokens-server.ts <target> [runs.ttl ms]
// Prints {"port":N} on stdout once listening. Endpoints:
//   GET  /runs/:id?tokens=T&phase=F  a run of T tokens at 30 tokens/s, streamed to the client, then
//                          its end; the run waits for the next POST /go, then starts F (0 ≤ F < 1)
//                          of a token interval later, so that the runs' tokens are spread evenly
//                          over each interval instead of all coming at the same millisecond
//   POST /go               starts the runs requested since the last /go (and resets the event-loop
//                          delay histogram)
//   GET  /cpu              {cpuUs, lagP99}: process.cpuUsage() of the process so far (user + system),
//                          and the p99 event-loop delay since the last /go, ms
//   GET  /state            {connections, runs, size} without a GC (cheap, for polling)
//   GET  /memory           the same plus {heap, rss} after a full GC (needs --expose-gc)
//
// Every target streams the same generator: a token {t, n, text} every 1/30 s, paced against a
// deadline (start + n / 30 s) so that every target gets the same 30 tokens/s per run however
// loaded the process is; `t` is the time the token was generated (epoch ms, sub-ms precision), `d`
// the time it was due.
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { ChannelRegistry, MemoryAdapter, sse } from 'express-sse-hub';
import { serve } from './process';

export const TOKENS_PER_SECOND = 30;
const INTERVAL_MS = 1000 / TOKENS_PER_SECOND;
const WORDS = [' The', ' quick', ' brown', ' fox', ' jumps', ' over', ' the', ' lazy', ' dog', '.'];

export interface Token {
  /** Generation time, epoch ms. */
  readonly t: number;
  /**
   * When it was due by the 30 tokens/s schedule, epoch ms: later than `t` only by how late the
   * server's event loop ran the generator (a real upstream's tokens wait that long to be read).
   */
  readonly d: number;
  /** Sequence number, from 0. */
  readonly n: number;
  readonly text: string;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

// The gate the runs requested now wait for: POST /go opens it (with its time) and sets a new one.
let open!: (at: number) => void;
let gate = new Promise<number>((resolve) => (open = resolve));

function go(): void {
  open(performance.now());
  gate = new Promise<number>((resolve) => (open = resolve));
}

interface RunRequest {
  readonly count: number;
  /** Opens when the run may start (performance.now() of POST /go). */
  readonly gate: Promise<number>;
  /** Its offset in a token interval, 0 ≤ phase < 1. */
  readonly phase: number;
}

function requestOf(req: http.IncomingMessage): RunRequest {
  const query = new URL(req.url ?? '/', 'http://x').searchParams;
  const count = Number(query.get('tokens'));
  const phase = Number(query.get('phase') ?? 0);
  if (!(Number.isSafeInteger(count) && count > 0 && phase >= 0 && phase < 1)) throw new Error(`bad query in ${req.url}`);
  return { count, gate, phase };
}

/** The model: `count` tokens at 30 tokens/s once its gate opens; stops early when `signal` aborts. */
async function* generate({ count, gate: opened, phase }: RunRequest, signal?: AbortSignal): AsyncGenerator<Token> {
  const start = (await opened) + phase * INTERVAL_MS;
  for (let n = 0; n < count; n += 1) {
    // Whole milliseconds: a fractional delay would make a timer list of its own for each value.
    const wait = Math.max(1, Math.round(start + (n + 1) * INTERVAL_MS - performance.now()));
    try {
      await sleep(wait, undefined, signal === undefined ? undefined : { signal });
    } catch {
      return; // aborted
    }
    yield { t: now(), d: performance.timeOrigin + start + (n + 1) * INTERVAL_MS, n, text: WORDS[n % WORDS.length]! };
  }
}

interface Target {
  readonly app: http.RequestListener;
  /** Open streams. */
  connections(): number;
  /** Runs producing now (express-sse-hub only). */
  runs(): number | null;
  /** Run logs held (express-sse-hub's MemoryAdapter.size only). */
  size(): number | null;
}

function raw(): Target {
  // The baseline: the generator feeds the response directly, one res.write per token.
  let open = 0;
  const app: http.RequestListener = (req, res) => {
    const request = requestOf(req);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    open += 1;
    const stop = new AbortController();
    res.once('close', () => {
      open -= 1;
      stop.abort();
    });
    void (async () => {
      for await (const token of generate(request, stop.signal)) res.write(`data: ${JSON.stringify(token)}\n\n`);
      if (!res.destroyed) res.end('data: [DONE]\n\n');
    })();
  };
  return { app, connections: () => open, runs: () => null, size: () => null };
}

async function betterSse(): Promise<Target> {
  // better-sse's types are ESM-only for a CommonJS file under Node16 resolution: import it dynamically.
  const { createSession } = await import('better-sse');
  let open = 0;
  const app = express();
  app.get('/runs/:id', (req, res) => {
    const request = requestOf(req);
    const stop = new AbortController();
    open += 1;
    res.once('close', () => {
      open -= 1;
      stop.abort();
    });
    void (async () => {
      const session = await createSession(req, res, { keepAlive: null });
      await session.iterate(generate(request, stop.signal), { eventName: 'token' });
      if (!res.destroyed) {
        session.push('[DONE]');
        res.end();
      }
    })();
  });
  return { app, connections: () => open, runs: () => null, size: () => null };
}

function hub(ttl: number | undefined): Target {
  const adapter = new MemoryAdapter();
  const registry = new ChannelRegistry({ adapter, runs: ttl === undefined ? {} : { ttl } });
  registry.on('error', (error) => console.error(error));
  const app = express();
  app.get(
    '/runs/:id',
    // The first request for a run starts it; a later one, while it runs, just follows it. (Each run
    // has one client here: a run() that fails, ERR_SSE_RUN_EXISTS included, is a bug, answered 500.)
    async (req, _res, next) => {
      const id = String(req.params.id);
      if (registry.getRun(id) === undefined) {
        const request = requestOf(req);
        await registry.run(id, (signal) => generate(request, signal));
      }
      next();
    },
    sse({ heartbeat: false }),
    (req, res) => void registry.followRun(res, String(req.params.id)),
  );
  // A run that could not start: 500, and the first such error on stderr (not one per request).
  let reported = false;
  app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    if (!reported) console.error('express-sse-hub: a run could not start:', error);
    reported = true;
    res.status(500).end();
  });
  return {
    app,
    connections: () => registry.stats().connections,
    runs: () => registry.stats().runs,
    size: () => adapter.size,
  };
}

async function make(name: string, ttl: number | undefined): Promise<Target> {
  if (name === 'raw') return raw();
  if (name === 'better-sse') return betterSse();
  if (name === 'express-sse-hub') return hub(ttl);
  throw new Error(`unknown target ${name}; one of raw, better-sse, express-sse-hub`);
}

async function main(): Promise<void> {
  const name = process.argv[2] ?? 'express-sse-hub';
  const ttl = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
  const target = await make(name, ttl);
  // How late the event loop runs: near 0 on a server that keeps up, the length of its turns on one
  // that does not.
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  const state = (): object => ({ connections: target.connections(), runs: target.runs(), size: target.size() });
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/go' && req.method === 'POST') {
      lag.reset();
      go();
      res.end('{}');
    } else if (path === '/cpu') {
      const used = process.cpuUsage();
      res.end(JSON.stringify({ cpuUs: used.user + used.system, lagP99: lag.percentile(99) / 1e6 }));
    } else if (path === '/state') {
      res.end(JSON.stringify(state()));
    } else if (path === '/memory') {
      void (async () => {
        // Twice, a turn apart: finalizers (the registry's weakly held channels) run after a GC.
        global.gc?.();
        await sleep(20);
        global.gc?.();
        const m = process.memoryUsage();
        res.end(JSON.stringify({ ...state(), heap: m.heapUsed, rss: m.rss }));
      })();
    } else {
      target.app(req, res);
    }
  });
  serve(server);
}

if (require.main === module) void main();
