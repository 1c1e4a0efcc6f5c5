// @durable-streams/server, the protocol's reference server (in memory), for the benchmark and
// for comparing conformance. Prints `{"port":N}`, then serves until SIGTERM.
import { DurableStreamTestServer } from '@durable-streams/server';

async function main(): Promise<void> {
  const server = new DurableStreamTestServer({ port: 0, host: '127.0.0.1' });
  const url = await server.start();
  process.stdout.write(`${JSON.stringify({ port: Number(new URL(url).port) })}\n`);
  const stop = (): void => {
    void server.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
