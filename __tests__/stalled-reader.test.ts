// A reader that stops reading (a frozen tab, a stalled proxy) while its socket still holds data:
// what it costs is bounded in time as well as in bytes. The kernel's send buffer takes up to a few
// MiB before the process sees any backlog, and maxBufferedBytes counts only what comes after; the
// heartbeat drops a stream whose socket took nothing for STALL_INTERVALS intervals.
import net from 'node:net';
import express, { type Response } from 'express';
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
async function backedUpReader(heartbeat: number, chunks: number): Promise<{ registry: ChannelRegistry; socket: net.Socket; total: number; buffered: () => number }> {
  const registry = new ChannelRegistry({ maxBufferedBytes: 256 * 1024 * 1024 });
  const app = express();
  let response: Response | undefined;
  app.get('/feed', sse({ heartbeat }), (_req, res) => {
    response = res;
    registry.channel('feed').subscribe(res);
  });
  server = await startServer(app);
  const socket = await stalledReader(Number(new URL(server.url).port));
  await waitUntil(() => registry.channel('feed').size === 1, 'the reader subscribed');
  const chunk = 'x'.repeat(100 * 1024);
  for (let i = 0; i < chunks; i += 1) await registry.channel('feed').broadcast(chunk);
  return { registry, socket, total: chunks * chunk.length, buffered: () => response!.sse.bufferedBytes };
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
    // 1 MiB, pauses again. 24 MiB: the kernels' buffers on both ends take about 10, so the server
    // holds the rest for a dozen pauses, longer than 2 s in all but never 2 s without progress.
    // (Node hands all it holds to the kernel as one write, and counts none of it as sent until
    // the last byte is: progress within that write must count.)
    const PAUSE = 300;
    const BURST = 1024 * 1024;
    const { registry, socket, total, buffered } = await backedUpReader(1000, 240);
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
    let backedUpPauses = 0;
    while (received < total && !socket.destroyed) {
      if (buffered() > 0) backedUpPauses += 1;
      await new Promise((resolve) => setTimeout(resolve, PAUSE));
      wanted = Math.min(total, received + BURST);
      await new Promise<void>((resolve) => {
        wake = resolve;
        socket.resume();
      });
      bursts += 1;
    }
    // The server held data for longer than the stall window in all (else this proves nothing),
    // and the reader is still there, with everything, nothing dropped.
    expect(backedUpPauses * PAUSE).toBeGreaterThan(2 * 1000);
    expect(received).toBeGreaterThanOrEqual(total);
    expect(socket.destroyed).toBe(false);
    expect(registry.stats().dropped).toBe(0);
    expect(bursts).toBeGreaterThan(backedUpPauses);
    socket.destroy();
    await registry.close();
  }, 60_000);
});
