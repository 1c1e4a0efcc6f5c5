import { createDemoApp } from './app';

const port = Number(process.env.PORT ?? 3000);
const app = createDemoApp();
const server = app.listen(port, () => {
  console.log(`express-sse-hub demo: http://localhost:${port}`);
});

function shutdown(): void {
  server.closeAllConnections();
  server.close(() => process.exit(0));
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
