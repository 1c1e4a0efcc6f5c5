import cors from 'cors';
import express from 'express';
import { sse } from 'express-sse-hub';
import { activeHeartbeatTimers } from '../src/stream/heartbeat';
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
    it('sends keep-alive comments, each a comment line alone (no blank line some clients read as an empty event)', async () => {
      const client = await openStream(await serveIdle(40));
      await client.waitForComments(3, 2000);
      expect(client.events).toEqual([]);
      expect(client.raw()).toMatch(/^(:\n){3,}$/);
      client.destroy();
    });
  });

  describe('when a stream opens', () => {
    it('announces the interval in the SSE-Heartbeat-Interval header', async () => {
      const client = await openStream(await serveIdle(1234));
      expect(client.response.headers['sse-heartbeat-interval']).toBe('1234');
      // Same-origin (no CORS header): nothing to expose.
      expect(client.response.headers['access-control-expose-headers']).toBeUndefined();
      client.destroy();
    });

    it('announces nothing with heartbeat: false', async () => {
      const client = await openStream(await serveIdle(false));
      expect(client.response.headers['sse-heartbeat-interval']).toBeUndefined();
      client.destroy();
    });

    it.each([
      ['no exposed headers', {}, 'SSE-Heartbeat-Interval'],
      ['its own exposed headers', { exposedHeaders: ['X-Request-Id'] }, 'X-Request-Id, SSE-Heartbeat-Interval'],
      ['the header already exposed', { exposedHeaders: ['sse-heartbeat-interval'] }, 'sse-heartbeat-interval'],
    ])('exposes it to a cross-origin fetch when the cors package allows the origin (%s)', async (_name, options, exposed) => {
      const app = express();
      app.use(cors({ origin: 'http://app.example', ...options }));
      app.get('/events', sse({ heartbeat: 500 }), () => undefined);
      server = await startServer(app);
      const client = await openStream(`${server.url}/events`, { headers: { origin: 'http://app.example' } });
      expect(client.response.headers['access-control-expose-headers']).toBe(exposed);
      expect(client.response.headers['sse-heartbeat-interval']).toBe('500');
      client.destroy();
    });
  });

  describe('when a stream writes just after a tick and then goes quiet', () => {
    it('is never silent for longer than the interval (and pings no sooner than 3/4 of it)', async () => {
      // Timers and clocks are fake (sockets are not): the silences are measured on the clock that
      // drives the heartbeat, exactly, whatever else the machine is doing.
      jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'hrtime'] });
      try {
        const interval = 200;
        const writes: { at: number; ping: boolean }[] = [];
        const app = express();
        app.get('/events', sse({ heartbeat: interval }), (_req, res) => {
          const socket = res.socket!;
          const write = socket.write.bind(socket);
          socket.write = ((...args: Parameters<typeof write>) => {
            writes.push({ at: Date.now(), ping: /^(?:[0-9a-f]+\r\n)?:\n(?:\r\n)?$/.test(String(args[0])) });
            return write(...args);
          }) as typeof socket.write;
          // The worst moment for a timer that skips streams which wrote since its last tick.
          setTimeout(() => res.sse.send('once'), interval + 10);
        });
        server = await startServer(app);
        const client = await openStream(`${server.url}/events`);
        const opened = Date.now();
        const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
        for (let ms = 0; ms < interval * 8; ms += 1) {
          jest.advanceTimersByTime(1);
          await turn();
        }
        await client.waitForComments(5);
        client.destroy();
        expect(client.events.map((e) => e.data)).toEqual(['once']);
        const after = [{ at: opened, ping: false }, ...writes.filter((w) => w.at > opened)];
        const silences = after.slice(1).map((w, i) => ({ ms: w.at - after[i]!.at, ping: w.ping }));
        expect(silences.filter((s) => s.ping).length).toBeGreaterThanOrEqual(6);
        expect(Math.max(...silences.map((s) => s.ms))).toBeLessThanOrEqual(interval);
        // A ping ends a silence of at least 3/4 of the interval: no needless pings.
        expect(Math.min(...silences.filter((s) => s.ping).map((s) => s.ms))).toBeGreaterThanOrEqual(interval * 0.75);
      } finally {
        jest.useRealTimers();
      }
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
      await new Promise<void>((resolve) => server?.server.close(() => resolve()));
      server = undefined;
    });
  });
});
