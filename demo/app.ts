import path from 'node:path';
import express, { type Express } from 'express';
import { sse } from 'express-sse-hub';

export const PUBLIC_DIR = path.join(__dirname, '..', 'public');

/** Builds the demo app; exported so tests can mount it on their own server. */
export function createDemoApp(): Express {
  const app = express();
  app.use(express.static(PUBLIC_DIR));
  app.use(sse());

  // The first seed's stream: a `connected` event, then the current date every 5 s.
  app.get('/subscribe', (_req, res) => {
    let counter = 0;
    res.sse.send('You are now subscribed!', { event: 'connected', id: counter });
    const timer = setInterval(() => {
      counter += 1;
      res.sse.send(new Date().toLocaleString(), { event: 'current-date', id: counter });
    }, 5000);
    res.sse.signal.addEventListener('abort', () => clearInterval(timer));
  });

  return app;
}
