// Starts @durable-streams/server (the protocol's reference server, in memory) and prints its URL.
import { DurableStreamTestServer } from '@durable-streams/server';

const server = new DurableStreamTestServer({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
const url = await server.start();
console.log(url);
const stop = () => { void server.stop().then(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
