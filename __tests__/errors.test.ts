// Errors never escape: a server in its own process under --unhandled-rejections=strict (see
// fixtures/errors-server.cjs) meets a filter that throws, unserializable data through send() and
// broadcast(), a pipe() source that throws, and hundreds of clients that vanish mid-write (EPIPE,
// ECONNRESET). Each caller gets a clear error or the registry an `error` event; the process stays
// up and a healthy client misses nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { openStream, type TestStream } from './helpers/server';

jest.setTimeout(60_000);

let child: ChildProcess | undefined;
let base = '';
let stderr = '';
let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
const streams: TestStream[] = [];

beforeAll(async () => {
  child = spawn(process.execPath, ['--unhandled-rejections=strict', path.join(__dirname, 'fixtures', 'errors-server.cjs')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += String(chunk);
  });
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  const port = await new Promise<number>((resolve, reject) => {
    child!.once('error', reject);
    child!.stdout!.once('data', (chunk: Buffer) => resolve((JSON.parse(String(chunk)) as { port: number }).port));
  });
  base = `http://127.0.0.1:${port}`;
});

afterAll(() => {
  for (const s of streams) s.destroy();
  child?.kill('SIGTERM');
});

async function open(url: string): Promise<TestStream> {
  const s = await openStream(`${base}${url}`);
  streams.push(s);
  return s;
}

async function post(body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/broadcast`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function health(): Promise<{ up: boolean; registryErrors: string[]; subscribers: number }> {
  return (await (await fetch(`${base}/health`)).json()) as { up: boolean; registryErrors: string[]; subscribers: number };
}

/** A raw client that reads `bytes` of a fast stream and then vanishes, with a FIN or an RST. */
function vanish(bytes: number, reset: boolean): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(new URL(base).port), '127.0.0.1');
    let received = 0;
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
    socket.on('connect', () => socket.write('GET /firehose HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received < bytes || socket.destroyed) return;
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
    });
  });
}

it('survives every failure, tells each caller, and keeps a healthy client whole', async () => {
  const healthy = await open('/subscribe');
  const filtered = await open('/subscribe?filter=throws');
  for (let i = 0; i < 50 && (await health()).subscribers < 2; i += 1) await new Promise((r) => setTimeout(r, 20));

  // A filter that throws: reported on the registry, that subscriber skipped, the others served.
  expect(await post({ data: 'first' })).toEqual({ status: 200, json: { delivered: 1 } });
  expect((await healthy.waitForEvents(1))[0]?.data).toBe('first');
  expect(filtered.count()).toBe(0);

  // Unserializable data and a bad event name through broadcast(): the caller's promise rejects.
  expect(await post({ circular: true })).toEqual({ status: 400, json: { code: 'ERR_SSE_INVALID_DATA', name: 'TypeError' } });
  expect(await post({ data: 'x', event: 'a\nb' })).toEqual({ status: 400, json: { code: 'ERR_SSE_INVALID_EVENT', name: 'TypeError' } });

  // Through send(): the route catches a TypeError and the stream goes on.
  const circular = await open('/circular');
  await circular.ended;
  expect(circular.events).toEqual([{ event: 'caught', id: undefined, data: '{"code":"ERR_SSE_INVALID_DATA","name":"TypeError"}' }]);

  // A pipe() source that throws: what it yielded arrived, then pipe() rejected with its error.
  const piped = await open('/pipe-throws');
  await piped.ended;
  expect(piped.events.map((e) => [e.event, e.data])).toEqual([
    [undefined, 'one'],
    [undefined, 'two'],
    ['caught', 'upstream failed'],
  ]);

  // A route that answered while an async authorize hook was pending: the route's answer stands.
  const answered = await fetch(`${base}/answered-first`, { headers: { accept: 'text/event-stream' } });
  expect(answered.status).toBe(200);
  expect(await answered.text()).toBe('answered by the route');

  // 300 clients vanish mid-write, half with a FIN and half with an RST.
  await Promise.all(Array.from({ length: 300 }, (_, i) => vanish(64 * 1024, i % 2 === 0)));

  // Still up; the healthy client got every broadcast and nothing else.
  expect(await post({ data: 'last' })).toEqual({ status: 200, json: { delivered: 1 } });
  await healthy.waitForEvents(2);
  expect(healthy.events.map((e) => e.data)).toEqual(['first', 'last']);
  const after = await health();
  expect(after.up).toBe(true);
  expect(after.registryErrors).toEqual(['ERR_SSE_FILTER_FAILED', 'ERR_SSE_HEADERS_SENT', 'ERR_SSE_FILTER_FAILED']);
  expect(exited).toBeUndefined();
  expect(stderr).toBe('');
});
