import express from 'express';
import { sse } from 'express-sse-hub';
import { activeHeartbeatTimers } from '../src/heartbeat';
import { openStream, startServer, waitUntil, type TestServer } from './helpers/server';

describe('sse({ heartbeat })', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function serveIdle(heartbeat: number | false, busy = false): Promise<string> {
    const app = express();
    app.get('/events', sse({ heartbeat }), (_req, res) => {
      if (!busy) return;
      const timer = setInterval(() => res.sse.send('tick'), 10);
      res.sse.signal.addEventListener('abort', () => clearInterval(timer));
    });
    server = await startServer(app);
    return `${server.url}/events`;
  }

  describe('when the stream is idle', () => {
    it('sends keep-alive comments', async () => {
      const client = await openStream(await serveIdle(40));
      await client.waitForComments(3, 2000);
      expect(client.events).toEqual([]);
      expect(client.raw()).toMatch(/^(:\n\n){3,}$/);
      client.destroy();
    });
  });

  describe('when a stream writes just after a tick and then goes quiet', () => {
    it('is never silent for more than 1.25 times the interval', async () => {
      const interval = 200;
      const app = express();
      app.get('/events', sse({ heartbeat: interval }), (_req, res) => {
        // The worst moment for a timer that skips streams which wrote since its last tick.
        setTimeout(() => res.sse.send('once'), interval + 10);
      });
      server = await startServer(app);
      const client = await openStream(`${server.url}/events`);
      const arrivals: number[] = [performance.now()];
      client.response.on('data', () => arrivals.push(performance.now()));
      await new Promise((r) => setTimeout(r, interval * 7));
      client.destroy();
      const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
      expect(client.events.map((e) => e.data)).toEqual(['once']);
      expect(client.comments.length).toBeGreaterThanOrEqual(5);
      expect(Math.max(...gaps)).toBeLessThanOrEqual(interval * 1.25);
    });
  });

  describe('when the stream is busy', () => {
    it('sends no keep-alive, since events already keep it alive', async () => {
      const client = await openStream(await serveIdle(60, true));
      await client.waitForEvents(20, 2000);
      expect(client.comments).toEqual([]);
      client.destroy();
    });
  });

  describe('when heartbeat is false', () => {
    it('sends nothing and starts no timer', async () => {
      const client = await openStream(await serveIdle(false));
      await new Promise((r) => setTimeout(r, 100));
      expect(client.raw()).toBe('');
      expect(activeHeartbeatTimers()).toBe(0);
      client.destroy();
    });
  });

  describe('when many streams are open', () => {
    it('drives them all from one timer per sse() handler', async () => {
      const url = await serveIdle(30);
      const clients = await Promise.all(Array.from({ length: 20 }, () => openStream(url)));
      await Promise.all(clients.map((c) => c.waitForComments(2, 2000)));
      expect(activeHeartbeatTimers()).toBe(1);
      for (const c of clients) c.destroy();
    });
  });

  describe('when the last stream closes', () => {
    it('leaves no timer behind and lets the server close promptly', async () => {
      const url = await serveIdle(30);
      const client = await openStream(url);
      await client.waitForComments(1, 2000);
      client.destroy();
      await waitUntil(() => activeHeartbeatTimers() === 0, 'the heartbeat timer is cleared');
      const started = Date.now();
      await new Promise<void>((resolve) => server?.server.close(() => resolve()));
      expect(Date.now() - started).toBeLessThan(500);
      server = undefined;
    });
  });
});
