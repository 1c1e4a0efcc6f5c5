import { ChannelRegistry } from 'express-sse-hub';
import { createRedisAdapter } from 'express-sse-hub/redis';
import { createDemoApp } from './app';

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  const redisUrl = process.env.REDIS_URL;
  // REDIS_URL shares channels, history and replay with every demo process on the same Redis.
  const adapter = redisUrl === undefined ? undefined : await createRedisAdapter({ url: redisUrl });
  const registry = new ChannelRegistry({ history: 200, adapter });
  registry.on('error', (error) => console.error(`[express-sse-hub] ${error.message}`));
  const demo = createDemoApp({ registry });
  const server = demo.app.listen(port, () => {
    console.log(`express-sse-hub demo: http://localhost:${port}${redisUrl === undefined ? '' : ` (channels shared through ${redisUrl.replace(/\/\/[^@/]*@/, '//***@')})`}`);
  });

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: closing streams`);
    await demo.close();
    server.close(() => process.exit(0));
    // Idle keep-alive sockets must not hold the exit.
    server.closeIdleConnections();
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
