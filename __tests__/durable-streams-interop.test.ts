// Interop with the protocol's own client (@durable-streams/client) across two server processes
// on one real redis-server: a writer on one, a reader on the other that is cut off (its server
// process killed) and resumes on the first from the offset it had, getting every message once.
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { DurableStream, IdempotentProducer, stream, type JsonBatch } from '@durable-streams/client';
import { startServer, stopServer } from '../bench/process';
import { describeRedis, useRedis } from './helpers/redis';

const SERVER = path.join(__dirname, '..', 'scripts', 'durable-streams', 'server.ts');

interface Message {
  readonly n: number;
}

describeRedis('@durable-streams/client through two processes on one Redis', () => {
  const redis = useRedis();
  const children: ChildProcess[] = [];
  afterAll(async () => {
    await Promise.all(children.map((child) => stopServer(child)));
  });

  async function process(): Promise<{ child: ChildProcess; base: string }> {
    const started = await startServer(SERVER, [], { nodeArgs: ['--import', 'tsx'], env: { ...globalThis.process.env, REDIS_URL: redis().url, REDIS_CLUSTER: '' } });
    children.push(started.child);
    return started;
  }

  /** Reads JSON batches until `until` says stop; resolves with the offset after the last batch. */
  async function readUntil(url: string, offset: string, seen: Message[], until: (batch: JsonBatch<Message>) => boolean): Promise<string> {
    const controller = new AbortController();
    const response = await stream<Message>({ url, offset, live: 'sse', json: true, signal: controller.signal, warnOnHttp: false });
    return new Promise<string>((resolve, reject) => {
      response.subscribeJson<Message>((batch) => {
        seen.push(...batch.items);
        if (until(batch)) {
          resolve(batch.offset);
          response.cancel();
        }
      });
      response.closed.catch(reject);
    });
  }

  test('a reader cut off from one process resumes on the other and gets every message once, in order', async () => {
    const [writerSide, readerSide] = [await process(), await process()];
    const url = (base: string): string => `${base}/v1/stream/interop/chat-1`;
    const handle = await DurableStream.create({ url: url(writerSide.base), contentType: 'application/json', warnOnHttp: false });
    const producer = new IdempotentProducer(handle, 'writer-1', { lingerMs: 0 });
    for (let n = 0; n < 20; n += 1) producer.append(JSON.stringify({ n }));
    await producer.flush();

    const seen: Message[] = [];
    const offset = await readUntil(url(readerSide.base), '-1', seen, () => seen.length >= 20);
    expect(seen.map((m) => m.n)).toEqual(Array.from({ length: 20 }, (_, n) => n));

    // The cut: the reader's process goes away; the writer goes on meanwhile.
    await stopServer(readerSide.child);
    for (let n = 20; n < 50; n += 1) producer.append(JSON.stringify({ n }));
    await producer.flush();
    await producer.close();

    await readUntil(url(writerSide.base), offset, seen, (batch) => batch.streamClosed === true || seen.length >= 50);
    expect(seen.map((m) => m.n)).toEqual(Array.from({ length: 50 }, (_, n) => n));
  }, 60_000);
});
