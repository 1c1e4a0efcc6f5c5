// Reconnect storm: `--clients` clients (default 10 000) reconnect at once to a freshly started
// server, each with a Last-Event-ID `--behind` events back (default 50), as after a restart of
// the instance they were on. Measured, on the MemoryAdapter and on Redis: time until every client
// has caught up (p50, p99, max), the server's peak memory above its idle baseline, and the Redis
// commands per reconnect (the design: one log read per channel and connection, not one per event).
//   npm run bench:storm -- [--clients 10000] [--behind 50] [--only memory|redis]
// The load generator runs in its own process (bench/storm-clients.ts). Both sides hold one socket
// per client: the open-file limit (ulimit -n) must exceed the client count by some margin.
// Starts its own redis-server (no persistence) on a free port, or uses REDIS_URL.
import { execSync, fork, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import express from 'express';
import Redis from 'ioredis';
import { ChannelRegistry, sse } from 'express-sse-hub';
import type { Adapter } from 'express-sse-hub/adapter';
import { RedisAdapter } from 'express-sse-hub/redis';
import type { StormResult } from './storm-clients';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function commandCalls(admin: Redis): Promise<Map<string, number>> {
  const info = await admin.info('commandstats');
  const stats = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([\w|-]+):calls=(\d+)/gm)) {
    if (match[1] !== 'info') stats.set(match[1]!, Number(match[2]));
  }
  return stats;
}

const mb = (bytes: number): string => `${(bytes / 1048576).toFixed(0)} MB`;
const at = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

interface Storm {
  result: StormResult;
  peakRss: number;
  peakHeap: number;
  baseRss: number;
  baseHeap: number;
  redis?: { roundTrips: number; perReconnect: number; detail: string };
}

async function storm(kind: 'memory' | 'redis', clients: number, behind: number, redisUrl: string | undefined, admin: Redis | undefined): Promise<Storm> {
  let adapter: Adapter | undefined;
  let client: Redis | undefined;
  // Requests this process sends Redis, counted where they leave it: INFO commandstats also counts
  // the commands a script runs inside Redis, which cost no round trip.
  let sent = 0;
  if (kind === 'redis') {
    client = new Redis(redisUrl!);
    const send = client.sendCommand.bind(client);
    client.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
      sent += 1;
      return send(...args);
    });
    adapter = await RedisAdapter.connect({ client, prefix: `bench-storm-${process.pid}-${Date.now()}` });
  }
  const registry = new ChannelRegistry({ history: 1000, ...(adapter === undefined ? {} : { adapter }) });
  // The events the clients saw before the restart, then the `behind` they missed.
  const { id: lastEventId } = await registry.channel('feed').broadcast({ n: 0 });
  for (let n = 1; n <= behind; n += 1) await registry.channel('feed').broadcast({ n, text: 'an event of about a hundred bytes, as a notification or a ticker update would be' });
  const app = express();
  const streams = sse({ heartbeat: false, maxConnections: clients + 100 });
  app.get('/subscribe', streams, (_req, res) => registry.subscribe(res, 'feed'));
  const server = app.listen({ port: await freePort(), host: '127.0.0.1', backlog: 65535 });
  server.maxConnections = clients + 100;
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;

  global.gc?.();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakHeap = base.heapUsed;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 20);
  const before = admin === undefined ? undefined : await commandCalls(admin);
  const sentBefore = sent;

  const loader = fork(path.join(__dirname, 'storm-clients.ts'), [], { execArgv: ['--import', 'tsx'] });
  const done = new Promise<StormResult>((resolve) => loader.on('message', (m: { done?: StormResult }) => m.done && resolve(m.done)));
  loader.send({ url: `http://127.0.0.1:${port}/subscribe`, clients, expect: behind, lastEventId });
  const result = await done;
  clearInterval(sampler);

  let redis: Storm['redis'];
  if (admin !== undefined && before !== undefined) {
    const after = await commandCalls(admin);
    const deltas = [...after].map(([name, n]) => [name, n - (before.get(name) ?? 0)] as const).filter(([, n]) => n > 0);
    const total = deltas.reduce((s, [, n]) => s + n, 0);
    redis = { roundTrips: (sent - sentBefore) / clients, perReconnect: total / clients, detail: deltas.map(([name, n]) => `${name} ${n}`).join(', ') };
  }
  await registry.close({ timeout: 500 });
  client?.disconnect();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  return { result, peakRss, peakHeap, baseRss: base.rss, baseHeap: base.heapUsed, redis };
}

async function main(): Promise<void> {
  const clients = Number(arg('clients') ?? 10_000);
  const behind = Number(arg('behind') ?? 50);
  const only = arg('only');
  // Both processes hold one socket per client; the server also holds Redis connections, files.
  const limit = Number(execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim());
  if (Number.isFinite(limit) && limit < clients + 500) {
    throw new Error(`bench:storm: ulimit -n is ${limit}; ${clients} clients need at least ${clients + 500} (raise it: ulimit -n ${clients + 1000}, or pass --clients ${Math.max(100, limit - 500)})`);
  }
  let redisUrl = process.env.REDIS_URL;
  let redisPid: number | undefined;
  if (only !== 'memory' && redisUrl === undefined) {
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    redisPid = child.pid;
    redisUrl = `redis://127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 300));
  }
  const admin = redisUrl === undefined ? undefined : new Redis(redisUrl);
  console.log(`reconnect storm: ${clients} clients at once, each ${behind} events behind; Node ${process.version}, ${(await import('node:os')).cpus().length} cores`);
  try {
    for (const kind of ['memory', 'redis'] as const) {
      if (only !== undefined && only !== kind) continue;
      const s = await storm(kind, clients, behind, redisUrl, kind === 'redis' ? admin : undefined);
      const { caughtUp, errors, resets, missing } = s.result;
      console.log(
        `  ${kind.padEnd(6)} all caught up in ${at(caughtUp, 100).toFixed(0)} ms (p50 ${at(caughtUp, 50).toFixed(0)} ms, p99 ${at(caughtUp, 99).toFixed(0)} ms); ` +
          `missing ${missing}, errors ${errors}, resets ${resets}; peak RSS ${mb(s.peakRss)} (+${mb(s.peakRss - s.baseRss)}), peak heap ${mb(s.peakHeap)} (+${mb(s.peakHeap - s.baseHeap)})`,
      );
      if (s.redis !== undefined) {
        console.log(`         Redis requests sent per reconnect: ${s.redis.roundTrips.toFixed(3)}; commands Redis ran per reconnect, scripts' own included: ${s.redis.perReconnect.toFixed(3)} (${s.redis.detail})`);
      }
    }
  } finally {
    admin?.disconnect();
    if (redisPid !== undefined) process.kill(redisPid);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
