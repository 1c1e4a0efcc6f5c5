// res.sse.pipe() must run in constant memory: an LLM answer or a log tail can be millions of
// chunks long. A million chunks go through a real socket to a client that reads them all, and the
// heap after a full GC may not grow by 5 MB between the first hundred thousand and the end.
// (It needs --expose-gc, which `npm test` passes; without it the test is skipped with a message.)
import http from 'node:http';
import express from 'express';
import { sse } from 'express-sse-hub';
import { startServer, type TestServer } from './helpers/server';
import { report } from './helpers/report';

const CHUNKS = 1_000_000;
const WARM_UP = 100_000;
const gc = (globalThis as { gc?: () => void }).gc;

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

(gc === undefined ? it.skip : it)(
  `pipes ${CHUNKS.toLocaleString('en')} chunks with less than 5 MB of heap growth`,
  async () => {
    const heap = (): number => {
      gc!();
      return process.memoryUsage().heapUsed;
    };
    let atWarmUp = 0;
    let atEnd = 0;
    let piped: boolean | undefined;
    const app = express();
    app.get('/tokens', sse({ heartbeat: false }), async (_req, res) => {
      // Yields without awaiting: the fastest source, and the worst case for memory.
      // eslint-disable-next-line @typescript-eslint/require-await
      async function* tokens(): AsyncGenerator<string> {
        for (let i = 1; i <= CHUNKS; i += 1) {
          if (i === WARM_UP) atWarmUp = heap();
          yield 'tok';
        }
        atEnd = heap();
      }
      piped = await res.sse.pipe(tokens(), { event: 't' });
      res.sse.close();
    });
    server = await startServer(app);
    // A client that reads everything and counts the events, keeping nothing. Node's HTTP client
    // takes the chunked encoding off (a chunk may end inside a frame: HTTP allows it).
    const received = await new Promise<number>((resolve, reject) => {
      const request = http.get(`${server!.url}/tokens`, { headers: { accept: 'text/event-stream' }, agent: false }, (response) => {
        let count = 0;
        let tail = '';
        response.setEncoding('latin1');
        response.on('data', (text: string) => {
          const all = tail + text;
          let at = all.indexOf('data: tok\n');
          let last = 0;
          while (at !== -1) {
            count += 1;
            last = at + 10;
            at = all.indexOf('data: tok\n', last);
          }
          tail = all.slice(Math.max(last, all.length - 16));
        });
        response.on('end', () => resolve(count));
        response.on('error', reject);
      });
      request.on('error', reject);
    });
    const growth = atEnd - atWarmUp;
    report(`pipe: ${CHUNKS} chunks, heap ${(atWarmUp / 1048576).toFixed(1)} MB -> ${(atEnd / 1048576).toFixed(1)} MB`);
    expect(piped).toBe(true);
    expect(received).toBe(CHUNKS);
    expect(growth).toBeLessThan(5 * 1024 * 1024);
  },
  120_000,
);
