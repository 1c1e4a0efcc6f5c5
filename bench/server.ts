// One benchmark target in its own process. Usage: node --import tsx bench/server.ts <target>
// Prints {"port":N} on stdout once listening. Control endpoints:
//   GET  /events                 the event stream (what the load generator holds)
//   GET  /count                  how many streams are subscribed
//   POST /burst?events=E         broadcasts E events {t,n}, awaiting each broadcast and yielding one
//                                event-loop turn (setImmediate) between events, like a real source;
//                                answers {elapsedMs, cpuUs}
//   POST /steady?events=E&interval=ms   one event every `interval` ms, answers when done
//   GET  /memory                 heap and RSS after a full GC (needs --expose-gc)
import http from 'node:http';
import express from 'express';
import { ChannelRegistry, sse } from 'express-sse-hub';

interface Target {
  readonly app: http.RequestListener;
  count(): number;
  broadcast(payload: { t: number; n: number }): unknown;
}

function hub(): Target {
  const channel = new ChannelRegistry().channel('bench');
  const app = express();
  app.get('/events', sse({ heartbeat: false }), (_req, res) => channel.subscribe(res));
  return { app, count: () => channel.size, broadcast: (p) => channel.broadcast(p) };
}

function raw(): Target {
  // The baseline: serialize once, one res.write per client per event.
  const clients = new Set<http.ServerResponse>();
  const app: http.RequestListener = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    clients.add(res);
    res.on('close', () => clients.delete(res));
  };
  return {
    app,
    count: () => clients.size,
    broadcast: (p) => {
      const frame = `data: ${JSON.stringify(p)}\n\n`;
      for (const res of clients) res.write(frame);
    },
  };
}

function rawInExpress(): Target {
  // raw's code behind Express, to tell what Express's response object costs by itself.
  const inner = raw();
  const app = express();
  app.get('/events', (req, res) => inner.app(req, res));
  return { app, count: () => inner.count(), broadcast: (p) => inner.broadcast(p) };
}

async function betterSse(): Promise<Target> {
  // better-sse's types are ESM-only for a CommonJS file under Node16 resolution: import it dynamically.
  const { createChannel, createSession } = await import('better-sse');
  const channel = createChannel();
  const app = express();
  app.get('/events', (req, res) => {
    void createSession(req, res, { keepAlive: null }).then((session) => channel.register(session));
  });
  return { app, count: () => channel.sessionCount, broadcast: (p) => channel.broadcast(p, 'message') };
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
  return { app, count: () => channel.getConnectionCount(), broadcast: (p) => channel.send({ data: p }) };
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
  return { app, count: () => stream.listenerCount('data'), broadcast: (p) => stream.send(p) };
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
    if (url.pathname === '/count') {
      res.end(JSON.stringify({ count: target.count() }));
    } else if (url.pathname === '/burst' && req.method === 'POST') {
      const events = Number(url.searchParams.get('events') ?? 100);
      void (async () => {
        const cpu = process.cpuUsage();
        const started = performance.now();
        for (let n = 0; n < events; n += 1) {
          await target.broadcast({ t: performance.timeOrigin + performance.now(), n });
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
  server.maxConnections = 20_000;
  // A clean exit on SIGTERM lets --cpu-prof write its profile.
  process.once('SIGTERM', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
  });
}

if (require.main === module) void main();
