// One benchmark target in its own process. Usage: node --import tsx bench/server.ts <target>
// Prints {"port":N} on stdout once listening. Control endpoints:
//   GET  /events[?channels=a,b]  the event stream (what the load generator holds); with
//                                `channels`, one connection on several channels (not every peer)
//   GET  /count                  how many streams are subscribed
//   POST /burst?events=E[&channels=K]  broadcasts E events {t,n}, awaiting each broadcast and
//                                yielding one event-loop turn (setImmediate) between events, like a
//                                real source; with K, round-robin over channels c0…c(K-1);
//                                answers {elapsedMs, cpuUs}
//   POST /steady?events=E&interval=ms   one event every `interval` ms, answers when done
//   GET  /memory                 heap and RSS after a full GC (needs --expose-gc)
import http from 'node:http';
import path from 'node:path';
import express from 'express';
import * as published from 'express-sse-hub';
import { serve } from './process';

interface Target {
  readonly app: http.RequestListener;
  count(): number;
  broadcast(payload: { t: number; n: number }, channel?: string): unknown;
  /** Whether one connection can join several channels. */
  readonly multi: boolean;
}

/** The channels a request asks for with ?channels=a,b (none: the single-channel scenarios). */
function channelsOf(req: http.IncomingMessage): string[] | undefined {
  const q = (req.url ?? '').indexOf('?channels=');
  return q === -1 ? undefined : (req.url ?? '').slice(q + 10).split(',');
}

// SSE_HUB_DIST: a build of the package to load instead (bench/compare.ts runs two commits).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const hubModule: typeof published = process.env.SSE_HUB_DIST === undefined ? published : (require(path.join(process.env.SSE_HUB_DIST, 'index.js')) as typeof published);

function hub(): Target {
  const { ChannelRegistry, sse } = hubModule;
  const registry = new ChannelRegistry();
  const main = registry.channel('bench');
  const app = express();
  app.get('/events', sse({ heartbeat: false }), (req, res) => {
    const channels = channelsOf(req);
    if (channels === undefined) main.subscribe(res);
    else registry.subscribe(res, channels);
  });
  return {
    app,
    count: () => registry.stats().connections,
    broadcast: (p, channel) => (channel === undefined ? main : registry.channel(channel)).broadcast(p),
    multi: true,
  };
}

function raw(): Target {
  // The baseline: serialize once, one res.write per client per event.
  const channels = new Map<string, Set<http.ServerResponse>>();
  const members = (name: string): Set<http.ServerResponse> => {
    let set = channels.get(name);
    if (set === undefined) channels.set(name, (set = new Set()));
    return set;
  };
  let count = 0;
  const app: http.RequestListener = (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    const names = channelsOf(req) ?? ['bench'];
    for (const name of names) members(name).add(res);
    count += 1;
    res.on('close', () => {
      count -= 1;
      for (const name of names) members(name).delete(res);
    });
  };
  return {
    app,
    count: () => count,
    broadcast: (p, channel = 'bench') => {
      const frame = `data: ${JSON.stringify(p)}\n\n`;
      for (const res of members(channel)) res.write(frame);
    },
    multi: true,
  };
}

function rawInExpress(): Target {
  // raw's code behind Express, to tell what Express's response object costs by itself.
  const inner = raw();
  const app = express();
  app.get('/events', (req, res) => inner.app(req, res));
  return { app, count: () => inner.count(), broadcast: (p) => inner.broadcast(p), multi: false };
}

async function betterSse(): Promise<Target> {
  // better-sse's types are ESM-only for a CommonJS file under Node16 resolution: import it dynamically.
  const { createChannel, createSession } = await import('better-sse');
  const channels = new Map<string, ReturnType<typeof createChannel>>();
  const channel = (name: string): ReturnType<typeof createChannel> => {
    let found = channels.get(name);
    if (found === undefined) channels.set(name, (found = createChannel()));
    return found;
  };
  let multiSessions = 0;
  const app = express();
  app.get('/events', (req, res) => {
    void createSession(req, res, { keepAlive: null }).then((session) => {
      const names = channelsOf(req);
      for (const name of names ?? ['bench']) channel(name).register(session);
      if (names !== undefined) multiSessions += 1;
    });
  });
  return {
    app,
    count: () => channel('bench').sessionCount + multiSessions,
    broadcast: (p, name = 'bench') => channel(name).broadcast(p, 'message'),
    multi: true,
  };
}

function sseChannel(): Target {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const SseChannel = require('sse-channel') as new (options: object) => {
    addClient(req: http.IncomingMessage, res: http.ServerResponse): void;
    send(message: { data: unknown }): void;
    getConnectionCount(): number;
  };
  const channel = new SseChannel({ jsonEncode: true, pingInterval: 3_600_000, historySize: 0 });
  const app = express();
  app.get('/events', (req, res) => channel.addClient(req, res));
  return { app, count: () => channel.getConnectionCount(), broadcast: (p) => channel.send({ data: p }), multi: false };
}

function expressSse(): Target {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const SSE = require('express-sse') as new () => {
    init(req: http.IncomingMessage, res: http.ServerResponse): void;
    send(data: unknown): void;
    listenerCount(event: string): number;
  };
  const stream = new SSE();
  const app = express();
  app.get('/events', (req, res) => stream.init(req, res));
  return { app, count: () => stream.listenerCount('data'), broadcast: (p) => stream.send(p), multi: false };
}

export const TARGETS: Record<string, () => Target | Promise<Target>> = {
  'express-sse-hub': hub,
  raw,
  'raw-express': rawInExpress,
  'better-sse': betterSse,
  'sse-channel': sseChannel,
  'express-sse': expressSse,
};

async function main(): Promise<void> {
  const name = process.argv[2] ?? 'express-sse-hub';
  const make = TARGETS[name];
  if (make === undefined) throw new Error(`unknown target ${name}; one of ${Object.keys(TARGETS).join(', ')}`);
  const target = await make();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/multi') {
      res.end(JSON.stringify({ multi: target.multi }));
    } else if (url.pathname === '/count') {
      res.end(JSON.stringify({ count: target.count() }));
    } else if (url.pathname === '/burst' && req.method === 'POST') {
      const events = Number(url.searchParams.get('events') ?? 100);
      const spread = Number(url.searchParams.get('channels') ?? 0);
      void (async () => {
        const cpu = process.cpuUsage();
        const started = performance.now();
        for (let n = 0; n < events; n += 1) {
          await target.broadcast({ t: performance.timeOrigin + performance.now(), n }, spread > 0 ? `c${n % spread}` : undefined);
          await new Promise((r) => setImmediate(r));
        }
        const used = process.cpuUsage(cpu);
        res.end(JSON.stringify({ elapsedMs: performance.now() - started, cpuUs: used.user + used.system }));
      })();
    } else if (url.pathname === '/steady' && req.method === 'POST') {
      const events = Number(url.searchParams.get('events') ?? 50);
      const interval = Number(url.searchParams.get('interval') ?? 20);
      let n = 0;
      const timer = setInterval(() => {
        void target.broadcast({ t: performance.timeOrigin + performance.now(), n });
        n += 1;
        if (n === events) {
          clearInterval(timer);
          res.end('{}');
        }
      }, interval);
    } else if (url.pathname === '/memory') {
      global.gc?.();
      const m = process.memoryUsage();
      res.end(JSON.stringify({ heap: m.heapUsed, rss: m.rss }));
    } else {
      target.app(req, res);
    }
  });
  serve(server);
}

if (require.main === module) void main();
