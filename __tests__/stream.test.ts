import { Readable } from 'node:stream';
import type { Express, Response } from 'express';
import { sse, type SseStream } from 'express-sse-hub';
import { EXPRESS_VERSIONS, openStream, startServer, waitUntil, type TestServer } from './helpers/server';

describe.each(EXPRESS_VERSIONS)('res.sse on %s', (_version, express) => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  /** Serves `route` at GET /events and hands each server-side stream to the test. */
  async function serve(route: (res: Response) => void, app: Express = express()): Promise<string> {
    app.all('/events', sse({ heartbeat: false }), (_req, res) => route(res));
    server = await startServer(app);
    return `${server.url}/events`;
  }

  /** Resolves with the server-side stream of the next request. */
  function nextStream(app: Express = express()): { url: Promise<string>; stream: Promise<SseStream> } {
    let hand: (s: SseStream) => void = () => undefined;
    const stream = new Promise<SseStream>((resolve) => (hand = resolve));
    return { url: serve((res) => hand(res.sse), app), stream };
  }

  describe('res.sse.send()', () => {
    describe.each([
      ['LF line breaks', 'one\ntwo', 'one\ntwo'],
      ['CRLF line breaks', 'one\r\ntwo', 'one\ntwo'],
      ['lone CR line breaks', 'one\rtwo', 'one\ntwo'],
      ['a trailing newline', 'end\n', 'end\n'],
      ['unicode', 'héllo 🌍 世界', 'héllo 🌍 世界'],
      ['an empty string', '', ''],
    ])('when the data has %s', (_what, data, expected) => {
      it('reaches a spec-compliant parser exactly', async () => {
        const url = await serve((res) => {
          res.sse.send(data);
        });
        const client = await openStream(url);
        const [event] = await client.waitForEvents(1);
        expect(event?.data).toBe(expected);
        client.destroy();
      });
    });

    describe('when the data is not a string', () => {
      it('sends it as JSON', async () => {
        const url = await serve((res) => {
          res.sse.send({ n: 1, list: ['a'] }, { event: 'obj', id: 5 });
        });
        const client = await openStream(url);
        const [event] = await client.waitForEvents(1);
        expect(event).toEqual({ event: 'obj', id: '5', data: '{"n":1,"list":["a"]}' });
        client.destroy();
      });
    });

    describe('when a field tries to inject another event', () => {
      it('throws a TypeError and writes nothing of that event', async () => {
        const errors: unknown[] = [];
        const url = await serve((res) => {
          res.sse.send('before');
          for (const options of [{ event: 'x\n\ndata: evil' }, { id: '1\nevent: admin' }, { id: 'a\0' }, { retry: -5 }]) {
            try {
              res.sse.send('evil', options);
            } catch (error) {
              errors.push(error);
            }
          }
          res.sse.send('after');
          res.sse.close();
        });
        const client = await openStream(url);
        await client.ended;
        expect(client.raw()).toBe('data: before\n\ndata: after\n\n');
        expect(errors.map((e) => [(e as Error).name, (e as { code: string }).code])).toEqual([
          ['TypeError', 'ERR_SSE_INVALID_EVENT'],
          ['TypeError', 'ERR_SSE_INVALID_ID'],
          ['TypeError', 'ERR_SSE_INVALID_ID'],
          ['TypeError', 'ERR_SSE_INVALID_RETRY'],
        ]);
      });
    });

    describe('when the client stops reading', () => {
      it('returns false once the socket is backed up', async () => {
        const { url, stream } = nextStream();
        const client = await openStream(await url);
        client.response.pause();
        const sse = await stream;
        const chunk = 'x'.repeat(64 * 1024);
        let writes = 0;
        while (sse.send(chunk)) {
          writes += 1;
          if (writes > 10_000) throw new Error('send() never reported backpressure');
        }
        expect(sse.bufferedBytes).toBeGreaterThan(0);
        client.destroy();
      });
    });

    describe('when the client has gone', () => {
      it('returns false, never throws and buffers nothing', async () => {
        const { url, stream } = nextStream();
        const client = await openStream(await url);
        const sse = await stream;
        client.destroy();
        await waitUntil(() => sse.closed, 'the stream sees the disconnect');
        for (let i = 0; i < 10_000; i += 1) expect(sse.send('x'.repeat(1000))).toBe(false);
        expect(sse.comment('still there?')).toBe(false);
        expect(sse.bufferedBytes).toBe(0);
      });

      it('returns false when the socket died before its close event ran', async () => {
        const { url, stream } = nextStream();
        await openStream(await url);
        const sse = await stream;
        expect(sse.closed).toBe(false);
        const aborted = new Promise<void>((resolve) => sse.signal.addEventListener('abort', () => resolve()));
        // Destroy from the server side and write in the same tick, before 'close' is emitted.
        server?.server.closeAllConnections();
        expect(sse.send('late')).toBe(false);
        expect(sse.closed).toBe(true);
        await aborted;
      });
    });
  });

  describe('res.sse.comment()', () => {
    it('writes every line as a comment', async () => {
      const url = await serve((res) => {
        res.sse.comment('line one\nline two');
        res.sse.close();
      });
      const client = await openStream(url);
      await client.ended;
      expect(client.raw()).toBe(': line one\n: line two\n\n');
      expect(client.comments).toEqual(['line one', 'line two']);
      expect(client.events).toEqual([]);
    });
  });

  describe('res.sse.close()', () => {
    it('ends the response and is safe to call twice', async () => {
      let closedAfter: boolean[] = [];
      const url = await serve((res) => {
        res.sse.send('bye');
        res.sse.close();
        res.sse.close();
        closedAfter = [res.sse.closed, res.sse.signal.aborted];
      });
      const client = await openStream(url);
      await client.ended;
      expect(client.raw()).toBe('data: bye\n\n');
      expect(closedAfter).toEqual([true, true]);
    });
  });

  describe('res.sse.lastEventId', () => {
    it.each([
      ['the Last-Event-ID header', '/events', { 'last-event-id': '41' }, '41'],
      ['the lastEventId query parameter', '/events?lastEventId=17', {}, '17'],
      ['the header over the query', '/events?lastEventId=17', { 'last-event-id': '42' }, '42'],
      ['nothing on a first connection', '/events', {}, undefined],
      // Node hands header bytes over as Latin-1: a string of them is what goes on the wire.
      ['a UTF-8 header (what browsers send) as UTF-8', '/events', { 'last-event-id': Buffer.from('naïve…日本😀').toString('latin1') }, 'naïve…日本😀'],
      ['a header that is not UTF-8 as Latin-1', '/events', { 'last-event-id': 'na\u00efve \u00a3' }, 'naïve £'],
      ['a UTF-8 query parameter', `/events?lastEventId=${encodeURIComponent('日本')}`, {}, '日本'],
    ])('reads %s', async (_what, path, headers, expected) => {
      let seen: string | undefined = 'unset';
      const url = await serve((res) => {
        seen = res.sse.lastEventId;
        res.sse.close();
      });
      const client = await openStream(url.replace('/events', path), { headers });
      await client.ended;
      expect(seen).toBe(expected);
    });
  });

  describe('res.sse.signal', () => {
    it('aborts when the client disconnects', async () => {
      const { url, stream } = nextStream();
      const client = await openStream(await url);
      const sse = await stream;
      expect(sse.signal.aborted).toBe(false);
      const aborted = new Promise<void>((resolve) => sse.signal.addEventListener('abort', () => resolve()));
      client.destroy();
      await aborted;
      expect(sse.closed).toBe(true);
    });
  });

  describe('res.sse.pipe()', () => {
    describe('when the source ends', () => {
      it('sends every chunk, mapped and named, and resolves true', async () => {
        let result: boolean | undefined;
        async function* tokens(): AsyncGenerator<string> {
          for (const word of ['Hello', ' world', '!']) {
            await new Promise((r) => setImmediate(r));
            yield word;
          }
        }
        const url = await serve((res) => {
          void res.sse.pipe(tokens(), { event: 'token', map: (t) => ({ t }) }).then((done) => {
            result = done;
            res.sse.send('[DONE]');
            res.sse.close();
          });
        });
        const client = await openStream(url);
        await client.ended;
        expect(client.events.map((e) => [e.event, e.data])).toEqual([
          ['token', '{"t":"Hello"}'],
          ['token', '{"t":" world"}'],
          ['token', '{"t":"!"}'],
          [undefined, '[DONE]'],
        ]);
        expect(result).toBe(true);
      });
    });

    describe('when the source is a Node readable of bytes split inside a character', () => {
      it('decodes UTF-8 across chunk boundaries', async () => {
        const bytes = Buffer.from('€uro', 'utf8');
        const url = await serve((res) => {
          void res.sse.pipe(Readable.from([bytes.subarray(0, 2), bytes.subarray(2)])).then(() => res.sse.close());
        });
        const client = await openStream(url);
        await client.ended;
        expect(client.events.map((e) => e.data).join('')).toBe('€uro');
      });
    });

    describe('when the source is a web ReadableStream', () => {
      it('sends its chunks', async () => {
        const url = await serve((res) => {
          const source = new ReadableStream<string>({
            start(controller) {
              controller.enqueue('a');
              controller.enqueue('b');
              controller.close();
            },
          });
          void res.sse.pipe(source).then(() => res.sse.close());
        });
        const client = await openStream(url);
        await client.ended;
        expect(client.events.map((e) => e.data)).toEqual(['a', 'b']);
      });
    });

    describe('when the client leaves mid-stream', () => {
      it('stops reading an endless generator and resolves false', async () => {
        let produced = 0;
        let cleanedUp = false;
        let result: Promise<boolean> | undefined;
        async function* endless(): AsyncGenerator<number> {
          try {
            for (;;) {
              await new Promise((r) => setTimeout(r, 2));
              produced += 1;
              yield produced;
            }
          } finally {
            cleanedUp = true;
          }
        }
        const url = await serve((res) => {
          result = res.sse.pipe(endless());
        });
        const client = await openStream(url);
        await client.waitForEvents(3);
        client.destroy();
        await expect(result).resolves.toBe(false);
        await waitUntil(() => cleanedUp, 'the generator finally block runs');
        const atStop = produced;
        await new Promise((r) => setTimeout(r, 50));
        expect(produced).toBe(atStop);
      });

      it('destroys a Node readable source', async () => {
        let source: Readable | undefined;
        const url = await serve((res) => {
          source = new Readable({ read() {} });
          source.push('first');
          void res.sse.pipe(source);
        });
        const client = await openStream(url);
        await client.waitForEvents(1);
        client.destroy();
        await waitUntil(() => source?.destroyed === true, 'the readable is destroyed');
      });

      it('cancels a web ReadableStream that is waiting for data', async () => {
        let cancelled = false;
        const url = await serve((res) => {
          const source = new ReadableStream<string>({
            start(controller) {
              controller.enqueue('only');
            },
            cancel() {
              cancelled = true;
            },
          });
          void res.sse.pipe(source);
        });
        const client = await openStream(url);
        await client.waitForEvents(1);
        client.destroy();
        await waitUntil(() => cancelled, 'the web stream is cancelled');
      });
    });

    describe('when the client reads slowly', () => {
      it('waits for the socket to drain instead of buffering the source', async () => {
        const chunk = 'y'.repeat(16 * 1024);
        let pulled = 0;
        async function* big(): AsyncGenerator<string> {
          for (let i = 0; i < 2000; i += 1) {
            pulled += 1;
            yield await Promise.resolve(chunk);
          }
        }
        let stream: SseStream | undefined;
        const url = await serve((res) => {
          stream = res.sse;
          void res.sse.pipe(big());
        });
        const client = await openStream(url);
        client.response.pause();
        await new Promise((r) => setTimeout(r, 200));
        // With 16 KiB chunks and a paused reader, pipe must stop long before pulling 32 MiB.
        expect(pulled).toBeLessThan(400);
        expect(stream?.bufferedBytes ?? 0).toBeLessThan(4 * 1024 * 1024);
        client.destroy();
      });
    });

    describe('when the source throws', () => {
      it('rejects with that error and leaves the stream usable', async () => {
        let outcome: unknown;
        async function* failing(): AsyncGenerator<string> {
          yield await Promise.resolve('one');
          throw new Error('upstream failed');
        }
        const url = await serve((res) => {
          res.sse.pipe(failing()).then(
            () => (outcome = 'resolved'),
            (error: Error) => {
              outcome = error.message;
              res.sse.send('recovered', { event: 'error-note' });
              res.sse.close();
            },
          );
        });
        const client = await openStream(url);
        await client.ended;
        expect(outcome).toBe('upstream failed');
        expect(client.events.map((e) => e.data)).toEqual(['one', 'recovered']);
      });
    });
  });

  describe('when the stream route reads a POST body with express.json()', () => {
    it('keeps streaming after the body is consumed', async () => {
      const app = express();
      app.use(express.json());
      const url = await serve((res) => {
        const { prompt } = (res.req.body ?? {}) as { prompt?: string };
        let n = 0;
        const timer = setInterval(() => {
          n += 1;
          res.sse.send({ prompt, n });
          if (n === 3) {
            clearInterval(timer);
            res.sse.close();
          }
        }, 20);
        res.sse.signal.addEventListener('abort', () => clearInterval(timer));
      }, app);
      const client = await openStream(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'hi' }),
      });
      await client.ended;
      expect(client.events.map((e) => e.data)).toEqual([
        '{"prompt":"hi","n":1}',
        '{"prompt":"hi","n":2}',
        '{"prompt":"hi","n":3}',
      ]);
    });
  });
});
