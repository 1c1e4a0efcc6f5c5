import { Cluster } from 'ioredis';
import { ChannelRegistry, MemoryAdapter } from 'express-sse-hub';
import type { Adapter } from 'express-sse-hub/adapter';
import { RedisAdapter, createRedisAdapter } from 'express-sse-hub/redis';
import { createDemoApp, parseTrustProxy } from './app';

/** Most sockets the demo keeps open at once, over every route; more are closed on accept. */
const MAX_SOCKETS = 20_000;

/** Milliseconds between checks that the process that started the server is still there. */
const PARENT_CHECK_MS = 1000;

/** REDIS_CLUSTER=host:port,host:port,… (a Redis Cluster), else REDIS_URL (one Redis), else memory. */
async function adapterFromEnv(): Promise<{ adapter: Adapter | undefined; where: string }> {
  const cluster = process.env.REDIS_CLUSTER;
  if (cluster !== undefined && cluster !== '') {
    const nodes = cluster.split(',').map((node) => {
      const [host = '127.0.0.1', port = '6379'] = node.trim().split(':');
      return { host, port: Number(port) };
    });
    const client = new Cluster(nodes);
    return { adapter: await RedisAdapter.connect({ client }), where: ` (channels shared through the Redis Cluster at ${cluster})` };
  }
  const url = process.env.REDIS_URL;
  if (url !== undefined && url !== '') {
    return { adapter: await createRedisAdapter({ url }), where: ` (channels shared through ${url.replace(/\/\/[^@/]*@/, '//***@')})` };
  }
  return { adapter: undefined, where: '' };
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  const { adapter = new MemoryAdapter(), where } = await adapterFromEnv();
  const registry = new ChannelRegistry({ history: 200, historyTtl: 60 * 60 * 1000, adapter });
  registry.on('error', (error) => console.error(`[express-sse-hub] ${error.message}`));
  const demo = createDemoApp({ registry, adapter, trustProxy: parseTrustProxy(process.env.TRUST_PROXY) });
  const server = demo.app.listen(port);
  // One cap over every route (each stream route has its own limits too): file descriptors run out
  // long before this many sockets would be a problem for the process otherwise.
  server.maxConnections = MAX_SOCKETS;
  server.once('listening', () => console.log(`express-sse-hub demo: http://localhost:${port}${where}`));
  server.once('error', (error: NodeJS.ErrnoException) => {
    console.error(error.code === 'EADDRINUSE' ? `port ${port} is already in use: stop what runs there or start with PORT=<another port>` : error.message);
    process.exit(1);
  });

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: closing streams`);
    // Never wait for ever: whatever still runs after 5 s is cut.
    setTimeout(() => process.exit(0), 5000).unref();
    // Stop accepting first: a client that reconnects at once must reach another process, not
    // this one on its way out (which would answer 503, and EventSource gives up on a 503).
    server.close(() => process.exit(0));
    try {
      await demo.close();
    } catch (error) {
      console.error(`closing the demo failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      // Idle keep-alive sockets must not hold the exit.
      server.closeIdleConnections();
    }
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  // `npm start` execs the server, so a signal to npm's child reaches it; npm itself may still exit
  // on a signal without passing it on. Then this process is adopted by another: shut down too,
  // rather than keep the port as an orphan.
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    void shutdown('parent process exited');
  }, PARENT_CHECK_MS);
  watch.unref();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
