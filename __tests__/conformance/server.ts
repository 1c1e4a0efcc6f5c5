// The server side of the ported conformance suites, as one Express app run on two ports (two
// origins of one site): the wpt `eventsource/resources/*` behaviours (message.py, status-*.py,
// last-event-id*.py, cors*.py, /common/redirect.py, the .event_stream templates) under
// /eventsource/, the `eventsource` package's test routes under /es/, and the page that runs the
// cases in Chromium. Written from the behaviour the cases expect; state the originals kept in
// cookies is kept here, per name, and reset before each case.
import fs from 'node:fs';
import path from 'node:path';
import express, { type Request, type Response } from 'express';
import { UNICODE_LINES } from './eventsource-package-cases';

const ROOT = path.join(__dirname, '..', '..');
const CLIENT_FILE = path.join(ROOT, 'dist', 'client', 'index.mjs');

/** State shared by both origins' apps. */
export interface ConformanceState {
  /** The other origin of each origin (set once both listen). */
  readonly other: Map<string, string>;
  /** Per-name state of the resources that kept it in cookies. */
  readonly names: Map<string, string>;
  /** The `eventsource` package's routes: connects per client id, redirects per id. */
  readonly connects: Map<string, number>;
  readonly redirects: Map<string, number>;
  /** Streams open now per bfcache-counter token. */
  readonly open: Map<string, number>;
  /** Every request's Last-Event-ID as the server read it (res.sse is not used here: raw bytes). */
  bundle: string;
}

export function conformanceState(): ConformanceState {
  return { other: new Map(), names: new Map(), connects: new Map(), redirects: new Map(), open: new Map(), bundle: '' };
}

/** Forgets what the cases before did. */
export function resetState(state: ConformanceState): void {
  state.names.clear();
  state.connects.clear();
  state.redirects.clear();
  state.open.clear();
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The query as wptserve reads it: percent-decoded, as UTF-8. */
function query(req: Request): URLSearchParams {
  return new URL(req.originalUrl, 'http://x').searchParams;
}

/** A header's bytes as sent (Node reads them as Latin-1). */
function headerBytes(req: Request, name: string): Buffer | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? Buffer.from(value, 'latin1') : undefined;
}

/** res.end(), ignoring a client already gone. */
function send(res: Response, status: number, headers: Record<string, string>, body: string | Buffer): void {
  res.writeHead(status, headers);
  res.end(body);
}

function eventsourceResources(state: ConformanceState): express.Router {
  const router = express.Router();

  const message = async (req: Request, res: Response): Promise<void> => {
    const q = query(req);
    const newline = q.get('newline') === 'none' ? '' : '\n\n';
    const sleepMs = Number(q.get('sleep') ?? '0');
    if (sleepMs > 0) await sleep(sleepMs);
    send(res, 200, { 'Content-Type': q.get('mime') ?? 'text/event-stream' }, `${q.get('message') ?? 'data: data'}${newline}\n`);
  };
  router.all('/resources/message.py', (req, res) => void message(req, res));

  router.get('/resources/message2.py', (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    const write = (): void => {
      for (const piece of ['data:msg', '\n', 'data: msg', '\n\n', ':', '\n', 'falsefield:msg', '\n\n', 'falsefield:msg', '\n', 'Data:data', '\n\n', 'data', '\n\n', 'data:end', '\n\n']) {
        res.write(piece);
      }
    };
    write();
    const timer = setInterval(write, 2000);
    res.on('close', () => clearInterval(timer));
  });

  router.get('/resources/last-event-id.py', (req, res) => {
    const lastEventId = headerBytes(req, 'last-event-id');
    if (lastEventId !== undefined && lastEventId.length > 0) {
      send(res, 200, { 'Content-Type': 'text/event-stream' }, Buffer.concat([Buffer.from('data: '), lastEventId, Buffer.from('\n\n')]));
    } else {
      send(res, 200, { 'Content-Type': 'text/event-stream' }, `id: ${query(req).get('idvalue') ?? '…'}\nretry: 200\ndata: hello\n\n`);
    }
  });

  // The current format-field-id-3.window.js: persists (1), resets with `id:` (2), with `id` (3).
  router.get('/resources/last-event-id2.py', (req, res) => {
    const bodies: Record<string, string> = {
      '1': 'id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata:3\n\ndata:4\n\n',
      '2': 'id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n',
      '3': 'id: 1\ndata: 1\n\nid\ndata:2\n\ndata:3\n\n',
    };
    send(res, 200, { 'Content-Type': 'text/event-stream' }, bodies[query(req).get('type') ?? '1'] ?? 'data: invalid_test\n\n');
  });

  router.get('/resources/reconnect-fail.py', (req, res) => {
    const name = `recon_fail_${query(req).get('id') ?? ''}`;
    const seen = state.names.get(name);
    const headers = { 'Content-Type': 'text/event-stream' };
    if (seen === 'opened') {
      state.names.set(name, 'reconnected');
      send(res, 200, headers, 'data: reconnected\n\n');
    } else if (seen === 'reconnected') {
      state.names.delete(name);
      send(res, 204, headers, '');
    } else {
      state.names.set(name, 'opened');
      send(res, 200, headers, 'retry: 2\ndata: opened\n\n');
    }
  });

  const statusReconnect = (req: Request, res: Response, extra: Record<string, string> = {}): void => {
    const q = query(req);
    const status = q.get('status') ?? '204';
    const name = `request${q.get('id') ?? status}`;
    const headers = { 'Content-Type': 'text/event-stream', ...extra };
    if (state.names.get(name) === status) {
      state.names.delete(name);
      send(res, 200, headers, 'data: data\n\n');
    } else {
      state.names.set(name, status);
      send(res, Number(status), headers, `retry: 2\n${q.has('ok_first') ? 'data: ok\n\n' : ''}`);
    }
  };
  router.get('/resources/status-reconnect.py', (req, res) => statusReconnect(req, res));

  router.get('/resources/status-error.py', (req, res) => {
    const status = query(req).get('status') ?? '404';
    // RFC 9110: no body with 204 or 205.
    send(res, Number(status), { 'Content-Type': 'text/event-stream' }, status === '204' || status === '205' ? '' : 'data: data\n\n');
  });

  // The .event_stream templates with ?pipe=sub: one request header as data.
  router.get('/resources/accept.event_stream', (req, res) => send(res, 200, { 'Content-Type': 'text/event-stream' }, `data: ${req.get('accept') ?? ''}\n\n`));
  const cacheControl = (req: Request, res: Response, extra: Record<string, string> = {}): void =>
    send(res, 200, { 'Content-Type': 'text/event-stream', ...extra }, `data: ${req.get('cache-control') ?? ''}\n\n`);
  router.get('/resources/cache-control.event_stream', (req, res) => cacheControl(req, res));

  router.all('/resources/cors.py', (req, res) => {
    const q = query(req);
    const cors = { 'Access-Control-Allow-Origin': q.get('origin') ?? req.get('origin') ?? '', 'Access-Control-Allow-Credentials': q.get('credentials') ?? 'true' };
    const run = q.get('run');
    if (run === 'cache-control') cacheControl(req, res, cors);
    else if (run === 'redirect') redirect(req, res, cors);
    else if (run === 'status-reconnect') statusReconnect(req, res, cors);
    else if (run === 'message') send(res, 200, { 'Content-Type': q.get('mime') ?? 'text/event-stream', ...cors }, 'data: data\n\n\n');
    else send(res, 200, cors, '');
  });

  router.all('/resources/cors-cookie.py', (req, res) => {
    const q = query(req);
    const lastEventId = req.get('last-event-id') ?? '';
    const ident = q.get('ident') ?? 'test';
    const cookies = (req.get('cookie') ?? '').split(/;\s*/).map((c) => c.split('=')[0]);
    const cookie = cookies.includes(ident) ? 'COOKIE' : 'NO_COOKIE';
    const origin = q.get('origin') ?? req.get('origin') ?? '';
    const credentials = q.get('credentials') ?? 'true';
    if (origin !== 'none') res.setHeader('Access-Control-Allow-Origin', origin);
    if (credentials !== 'none') res.setHeader('Access-Control-Allow-Credentials', credentials);
    if (lastEventId === '') {
      res.setHeader('Set-Cookie', `${ident}=COOKIE; Path=/`);
      send(res, 200, { 'Content-Type': 'text/event-stream' }, `id: 1\nretry: 200\ndata: first ${cookie}\n\n`);
    } else if (lastEventId === '1') {
      res.setHeader('Set-Cookie', `${ident}=COOKIE; Path=/; Expires=Fri, 27 Jul 2001 00:00:00 GMT`);
      send(res, 200, { 'Content-Type': 'text/event-stream' }, `id: 2\ndata: second ${cookie}\n\n`);
    } else send(res, 200, { 'Content-Type': 'stop' }, `data: ${lastEventId}${cookie}\n\n`);
  });

  // eventsource-cross-origin-preflight.window.js: was there a preflight before the reconnect?
  router.all('/resources/cors-unsafe-last-event-id.py', (req, res) => {
    const q = query(req);
    const origin = req.get('origin');
    const asked = req.get('access-control-request-headers');
    if (origin !== undefined) res.setHeader('Access-Control-Allow-Origin', origin);
    if (asked !== undefined) res.setHeader('Access-Control-Allow-Headers', asked);
    const fixture = q.get('fixture');
    const token = q.get('token');
    if (token === null || fixture === null) {
      send(res, 400, { 'Content-Type': 'text/plain' }, 'ERROR: `token` and `fixture` query parameters!');
      return;
    }
    const ids: Record<string, string> = { safe: 'abc', unsafe: 'e5p3n<3k0k0s', long: 'a'.repeat(255) };
    const lastEventId = req.get('last-event-id') ?? '';
    const expectPreflight = fixture === 'unsafe' || fixture === 'long';
    if (req.method === 'OPTIONS') {
      state.names.set(`preflight ${token}`, asked ?? '');
      send(res, 200, {}, '');
      return;
    }
    const headers = { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' };
    if (lastEventId === '') {
      const id = ids[fixture];
      send(res, 200, headers, id === undefined ? 'event: failure\ndata: unknown fixture\n\n' : `id: ${id}\nretry: 200\ndata: ${fixture}\n\n`);
      return;
    }
    const preflight = state.names.get(`preflight ${token}`);
    state.names.delete(`preflight ${token}`);
    let failure: string | undefined;
    if (preflight !== undefined && !expectPreflight) failure = 'saw preflight, did not expect one';
    else if (preflight === undefined && expectPreflight) failure = 'expected preflight, did not get one';
    else if (preflight !== undefined && preflight.toLowerCase() !== 'last-event-id') failure = 'preflight `access-control-request-headers` was not `last-event-id`';
    const expected = ids[fixture] ?? '<unknown>';
    if (failure === undefined && lastEventId !== expected) failure = `got ${lastEventId}, expected ${expected}`;
    send(res, 200, headers, failure === undefined ? `event: success\ndata: got ${lastEventId}\n\n` : `event: failure\ndata: ${failure}\n\n`);
  });

  // Counts the open streams per token (eventsource-bfcache.window.js).
  router.get('/resources/bfcache-counter.py', (req, res) => {
    const q = query(req);
    const token = q.get('token') ?? '';
    if (q.has('query')) {
      send(res, 200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }, JSON.stringify({ count: state.open.get(token) ?? 0 }));
      return;
    }
    state.open.set(token, (state.open.get(token) ?? 0) + 1);
    res.on('close', () => state.open.set(token, (state.open.get(token) ?? 1) - 1));
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('data: open\n\n');
  });

  // The frame page of the multi-window and realm cases: its own EventSource, and the client.
  router.get('/resources/init.htm', (_req, res) => {
    res.type('html').send(`<!doctype html><meta charset="utf-8"><script type="module">
      import { EventSource } from '/client.js';
      window.HubEventSource = EventSource;
      window.ready = true;
    </script>`);
  });

  // The page the cases run in, in the eventsource/ directory as in wpt.
  router.get('/conformance.html', (_req, res) => {
    res.type('html').send(`<!doctype html><meta charset="utf-8"><title>conformance</title><body><script type="module">
      import * as client from '/client.js';
      window.hubModule = client;
      await import('/eventsource/conformance.js');
      window.ready = true;
    </script></body>`);
  });
  router.get('/conformance.js', (_req, res) => res.type('text/javascript').send(state.bundle));
  // eventsource-bfcache.window.js: a page holding one stream to bfcache-counter.py.
  router.get('/bfcache.html', (req, res) => {
    const q = query(req);
    const impl = q.get('impl') === 'native' ? 'EventSource' : 'client.EventSource';
    res.type('html').send(`<!doctype html><meta charset="utf-8"><body><script type="module">
      import * as client from '/client.js';
      window.source = new ${impl}('resources/bfcache-counter.py?token=${encodeURIComponent(q.get('token') ?? '')}');
    </script></body>`);
  });
  router.get('/elsewhere.html', (_req, res) => res.type('html').send('<!doctype html><meta charset="utf-8"><p>another page'));
  return router;
}

/** /common/redirect.py: `status` (default 302) to `location`. */
function redirect(req: Request, res: Response, extra: Record<string, string> = {}): void {
  const q = query(req);
  send(res, Number(q.get('status') ?? '302'), { Location: q.get('location') ?? '', 'Content-Type': 'text/plain', ...extra }, '');
}

/** The `eventsource` package's test routes (its test/server.ts), under /es/. */
function eventsourcePackageRoutes(state: ConformanceState, origin: () => string): express.Router {
  const router = express.Router();
  const stream = (res: Response, extra: Record<string, string> = {}): void => {
    res.socket?.setNoDelay(true);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', ...extra });
  };
  // As eventsource-encoder 1.0.0 (which the suite was written with) encodes: empty data is no
  // data line at all, so { retry: 50, data: '' } sets the reconnection time and fires nothing.
  const frame = (fields: { event?: string; data: string; id?: string; retry?: number }): string =>
    `${fields.event === undefined ? '' : `event: ${fields.event}\n`}${fields.retry === undefined ? '' : `retry: ${fields.retry}\n`}${fields.id === undefined ? '' : `id: ${fields.id}\n`}${fields.data
      .split('\n')
      .filter((line, _i, lines) => line !== '' || lines.length > 1)
      .map((line) => `data: ${line}\n`)
      .join('')}\n`;
  const lastEventId = (req: Request): string | undefined => req.get('last-event-id');

  router.get('/', (_req, res) => {
    stream(res);
    res.write(frame({ event: 'welcome', data: 'Hello, world!' }));
    res.write(':\n');
  });

  router.get('/counter', async (req, res) => {
    stream(res);
    const event = query(req).get('event');
    res.write(frame({ retry: 50, data: '' }));
    let counter = Number.parseInt(lastEventId(req) ?? '0', 10);
    for (let i = 0; i < 3; i += 1) {
      counter += 1;
      res.write(frame({ ...(event === '' ? {} : { event: event ?? 'counter' }), data: `Counter is at ${counter}`, id: `${counter}` }));
      await sleep(5);
    }
    res.end();
  });

  router.get('/identified', (req, res) => {
    const q = query(req);
    const clientId = q.get('client-id');
    if (clientId === null) {
      send(res, 400, { 'Content-Type': 'application/json' }, JSON.stringify({ error: 'Missing "id" or "client-id" query parameter' }));
      return;
    }
    if ((req.get('accept') ?? '').includes('text/event-stream')) {
      state.connects.set(clientId, (state.connects.get(clientId) ?? 0) + 1);
      stream(res);
      res.write(frame({ data: '', retry: 250 }));
      res.write(frame({ data: `${state.connects.get(clientId)}` }));
      if (q.get('auto-close') !== null) res.end();
      return;
    }
    send(res, 200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' }, JSON.stringify({ clientIdConnects: state.connects.get(clientId) ?? 0 }));
  });

  router.get('/end-after-one', (req, res) => {
    const last = lastEventId(req);
    res.writeHead(last ? 204 : 200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    if (!last) {
      res.write(frame({ retry: 50, data: '' }));
      res.write(frame({ event: 'progress', data: '100%', id: 'prct-100' }));
    }
    res.end();
  });

  router.get('/slow-connect', async (_req, res) => {
    await sleep(200);
    stream(res);
    res.write(frame({ event: 'welcome', data: 'That was a slow connect, was it not?' }));
    res.end();
  });

  router.all('/debug', async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    stream(res);
    res.write(frame({ event: 'debug', data: JSON.stringify({ method: req.method, headers: req.headers, bodyLength: Buffer.concat(chunks).length }) }));
    res.end();
  });

  router.get('/unicode', async (_req, res) => {
    stream(res);
    res.write(frame({ event: 'welcome', data: 'Connected - I will now send some chonks (cuter chunks) with unicode' }));
    res.write(frame({ event: 'unicode', data: UNICODE_LINES[0] }));
    await sleep(100);
    res.write('event: unicode\ndata: ');
    // "Espen ❤️ Kokos" split inside a character: [..., 226, 153] then [165, ...]
    res.write(new Uint8Array([69, 115, 112, 101, 110, 32, 226, 153]));
    await sleep(1000);
    res.write(new Uint8Array([165, 32, 75, 111, 107, 111, 115]));
    res.write('\n\n\n\n');
    res.write(frame({ event: 'disconnect', data: 'Thanks for listening' }));
    res.end();
  });

  router.get('/redirect', (req, res) => {
    const q = query(req);
    const id = q.get('id');
    if (id === null) {
      send(res, 400, { 'Content-Type': 'application/json' }, JSON.stringify({ error: 'Missing "id" query parameter' }));
      return;
    }
    state.redirects.set(id, (state.redirects.get(id) ?? 0) + 1);
    const url = new URL(req.originalUrl, origin());
    const target = `/es/redirect-target?from=${encodeURIComponent(url.href)}&id=${id}`;
    const status = Number(q.get('status') ?? '301');
    send(res, status, { 'Cache-Control': 'no-cache', Location: q.get('cors') === 'true' ? `${state.other.get(origin())}${target}` : target }, '');
  });

  router.all('/redirect-target', async (req, res) => {
    const q = query(req);
    const requestOrigin = req.get('origin');
    const cors: Record<string, string> = requestOrigin === undefined ? {} : { 'Access-Control-Allow-Origin': requestOrigin, 'Access-Control-Allow-Credentials': 'true' };
    const asked = req.get('access-control-request-headers');
    if (asked !== undefined) cors['Access-Control-Allow-Headers'] = asked;
    if (req.method === 'OPTIONS') {
      send(res, 204, cors, '');
      return;
    }
    stream(res, cors);
    res.write(frame({ retry: 25, data: JSON.stringify({ origin: origin(), from: q.get('from'), redirects: state.redirects.get(q.get('id') ?? '') ?? 0, auth: req.get('authorization') ?? null }) }));
    for (let i = 0; i < 20 && !res.destroyed; i += 1) {
      await sleep(20);
      res.write(':\n');
    }
    res.end();
  });

  router.all('/cors', (req, res) => {
    const requestOrigin = req.get('origin');
    stream(res, requestOrigin === undefined ? {} : { 'Access-Control-Allow-Origin': requestOrigin });
    res.write(frame({ event: 'origin', data: requestOrigin ?? '<none>' }));
    res.end();
  });

  router.all('/authed', (req, res) => {
    const headers = { 'Access-Control-Allow-Origin': req.get('origin') ?? '*', 'Access-Control-Allow-Credentials': 'true', 'Cache-Control': 'no-cache' };
    if (req.method === 'OPTIONS') {
      send(res, 204, headers, '');
      return;
    }
    stream(res, headers);
    res.write(frame({ event: 'authInfo', data: JSON.stringify({ cookies: req.get('cookie') ?? '' }) }));
    res.end();
  });
  return router;
}

/** One origin's app. `origin()` is where it listens. */
export function conformanceApp(state: ConformanceState, origin: () => string): express.Express {
  const app = express();
  app.get('/client.js', (_req, res) => res.type('text/javascript').send(fs.readFileSync(CLIENT_FILE)));
  app.all('/common/redirect.py', (req, res) => redirect(req, res));
  app.use('/eventsource', eventsourceResources(state));
  app.use('/es', eventsourcePackageRoutes(state, origin));
  return app;
}
