// A reader that stops reading (a frozen tab, a stalled proxy) while its socket still holds data:
// what it costs is bounded in time as well as in bytes. The kernel's send buffer takes up to a few
// MiB before the process sees any backlog, and maxBufferedBytes counts only what comes after; the
// heartbeat drops a stream whose socket took nothing for STALL_INTERVALS intervals.
import net from 'node:net';
import express from 'express';
import { ChannelRegistry, sse } from 'express-sse-hub';
import { STALL_INTERVALS } from '../src/stream/heartbeat';
import { startServer, waitUntil, type TestServer } from './helpers/server';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A client that sends its request, reads the response headers, then never reads again. */
function stalledReader(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /feed HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n'));
    socket.once('data', () => {
      socket.pause();
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

/**
 * A registry whose channel `feed` has a reader that stopped reading, sent `chunks` × 100 KiB.
 * maxBufferedBytes is far above that: only the stall rule can drop the reader.
 */
async function backedUpReader(heartbeat: number, chunks: number): Promise<{ registry: ChannelRegistry; socket: net.Socket; total: number }> {
  const registry = new ChannelRegistry({ maxBufferedBytes: 256 * 1024 * 1024 });
  const app = express();
  app.get('/feed', sse({ heartbeat }), (_req, res) => registry.channel('feed').subscribe(res));
  server = await startServer(app);
  const socket = await stalledReader(Number(new URL(server.url).port));
  await waitUntil(() => registry.channel('feed').size === 1, 'the reader subscribed');
  const chunk = 'x'.repeat(100 * 1024);
  for (let i = 0; i < chunks; i += 1) await registry.channel('feed').broadcast(chunk);
  return { registry, socket, total: chunks * chunk.length };
}

describe('a subscriber that stops reading', () => {
  it(`is dropped once its socket took nothing for ${STALL_INTERVALS} heartbeat intervals, below maxBufferedBytes`, async () => {
    // 8 MiB: more than the kernel's buffers on both ends take, so the rest waits in the process.
    const { registry, socket } = await backedUpReader(100, 80);
    await waitUntil(() => registry.stats().dropped === 1, 'the stalled reader was dropped', 20_000);
    expect(registry.stats().droppedBy['slow-client']).toBe(1);
    expect(registry.channel('feed').size).toBe(0);
    socket.destroy();
    await registry.close();
  });

  it('keeps a reader that takes its data in bursts, backed up for longer than that in all', async () => {
    // Stalled means taking nothing for 2 intervals (here 2 s). This reader pauses 300 ms, takes
    // 1 MiB, pauses again: 8 MiB take 8 pauses, 2.4 s backed up in all, never 2 s at a time.
    const PAUSE = 300;
    const BURST = 1024 * 1024;
    const { registry, socket, total } = await backedUpReader(1000, 80);
    let received = 0;
    let wanted = 0;
    let wake: (() => void) | undefined;
    socket.on('data', (data: Buffer) => {
      received += data.length;
      if (received < wanted) return;
      socket.pause();
      wake?.();
    });
    socket.on('close', () => wake?.());
    let bursts = 0;
    const started = performance.now();
    while (received < total && !socket.destroyed) {
      await new Promise((resolve) => setTimeout(resolve, PAUSE));
      wanted = Math.min(total, received + BURST);
      await new Promise<void>((resolve) => {
        wake = resolve;
        socket.resume();
      });
      bursts += 1;
    }
    // Backed up for longer than the stall window in all (a lower bound a busy machine keeps),
    // and still there with nothing dropped.
    expect(performance.now() - started).toBeGreaterThan(2 * 1000);
    expect(bursts).toBeGreaterThan(2);
    expect(socket.destroyed).toBe(false);
    expect(registry.stats().dropped).toBe(0);
    socket.destroy();
    await registry.close();
  }, 60_000);
});
