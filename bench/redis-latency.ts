// Cross-instance latency through Redis: publish on instance A, receive on clients of instance B.
//   npm run bench:redis -- [--clients 1000] [--events 200] [--interval 20] [--memory]
// --memory publishes on B itself through the in-process MemoryAdapter, as a baseline.
// Starts its own redis-server (no persistence) on a free port, or uses REDIS_URL.
import { fork, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import express from 'express';
import { ChannelRegistry, sse } from 'express-sse-hub';
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

async function main(): Promise<void> {
  const clients = arg('clients', 1000);
  const events = arg('events', 200);
  const interval = arg('interval', 20);
  let url = process.env.REDIS_URL;
  let redisPid: number | undefined;
  if (url === undefined) {
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    redisPid = child.pid;
    url = `redis://127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 300));
  }
  const prefix = `bench-${process.pid}`;
  console.log(`${process.argv.includes('--memory') ? 'MemoryAdapter baseline' : `Redis at ${url}`}; ${clients} SSE clients on instance B (load generator in its own process)`);
  const memory = process.argv.includes('--memory');
  const b = new ChannelRegistry({ adapter: memory ? undefined : await RedisAdapter.connect({ url, prefix }), history: 100 });
  const a = memory ? b : new ChannelRegistry({ adapter: await RedisAdapter.connect({ url, prefix }), history: 100 });
  const app = express();
  app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => b.subscribe(res, 'feed'));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;

  const loader = fork(path.join(__dirname, 'sse-clients.ts'), [], { execArgv: ['--import', 'tsx'] });
  const result = new Promise<{ latencies: number[]; counts: number[]; errors: number }>((resolve) =>
    loader.on('message', (m: { ready?: boolean; latencies?: number[] }) => {
      if (m.latencies !== undefined) resolve(m as never);
    }),
  );
  const ready = new Promise((resolve) => loader.on('message', (m: { ready?: boolean }) => m.ready && resolve(undefined)));
  loader.send({ url: `http://127.0.0.1:${port}/subscribe`, clients, expect: events });
  await ready;
  while (b.channel('feed').size < clients) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 300)); // let B's SUBSCRIBE settle
  for (let n = 0; n < events; n += 1) {
    await a.channel('feed').broadcast({ t: performance.timeOrigin + performance.now(), n });
    await new Promise((r) => setTimeout(r, interval));
  }
  const { latencies, counts, errors } = await result;
  latencies.sort((x, y) => x - y);
  const delivered = counts.reduce((s, c) => s + c, 0);
  console.log(`clients ${clients}, events ${events} every ${interval} ms, deliveries ${delivered}/${clients * events}, lost/dup/out-of-order ${errors}`);
  console.log(`publish on A → receive on B: p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms, max ${latencies.at(-1)!.toFixed(2)} ms`);
  await Promise.all([...new Set([a, b])].map((r) => r.close()));
  server.close();
  if (redisPid !== undefined) process.kill(redisPid);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
