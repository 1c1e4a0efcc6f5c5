import { createDemoApp } from './app';

const port = Number(process.env.PORT ?? 3000);
const demo = createDemoApp();
const server = demo.app.listen(port, () => {
  console.log(`express-sse-hub demo: http://localhost:${port}`);
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: closing streams`);
  await demo.close();
  server.close(() => process.exit(0));
  // Idle keep-alive sockets must not hold the exit.
  server.closeIdleConnections();
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
