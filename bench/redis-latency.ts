// Cross-instance latency through Redis, against the in-process MemoryAdapter in the same run, and
// what each costs Redis.
//   npm run bench:redis -- [--clients 1000] [--events 200] [--interval 20] [--repeats 3] [--reconnects 200]
// - latency: instance A publishes, the clients of instance B (held by a load generator in its own
//   process) receive; the baseline publishes on B itself through a MemoryAdapter. The two
//   alternate, `--repeats` times each, on the same machine and clients count.
// - Redis commands per broadcast: INFO commandstats before and after the latency phase.
// - Redis commands per reconnect: `--reconnects` clients reconnect to B with a Last-Event-ID 50
//   events behind and replay them.
// Starts its own redis-server (no persistence) on a free port, or uses REDIS_URL.
import { fork, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import express from 'express';
import Redis from 'ioredis';
import { ChannelRegistry, sse } from 'express-sse-hub';
import type { Adapter } from 'express-sse-hub/adapter';
import { RedisAdapter } from 'express-sse-hub/redis';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Calls of each Redis command so far (INFO commandstats; a script call is one EVALSHA). */
async function commandStats(admin: Redis): Promise<Map<string, number>> {
  const info = await admin.info('commandstats');
  const stats = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([\w|-]+):calls=(\d+)/gm)) {
    if (match[1] !== 'info') stats.set(match[1]!, Number(match[2]));
  }
  return stats;
}

function describeDelta(before: Map<string, number>, after: Map<string, number>, per: number): string {
  return [...after]
    .map(([name, n]) => [name, (n - (before.get(name) ?? 0)) / per] as const)
    .filter(([, n]) => n > 0)
    .sort((x, y) => y[1] - x[1])
    .map(([name, n]) => `${name} ${n.toFixed(2)}`)
    .join(', ');
}

interface Measured {
  p50: number;
  p99: number;
  errors: number;
  delivered: number;
}

async function measure(kind: 'redis' | 'memory', url: string, clients: number, events: number, interval: number): Promise<Measured> {
  const prefix = `bench-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const connect = (): Promise<Adapter> => RedisAdapter.connect({ url, prefix });
  const b = new ChannelRegistry({ history: 100, ...(kind === 'redis' ? { adapter: await connect() } : {}) });
  const a = kind === 'memory' ? b : new ChannelRegistry({ adapter: await connect(), history: 100 });
  const app = express();
  app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => b.subscribe(res, 'feed'));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;
  const loader = fork(path.join(__dirname, 'sse-clients.ts'), [], { execArgv: ['--import', 'tsx'] });
  const result = new Promise<{ latencies: number[]; counts: number[]; errors: number }>((resolve) =>
    loader.on('message', (m: { latencies?: number[] }) => {
      if (m.latencies !== undefined) resolve(m as never);
    }),
  );
  const ready = new Promise((resolve) => loader.on('message', (m: { ready?: boolean }) => m.ready && resolve(undefined)));
  loader.send({ url: `http://127.0.0.1:${port}/subscribe`, clients, expect: events });
  await ready;
  while (b.channel('feed').size < clients) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 300));
  for (let n = 0; n < events; n += 1) {
    await a.channel('feed').broadcast({ t: performance.timeOrigin + performance.now(), n });
    await new Promise((r) => setTimeout(r, interval));
  }
  const { latencies, counts, errors } = await result;
  latencies.sort((x, y) => x - y);
  await Promise.all([...new Set([a, b])].map((r) => r.close({ timeout: 200 })));
  server.closeAllConnections();
  server.close();
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors, delivered: counts.reduce((s, c) => s + c, 0) };
}

/** Clients reconnecting with a Last-Event-ID `behind` events back; resolves once each replayed them. */
async function reconnectStorm(url: string, admin: Redis, reconnects: number, behind: number): Promise<{ perReconnect: number; ms: number; detail: string }> {
  const prefix = `bench-storm-${process.pid}`;
  const registry = new ChannelRegistry({ adapter: await RedisAdapter.connect({ url, prefix }), history: 500 });
  let from = '';
  for (let n = 0; n < behind + 10; n += 1) {
    const { id } = await registry.channel('feed').broadcast({ n });
    if (n === 9) from = id!;
  }
  const app = express();
  app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => registry.subscribe(res, 'feed'));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;
  const before = await commandStats(admin);
  const started = performance.now();
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  await Promise.all(
    Array.from(
      { length: reconnects },
      () =>
        new Promise<void>((resolve, reject) => {
          const req = http.get(`http://127.0.0.1:${port}/subscribe`, { agent, headers: { accept: 'text/event-stream', 'last-event-id': from } }, (res) => {
            let events = 0;
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              events += chunk.split('\ndata: ').length - 1 + (chunk.startsWith('data: ') ? 1 : 0);
              if (events >= behind) {
                req.destroy();
                resolve();
              }
            });
          });
          req.on('error', reject);
        }),
    ),
  );
  const ms = performance.now() - started;
  const after = await commandStats(admin);
  await registry.close({ timeout: 200 });
  server.closeAllConnections();
  server.close();
  // The channel's own subscription and first read (once per process, not per client) are included.
  let delta = 0;
  for (const [name, n] of after) delta += n - (before.get(name) ?? 0);
  return { perReconnect: delta / reconnects, ms, detail: describeDelta(before, after, reconnects) };
}

async function main(): Promise<void> {
  const clients = arg('clients', 1000);
  const events = arg('events', 200);
  const interval = arg('interval', 20);
  const repeats = arg('repeats', 3);
  const reconnects = arg('reconnects', 200);
  let url = process.env.REDIS_URL;
  let redisPid: number | undefined;
  if (url === undefined) {
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    redisPid = child.pid;
    url = `redis://127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 300));
  }
  const admin = new Redis(url);
  console.log(`Redis at ${url}; ${clients} SSE clients on instance B (load generator in its own process); ${events} events every ${interval} ms; ${repeats} repeats of each, alternating`);
  const runs: Record<'redis' | 'memory', Measured[]> = { redis: [], memory: [] };
  let redisCommands = 0;
  let detail = '';
  for (let r = 0; r < repeats; r += 1) {
    for (const kind of ['redis', 'memory'] as const) {
      const before = await commandStats(admin);
      const m = await measure(kind, url, clients, events, interval);
      if (kind === 'redis') {
        const after = await commandStats(admin);
        redisCommands += [...after].reduce((s, [name, n]) => s + n - (before.get(name) ?? 0), 0);
        if (r === 0) detail = describeDelta(before, after, events);
      }
      runs[kind].push(m);
      console.log(`  ${kind.padEnd(6)} p50 ${m.p50.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms, deliveries ${m.delivered}/${clients * events}, lost/dup/out-of-order ${m.errors}`);
    }
  }
  const p99 = { redis: median(runs.redis.map((m) => m.p99)), memory: median(runs.memory.map((m) => m.p99)) };
  const p50 = { redis: median(runs.redis.map((m) => m.p50)), memory: median(runs.memory.map((m) => m.p50)) };
  console.log(`median p50: Redis ${p50.redis.toFixed(2)} ms, memory ${p50.memory.toFixed(2)} ms`);
  console.log(`median p99: Redis ${p99.redis.toFixed(2)} ms, memory ${p99.memory.toFixed(2)} ms (Redis − memory: ${(p99.redis - p99.memory).toFixed(2)} ms)`);
  // Setup (connect, subscribe, the channel's first read, close) is included: the figure is an upper bound.
  console.log(`Redis commands per broadcast: ${(redisCommands / (repeats * events)).toFixed(2)} (setup and teardown included; first run: ${detail})`);
  const storm = await reconnectStorm(url, admin, reconnects, 50);
  console.log(`reconnect with Last-Event-ID 50 events behind: ${storm.perReconnect.toFixed(2)} Redis commands per reconnect (${storm.detail}); ${reconnects} reconnects replayed in ${storm.ms.toFixed(0)} ms`);
  admin.disconnect();
  if (redisPid !== undefined) process.kill(redisPid);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
