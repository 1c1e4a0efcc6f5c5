import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import compression from 'compression';
import { EventSource } from 'eventsource';
import { sse } from 'express-sse-hub';
import { EXPRESS_VERSIONS, openStream, startServer, type TestServer } from './helpers/server';

describe.each(EXPRESS_VERSIONS)('compatibility on %s', (_version, express) => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  describe('when compression() runs in front of sse()', () => {
    it('delivers each event as it is sent, uncompressed', async () => {
      const app = express();
      app.use(compression({ threshold: 0 }));
      let release: () => void = () => undefined;
      const secondMayGo = new Promise<void>((resolve) => (release = resolve));
      app.get('/events', sse({ heartbeat: false }), (_req, res) => {
        res.sse.send('first');
        void secondMayGo.then(() => {
          res.sse.send('second');
          res.sse.close();
        });
      });
      server = await startServer(app);
      const client = await openStream(`${server.url}/events`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
      // The first event must arrive while the server is still holding the second back.
      const [first] = await client.waitForEvents(1, 2000);
      expect(first?.data).toBe('first');
      expect(client.response.headers['content-encoding']).toBeUndefined();
      release();
      await client.ended;
      expect(client.events.map((e) => e.data)).toEqual(['first', 'second']);
    });

    it('still compresses ordinary routes', async () => {
      const app = express();
      app.use(compression({ threshold: 0 }));
      app.use(sse());
      app.get('/json', (_req, res) => {
        res.json({ text: 'x'.repeat(2000) });
      });
      server = await startServer(app);
      const response = await fetch(`${server.url}/json`, { headers: { 'accept-encoding': 'gzip' } });
      expect(response.headers.get('content-encoding')).toBe('gzip');
      await response.text();
    });
  });

  describe('when the client is the eventsource package', () => {
    it('receives named events and reconnects with Last-Event-ID', async () => {
      const app = express();
      const seenLastIds: (string | undefined)[] = [];
      app.get('/events', sse({ heartbeat: false, retry: 50 }), (_req, res) => {
        seenLastIds.push(res.sse.lastEventId);
        const next = Number(res.sse.lastEventId ?? 0) + 1;
        res.sse.send({ n: next }, { event: 'count', id: next });
        // End the connection after one event so the client has to reconnect.
        setTimeout(() => res.sse.close(), 20);
      });
      server = await startServer(app);
      const source = new EventSource(`${server.url}/events`);
      const received: string[] = [];
      await new Promise<void>((resolve, reject) => {
        source.addEventListener('count', (event) => {
          received.push(`${event.lastEventId}:${event.data}`);
          if (received.length === 3) resolve();
        });
        setTimeout(() => reject(new Error(`only got ${received.join(', ')}`)), 5000);
      });
      source.close();
      expect(received).toEqual(['1:{"n":1}', '2:{"n":2}', '3:{"n":3}']);
      expect(seenLastIds.slice(0, 3)).toEqual([undefined, '1', '2']);
    });
  });
});

describe('sse() over HTTP/2 (node:http2 with allowHTTP1)', () => {
  interface Reply {
    headers: Record<string, unknown>;
    body: string;
  }
  let result: { h2: Reply; h1: Reply; warnings: string[] };

  beforeAll(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sse-h2-'));
    try {
      const keyFile = path.join(dir, 'key.pem');
      const certFile = path.join(dir, 'cert.pem');
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1',
      ], { stdio: 'ignore' });
      // Express cannot sit on node:http2, but sse() is plain (req, res, next) middleware. The
      // check runs in a child process against the built package, where Node's warnings are seen.
      const output = execFileSync(process.execPath, [path.join(__dirname, 'fixtures', 'h2-check.cjs'), keyFile, certFile], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      result = JSON.parse(output) as typeof result;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('streams events to an HTTP/2 client', () => {
    expect(result.h2.headers[':status']).toBe(200);
    expect(result.h2.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(result.h2.body).toBe('event: hello\nid: 1\ndata: over h2\n\n');
  });

  it('sets no Connection header, so Node prints no warning', () => {
    expect(result.h2.headers.connection).toBeUndefined();
    expect(result.warnings).toEqual([]);
  });

  it('still sends Connection: keep-alive to an HTTP/1.1 client on the same server', () => {
    expect(result.h1.headers.connection).toBe('keep-alive');
    expect(result.h1.body).toBe('event: hello\nid: 1\ndata: over h2\n\n');
  });
});
