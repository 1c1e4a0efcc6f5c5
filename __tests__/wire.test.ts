// Exact bytes on the wire, and what happens to the TCP connection. These tests pin the behaviour
// of the transport (src/transport.ts), the one module that relies on Node's HTTP internals; CI
// runs this file on Node 20, 22 and 24.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import compression from 'compression';
import express from 'express';
import { ChannelRegistry, sse, type SseStream } from 'express-sse-hub';
import { startServer, waitUntil, type TestServer } from './helpers/server';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const PAYLOAD = 'event: e\nid: 1\ndata: one\ndata: two\n\n';
const COMMENT = ': c\n\n';
const UTF8 = 'data: ééé\n\n';

/** GET /events sends an event, a comment and a UTF-8 event, in one turn or one per turn, then closes. */
async function serveEvents(spread: boolean): Promise<string> {
  const app = express();
  app.get('/events', sse({ heartbeat: false }), (_req, res) => {
    const steps = [
      () => res.sse.send('one\ntwo', { event: 'e', id: 1 }),
      () => res.sse.comment('c'),
      () => res.sse.send('é'.repeat(3)),
      () => res.sse.close(),
    ];
    if (!spread) for (const step of steps) step();
    else {
      const next = (): void => {
        steps.shift()?.();
        if (steps.length > 0) setImmediate(next);
      };
      next();
    }
  });
  app.get('/after', (_req, res) => {
    res.json({ ok: true });
  });
  server = await startServer(app);
  return server.url;
}

/** Sends raw requests on one TCP connection and returns everything the server sent back. */
function rawExchange(url: string, request: string, until: (text: string) => boolean): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(request));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (until(text)) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

function chunk(text: string): string {
  return `${Buffer.byteLength(text).toString(16)}\r\n${Buffer.from(text).toString('latin1')}\r\n`;
}

const KEEP_ALIVE_REQUEST = 'GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n';

/** The chunks of a chunked body up to its last (empty) one, as UTF-8 text, and what follows. */
function readChunks(body: string): { chunks: string[]; rest: string } {
  const chunks: string[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    const size = Number.parseInt(body.slice(at, eol), 16);
    expect(body.slice(at, eol)).toMatch(/^[0-9a-f]+$/);
    const start = eol + 2;
    expect(body.slice(start + size, start + size + 2)).toBe('\r\n');
    if (size === 0) return { chunks, rest: body.slice(start + 2) };
    chunks.push(Buffer.from(body.slice(start, start + size), 'latin1').toString('utf8'));
    at = start + size + 2;
  }
}

function bodyOf(text: string): string {
  return text.slice(text.indexOf('\r\n\r\n') + 4);
}

describe('res.sse on the wire', () => {
  describe('when an HTTP/1.1 connection is kept alive after the stream ends', () => {
    it('joins what one turn sent into one exact chunk, so the next response on the socket parses', async () => {
      const url = await serveEvents(false);
      const text = await rawExchange(url, KEEP_ALIVE_REQUEST, (t) => t.includes('{"ok":true}'));
      expect(text.slice(0, text.indexOf('\r\n\r\n'))).toMatch(/transfer-encoding: chunked/i);
      expect(bodyOf(text).startsWith(`${chunk(PAYLOAD + COMMENT + UTF8)}0\r\n\r\nHTTP/1.1 200 OK`)).toBe(true);
    });

    it('frames what separate turns sent as exact chunks of whole frames', async () => {
      const url = await serveEvents(true);
      const text = await rawExchange(url, KEEP_ALIVE_REQUEST, (t) => t.includes('{"ok":true}'));
      // The first turn's frame leaves alone (nothing was written before, so nothing is held).
      // Whether later turns are joined depends on how long flushes take (at most 5 ms apart), so
      // those chunks are read, not predicted: each is exact and holds whole frames.
      const { chunks, rest } = readChunks(bodyOf(text));
      expect(chunks[0]).toBe(PAYLOAD);
      expect(chunks.join('')).toBe(PAYLOAD + COMMENT + UTF8);
      for (const c of chunks) expect(c.endsWith('\n\n')).toBe(true);
      expect(rest.startsWith('HTTP/1.1 200 OK')).toBe(true);
    });
  });

  describe('when one flush holds more than a write slice (64 Ki characters)', () => {
    /** GET /events sends `frames` in one turn, then closes. */
    async function serveFrames(frames: readonly string[]): Promise<string> {
      const app = express();
      app.get('/events', sse({ heartbeat: false }), (_req, res) => {
        for (const data of frames) res.sse.send(data);
        res.sse.close();
      });
      app.get('/after', (_req, res) => {
        res.json({ ok: true });
      });
      server = await startServer(app);
      return server.url;
    }

    it('ends every chunk where a frame ends, so even a client that reads a chunk as whole events gets whole events', async () => {
      // 300 events of 1 000 to 1 300 characters, some of them two-byte: about 350 KiB in one flush.
      const frames = Array.from({ length: 300 }, (_, i) => `${i}:${'é'.repeat(i % 7)}${'x'.repeat(1000 + ((i * 37) % 300))}`);
      const url = await serveFrames(frames);
      const text = await rawExchange(url, KEEP_ALIVE_REQUEST, (t) => t.includes('{"ok":true}'));
      const { chunks, rest } = readChunks(bodyOf(text));
      expect(chunks.length).toBeGreaterThan(4);
      for (const c of chunks) {
        expect(c.length).toBeLessThanOrEqual(64 * 1024);
        expect(c.endsWith('\n\n')).toBe(true);
      }
      expect(chunks.join('')).toBe(frames.map((data) => `data: ${data}\n\n`).join(''));
      expect(rest.startsWith('HTTP/1.1 200 OK')).toBe(true);
    });

    it('cuts a single frame longer than a slice where it must, never inside a surrogate pair', async () => {
      const big = `${'x'.repeat(64 * 1024 - 7)}${'😀'.repeat(5000)}`;
      const url = await serveFrames(['small', big, 'after']);
      const text = await rawExchange(url, KEEP_ALIVE_REQUEST, (t) => t.includes('{"ok":true}'));
      const { chunks } = readChunks(bodyOf(text));
      expect(chunks.join('')).toBe(`data: small\n\ndata: ${big}\n\ndata: after\n\n`);
      expect(chunks.some((c) => c.includes('\uFFFD'))).toBe(false);
    });
  });

  describe('when the client speaks HTTP/1.0', () => {
    it('sends an unchunked body that ends with the connection', async () => {
      const url = await serveEvents(true);
      const text = await rawExchange(url, 'GET /events HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n', () => false);
      expect(text).not.toMatch(/transfer-encoding/i);
      expect(bodyOf(text)).toBe(Buffer.from(PAYLOAD + COMMENT + UTF8).toString('latin1'));
    });
  });

  describe('when the request is HEAD', () => {
    it('answers with the stream headers and no body', async () => {
      const url = await serveEvents(false);
      const text = await rawExchange(url, 'HEAD /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n', () => false);
      expect(text).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(text).toMatch(/content-type: text\/event-stream/i);
      expect(text.endsWith('\r\n\r\n')).toBe(true);
      // The client asked to close: no keep-alive promised.
      expect(text).not.toMatch(/connection: keep-alive/i);
    });
  });

  describe('when compression() wraps res.write', () => {
    it('takes the generic path and still streams every event at once', async () => {
      const app = express();
      app.use(compression());
      app.get('/events', sse({ heartbeat: false }), (_req, res) => {
        res.sse.send('a');
        setTimeout(() => res.sse.send('b'), 20);
      });
      server = await startServer(app);
      const text = await rawExchange(server.url, 'GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAccept-Encoding: gzip\r\n\r\n', (t) =>
        t.includes('data: b'),
      );
      expect(text).not.toMatch(/content-encoding/i);
      expect(bodyOf(text)).toBe(`${chunk('data: a\n\n')}${chunk('data: b\n\n')}`);
    });
  });
});

// Sockets of the server's port in FIN-WAIT-1 (state 04 in /proc/net/tcp): closed by the server
// with data the peer never took, each holding its send buffer for as long as the peer lives.
function finWait1Sockets(port: number): number {
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let table: string;
    try {
      table = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of table.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4) continue;
      const localPort = Number.parseInt(fields[1]!.split(':')[1] ?? '', 16);
      if (localPort === port && fields[3] === '04') count += 1;
    }
  }
  return count;
}

describe('dropping a client that does not read', () => {
  it('resets the connection, leaving no socket in FIN-WAIT-1 and no backlog in the kernel', async () => {
    const registry = new ChannelRegistry({ maxBufferedBytes: 64 * 1024 });
    const app = express();
    const faces: SseStream[] = [];
    app.get('/events', sse({ heartbeat: false }), (_req, res) => {
      faces.push(res.sse);
      registry.subscribe(res, 'firehose');
    });
    server = await startServer(app);
    const port = Number(new URL(server.url).port);
    const dropped: { channel: string; stream: SseStream }[] = [];
    registry.on('client-dropped', (info) => dropped.push(info));
    // Raw sockets that send the request and never read a byte.
    const clients = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const socket = net.connect(port, '127.0.0.1', () => {
              socket.write('GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
              socket.pause();
              resolve(socket);
            });
            socket.on('error', () => undefined);
          }),
      ),
    );
    const channel = registry.channel('firehose');
    await waitUntil(() => channel.size === 5, 'all five subscribed');
    const payload = 'x'.repeat(16 * 1024);
    for (let i = 0; i < 2000 && dropped.length < 5; i += 1) {
      await channel.broadcast(payload);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(dropped).toHaveLength(5);
    // Each drop names the stream as the route knew it: its res.sse, nothing internal.
    expect(new Set(dropped.map((d) => d.stream))).toEqual(new Set(faces));
    expect(dropped.every((d) => d.channel === 'firehose' && d.stream.closed)).toBe(true);
    await waitUntil(() => channel.size === 0, 'every dropped client left the channel');
    // With a plain destroy() these would sit in FIN-WAIT-1, megabytes each, until the peers read.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(finWait1Sockets(port)).toBe(0);
    for (const socket of clients) socket.destroy();
    await registry.close();
  });
});

describe('NODE_DEBUG=express-sse-hub', () => {
  it('logs why the fast path was not taken and why a stream was refused', async () => {
    const script = `
      const express = require('express');
      const compression = require('compression');
      const http = require('node:http');
      const { sse } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const app = express();
      app.use(compression());
      app.get('/events', sse({ heartbeat: false, maxConnections: 1 }), (_req, res) => res.sse.send('x'));
      const server = app.listen(0, '127.0.0.1', () => {
        const url = 'http://127.0.0.1:' + server.address().port + '/events';
        http.get(url, { headers: { accept: 'text/event-stream' } }, (first) => {
          first.once('data', () => http.get(url, (second) => { second.resume(); second.on('end', () => process.exit(0)); }));
        });
      });`;
    const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, NODE_DEBUG: 'express-sse-hub' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(stderr).toMatch(/EXPRESS-SSE-HUB \d+: fast path not taken: res\.write is wrapped/);
    expect(stderr).toMatch(/EXPRESS-SSE-HUB \d+: refused a stream: 503/);
  });
});
