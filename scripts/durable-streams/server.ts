// A server for the conformance suite and the benchmark: express-sse-hub's Durable Streams router
// at /v1/stream on 127.0.0.1, on memory, on Redis (REDIS_URL) or on a Redis Cluster
// (REDIS_CLUSTER: comma-separated host:port of its nodes). Prints `{"port":N}` (bench/process.ts
// startServer reads it), then serves until SIGTERM.
//
//   node --import tsx scripts/durable-streams/server.ts
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Cluster } from 'ioredis';
import { MemoryAdapter } from '../../src/index';
import type { Adapter } from '../../src/adapters/adapter';
import { RedisAdapter } from '../../src/adapters/redis';
import { durableStreams } from '../../src/durable-streams/index';

async function adapterFromEnvironment(): Promise<Adapter> {
  const cluster = process.env.REDIS_CLUSTER;
  if (cluster !== undefined && cluster !== '') {
    const nodes = cluster.split(',').map((node) => {
      const [host, port] = node.split(':');
      return { host: host!, port: Number(port) };
    });
    return RedisAdapter.connect({ client: new Cluster(nodes, { redisOptions: { commandTimeout: 5000 } }) });
  }
  const url = process.env.REDIS_URL;
  if (url !== undefined && url !== '') return RedisAdapter.connect({ url });
  return new MemoryAdapter();
}

async function main(): Promise<void> {
const adapter = await adapterFromEnvironment();
const streams = durableStreams({ adapter, maxBodyBytes: 4 * 1024 * 1024 });
const app = express();
app.use('/v1/stream', streams);
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
const stop = (): void => {
  server.closeAllConnections();
  server.close(() => {
    void streams.close().then(() => adapter.close()).then(() => process.exit(0));
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
}

void main();
