import { execFile } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { EventSource } from 'eventsource';
import { DefaultChatTransport, readUIMessageStream, type UIMessage } from 'ai';
import { ChannelRegistry, MemoryAdapter, sse, type Run, type RunEnd } from 'express-sse-hub';
import { openStream, startServer, waitUntil, type TestServer, type TestStream } from './helpers/server';
import { unhandledDuring } from './helpers/unhandled';

/** A model stand-in: `count` tokens `w0 `, `w1 `, … one every `paceMs`, stopping when aborted. */
function tokens(count: number, paceMs: number, produced?: { count: number }) {
  return async function* (signal: AbortSignal): AsyncGenerator<{ token: string }> {
    for (let i = 0; i < count; i += 1) {
      await sleep(paceMs, undefined, { signal });
      if (produced) produced.count += 1;
      yield { token: `w${i} ` };
    }
  };
}

const expectedTokens = (count: number): string[] => Array.from({ length: count }, (_, i) => `w${i} `);

interface Setup {
  readonly registry: ChannelRegistry;
  readonly adapter: MemoryAdapter;
  readonly server: TestServer;
  readonly errors: Error[];
  /** Server-side sockets of followers, to cut them as a failing network would. */
  readonly sockets: Set<import('node:net').Socket>;
}

let setup: Setup;

beforeEach(async () => {
  const adapter = new MemoryAdapter();
  const registry = new ChannelRegistry({ adapter, runs: { ttl: 60_000 } });
  const errors: Error[] = [];
  registry.on('error', (error) => errors.push(error));
  const sockets = new Set<import('node:net').Socket>();
  const app = express();
  app.get('/runs/:id', sse({ heartbeat: false, retry: 50 }), (req, res) => {
    sockets.add(req.socket);
    void registry.followRun(res, String(req.params.id));
  });
  app.get('/api/chat/:id/stream', sse({ heartbeat: false }), (req, res) => void registry.followRun(res, String(req.params.id), { format: 'ai-sdk' }));
  const server = await startServer(app);
  setup = { registry, adapter, server, errors, sockets };
});

afterEach(async () => {
  await setup.registry.close({ timeout: 500 });
  await setup.server.close();
});

const tokenTexts = (stream: TestStream): string[] => stream.events.filter((e) => e.event === 'token').map((e) => (JSON.parse(e.data) as { token: string }).token);

describe('runs: registry.run() and followRun()', () => {
  it('serves a late follower the whole run: every token with an id, then [DONE]; then 204 with its last id', async () => {
    const { registry, server } = setup;
    const run = await registry.run('late', tokens(20, 1));
    expect(await run.done).toEqual<RunEnd>({ reason: 'done', chunks: 20 });
    const stream = await openStream(`${server.url}/runs/late`);
    await stream.ended;
    expect(stream.response.statusCode).toBe(200);
    expect(tokenTexts(stream)).toEqual(expectedTokens(20));
    const last = stream.events.at(-1)!;
    expect(last).toMatchObject({ event: undefined, data: '[DONE]' });
    expect(stream.events.every((e) => e.id !== undefined && e.id !== '')).toBe(true);
    expect(new Set(stream.events.map((e) => e.id)).size).toBe(stream.events.length);
    // No id-only frame repeats what the last event said.
    expect(stream.raw().match(/^id:/gm)?.length).toBe(stream.events.length);

    const again = await openStream(`${server.url}/runs/late`, { headers: { 'last-event-id': last.id! } });
    await again.ended;
    expect(again.response.statusCode).toBe(204);
    expect(again.raw()).toBe('');
    // Or the query parameter, for clients that cannot set headers.
    const byQuery = await openStream(`${server.url}/runs/late?lastEventId=${encodeURIComponent(last.id!)}`);
    await byQuery.ended;
    expect(byQuery.response.statusCode).toBe(204);
  });

  it('resumes a dropped connection with exactly the rest, while the run goes on without anyone', async () => {
    const { registry, server } = setup;
    const produced = { count: 0 };
    const run = await registry.run('resume', tokens(40, 5, produced));
    const first = await openStream(`${server.url}/runs/resume`);
    await first.waitForEvents(8);
    first.destroy();
    const id = first.lastEventId()!;
    const seen = tokenTexts(first);
    // Nobody follows now: the generation goes on.
    const before = produced.count;
    await waitUntil(() => produced.count >= before + 10, 'the run to go on with no follower');
    const second = await openStream(`${server.url}/runs/resume`, { headers: { 'last-event-id': id } });
    await second.ended;
    expect([...seen, ...tokenTexts(second)]).toEqual(expectedTokens(40));
    expect(second.events.at(-1)!.data).toBe('[DONE]');
    expect((await run.done).reason).toBe('done');
  });

  it('with EventSource: a connection cut twice mid-run still shows every token once, in order, and stops on 204', async () => {
    const { registry, server, sockets } = setup;
    await registry.run('es', tokens(60, 4));
    const source = new EventSource(`${server.url}/runs/es`);
    const got: string[] = [];
    let done = false;
    let opens = 0;
    source.addEventListener('open', () => (opens += 1));
    source.addEventListener('token', (event) => got.push((JSON.parse(event.data as string) as { token: string }).token));
    source.addEventListener('message', (event) => {
      if (event.data === '[DONE]') done = true;
    });
    try {
      for (const after of [15, 35]) {
        await waitUntil(() => got.length >= after, `${after} tokens`, 10_000);
        for (const socket of sockets) socket.destroy();
        sockets.clear();
      }
      await waitUntil(() => done, '[DONE]', 10_000);
      // The stream closed after [DONE]; EventSource reconnects with the [DONE] id, gets 204 and stops for good.
      await waitUntil(() => source.readyState === EventSource.CLOSED, 'EventSource to stop on 204', 10_000);
      expect(got).toEqual(expectedTokens(60));
      expect(opens).toBeGreaterThanOrEqual(3);
    } finally {
      source.close();
    }
  });

  it('stops a run: its signal aborts, followers get an end event and the stream closes; later follows get 204', async () => {
    const { registry, server } = setup;
    const run: Run = await registry.run('stop-me', tokens(1000, 5));
    const a = await openStream(`${server.url}/runs/stop-me`);
    const b = await openStream(`${server.url}/runs/stop-me`);
    await Promise.all([a.waitForEvents(3), b.waitForEvents(3)]);
    expect(await registry.stopRun('stop-me')).toBe(true);
    expect(run.signal.aborted).toBe(true);
    await Promise.all([a.ended, b.ended]);
    for (const stream of [a, b]) {
      expect(stream.events.at(-1)).toMatchObject({ event: 'end', data: '{"reason":"stopped"}' });
      expect(tokenTexts(stream)).toEqual(expectedTokens(tokenTexts(stream).length));
    }
    expect(tokenTexts(a)).toEqual(tokenTexts(b));
    expect(await run.done).toMatchObject({ reason: 'stopped' });
    const later = await openStream(`${server.url}/runs/stop-me`, { headers: { 'last-event-id': a.lastEventId()! } });
    await later.ended;
    expect(later.response.statusCode).toBe(204);
    expect(await registry.stopRun('stop-me')).toBe(false);
    expect(registry.stats().runs).toBe(0);
  });

  it('answers 404 with JSON for an unknown run, a malformed id, and an expired one; an expired run frees its log', async () => {
    const adapter = new MemoryAdapter();
    const registry = new ChannelRegistry({ adapter, runs: { ttl: 150 } });
    const app = express();
    app.get('/runs/:id', sse({ heartbeat: false }), (req, res) => void registry.followRun(res, String(req.params.id)));
    const server = await startServer(app);
    try {
      for (const id of ['nope', 'bad%20id', 'x'.repeat(129)]) {
        const stream = await openStream(`${server.url}/runs/${id}`);
        await stream.ended;
        expect(stream.response.statusCode).toBe(404);
        expect(stream.response.headers['content-type']).toMatch(/^application\/json/);
        expect((JSON.parse(stream.raw()) as { error: string }).error).toMatch(/no such run/);
      }
      // Lookups of made-up ids leave nothing behind.
      expect(adapter.size).toBe(0);
      await (await registry.run('short', tokens(3, 1))).done;
      expect(adapter.size).toBe(1);
      await waitUntil(() => adapter.size === 0, 'the expired log to be freed', 3000);
      const stream = await openStream(`${server.url}/runs/short`);
      await stream.ended;
      expect(stream.response.statusCode).toBe(404);
    } finally {
      await registry.close();
      await server.close();
    }
  });

  it('ends a run whose source throws with reason "error", reported, and one that runs too long with "timeout"', async () => {
    const { registry, server, errors } = setup;
    const failing = await registry.run('fails', async function* () {
      yield 'a';
      await sleep(1);
      throw new Error('model crashed');
    });
    expect(await failing.done).toEqual({ reason: 'error', chunks: 1 });
    expect(errors.map((e) => (e as { code?: string }).code)).toContain('ERR_SSE_RUN_FAILED');
    const stream = await openStream(`${server.url}/runs/fails`);
    await stream.ended;
    expect(stream.events.map((e) => [e.event, e.data])).toEqual([
      ['token', 'a'],
      ['end', '{"reason":"error"}'],
    ]);

    // A source that ignores its signal is left behind, not waited for.
    const slow = await registry.run('slow', () => ({ [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<string>>(() => undefined) }) }), { maxDuration: 100 });
    // Waiting for it would never end: done resolving at all is the proof.
    expect(await slow.done).toEqual({ reason: 'timeout', chunks: 0 });
    expect(slow.signal.aborted).toBe(true);
  });

  it('refuses a taken id, a reserved event name and a bad source with clear errors, and a refused start takes nothing', async () => {
    const { registry, adapter } = setup;
    await registry.run('taken', tokens(2, 1));
    await expect(registry.run('taken', tokens(2, 1))).rejects.toMatchObject({ code: 'ERR_SSE_RUN_EXISTS' });
    // Two starts of one id at once: one wins.
    const both = await Promise.allSettled([registry.run('twice', tokens(2, 1)), registry.run('twice', tokens(2, 1))]);
    expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    await expect(registry.run('bad id', tokens(2, 1))).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_ARGUMENT' });
    const logs = adapter.size;
    await expect(registry.run('ev', tokens(2, 1), { event: 'end' })).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_EVENT' });
    await expect(registry.run('src', 42 as never)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_ARGUMENT' });
    await expect(registry.run('long', tokens(2, 1), { maxDuration: 10 * 60 * 1000 + 1 })).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_OPTION' });
    expect(adapter.size).toBe(logs);
    // The ids of refused starts are free.
    expect((await (await registry.run('ev', tokens(2, 1))).done).reason).toBe('done');
    expect(() => registry.channel('\u0000run:taken')).toThrow(/reserved for runs/);
    expect(() => registry.channel('\u0000runs')).toThrow(/reserved for runs/);
  });

  it('keeps a run that pauses longer than runs.ttl: a follower gets all of it, without a reset', async () => {
    const adapter = new MemoryAdapter();
    const registry = new ChannelRegistry({ adapter, runs: { ttl: 100 } });
    const app = express();
    app.get('/runs/:id', sse({ heartbeat: false }), (req, res) => void registry.followRun(res, String(req.params.id)));
    const server = await startServer(app);
    try {
      const run = await registry.run('pause', async function* () {
        yield 'first';
        await sleep(350);
        yield 'second';
      });
      await run.done;
      const stream = await openStream(`${server.url}/runs/pause`);
      await stream.ended;
      expect(stream.events.map((e) => [e.event, e.data])).toEqual([
        ['token', 'first'],
        ['token', 'second'],
        [undefined, '[DONE]'],
      ]);
      // Ended, it is kept runs.ttl, then freed.
      await waitUntil(() => adapter.size === 0, 'the ended run to expire', 2000);
    } finally {
      await registry.close();
      await server.close();
    }
  });

  it('answers a follow that races registry.close() with 503, never an unhandled rejection', async () => {
    const registry = new ChannelRegistry();
    const app = express();
    let closing: Promise<void> | undefined;
    app.get('/runs/:id', sse({ heartbeat: false }), (req, res) => {
      closing = registry.close({ timeout: 1000 }); // a shutdown starts while the log is read
      void registry.followRun(res, String(req.params.id));
    });
    const server = await startServer(app);
    try {
      await registry.run('closing', tokens(1000, 5));
      const stream = await openStream(`${server.url}/runs/closing`);
      await stream.ended;
      await closing;
      expect(stream.response.statusCode).toBe(503);
      expect(stream.response.headers['retry-after']).toBeDefined();
    } finally {
      await server.close();
    }
  });

  it('leaves nothing running after a follow that raced registry.close() (no watchdog calls into it later)', async () => {
    const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve) => {
      execFile(process.execPath, ['--unhandled-rejections=strict', path.join(__dirname, 'fixtures', 'follow-close.cjs')], { timeout: 20_000 }, (error, out, err) =>
        resolve({ stdout: out, stderr: err, code: error === null ? 0 : typeof error.code === 'number' ? error.code : null }),
      );
    });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(stdout)).toEqual({ status: 503 });
  });

  it('refuses a run started as registry.close() begins, and never reads its source', async () => {
    const registry = new ChannelRegistry();
    let pulled = 0;
    const source = async function* (): AsyncGenerator<string> {
      for (;;) {
        pulled += 1;
        yield 'x';
        await sleep(5);
      }
    };
    const starting = registry.run('late', source);
    const closing = registry.close({ timeout: 500 });
    await expect(starting).rejects.toMatchObject({ code: 'ERR_SSE_REGISTRY_CLOSED' });
    await closing;
    await sleep(20);
    expect(pulled).toBe(0);
  });

  it('lets timers and requests run while a source yields chunks that are ready at once (maxDuration ends it)', async () => {
    const { registry, server } = setup;
    // Chunks ready at once: this generator never awaits anything.
    // eslint-disable-next-line @typescript-eslint/require-await
    const ready = async function* (): AsyncGenerator<string> {
      for (;;) yield 'x';
    };
    const run = await registry.run('busy', ready, { maxDuration: 200 });
    // Answered while the run produces: the event loop is not held by it.
    const stream = await openStream(`${server.url}/runs/nothing-here`);
    await stream.ended;
    expect(stream.response.statusCode).toBe(404);
    expect((await run.done).reason).toBe('timeout');
  });

  describe('a source stopped by the end of its run (Node ends the process on an unhandled rejection)', () => {
    it('ends a Node Readable that never ends at maxDuration, and its read after the stop rejects with nobody hurt', async () => {
      // Chunks ready at once: the timeout fires while the run gives way to the event loop, and the
      // destroyed Readable's next read rejects (premature close).
      const readable = new Readable({
        objectMode: true,
        read() {
          this.push('x');
        },
      });
      const unhandled = await unhandledDuring(async () => {
        const run = await setup.registry.run('endless-readable', readable, { maxDuration: 100 });
        expect((await run.done).reason).toBe('timeout');
      });
      expect(unhandled).toEqual([]);
    });

    it('stops a Node Readable with run.stop() while the run gives way to the event loop', async () => {
      const ran: { run?: Run } = {};
      let armed = false;
      const started = performance.now();
      const readable = new Readable({
        objectMode: true,
        read() {
          if (!armed && performance.now() - started > 3) {
            armed = true;
            setImmediate(() => ran.run!.stop());
          }
          this.push('x');
        },
      });
      const unhandled = await unhandledDuring(async () => {
        const run = await setup.registry.run('stopped-readable', readable);
        ran.run = run;
        expect((await run.done).reason).toBe('stopped');
      });
      expect(unhandled).toEqual([]);
    });

    it('stops a source function that, seeing its run stopped, returns nothing', async () => {
      const unhandled = await unhandledDuring(async () => {
        const run = await setup.registry.run('late-source', async (signal) => {
          await sleep(30);
          return (signal.aborted ? undefined : Readable.from(['a'])) as Readable;
        });
        run.stop();
        expect((await run.done).reason).toBe('stopped');
        await sleep(30); // the source function answers after the stop
      });
      expect(unhandled).toEqual([]);
    });

    it("turns an 'error' listener that throws into a warning, not a crash", async () => {
      const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
      const registry = new ChannelRegistry();
      registry.on('error', () => {
        throw new Error('a bug in the listener');
      });
      try {
        const unhandled = await unhandledDuring(async () => {
          const failing = await registry.run('listener-throws', async function* () {
            yield 'a';
            await sleep(1);
            throw new Error('model crashed');
          });
          expect(await failing.done).toEqual({ reason: 'error', chunks: 1 });
        });
        expect(unhandled).toEqual([]);
        expect(warn.mock.calls.map(([message]) => String(message))).toEqual([expect.stringMatching(/'error' listener of the channel registry threw \(a bug in the listener\) on: .*failed after 1 chunk/)]);
      } finally {
        warn.mockRestore();
        await registry.close();
      }
    });
  });

  it('registry.close() ends every run it produces (reason "shutdown") and its followers get that end', async () => {
    const { registry, server } = setup;
    const run = await registry.run('long', tokens(10_000, 5));
    const stream = await openStream(`${server.url}/runs/long`);
    await stream.waitForEvents(2);
    await registry.close({ timeout: 1000 });
    await stream.ended;
    expect(stream.events.at(-1)).toMatchObject({ event: 'end', data: '{"reason":"shutdown"}' });
    expect(await run.done).toMatchObject({ reason: 'shutdown' });
  });

  describe("the AI SDK's UI message stream (read by the ai package's own client)", () => {
    const readWithAiSdk = async (url: string, chatId: string): Promise<UIMessage | null> => {
      const transport = new DefaultChatTransport({ api: `${url}/api/chat` });
      const stream = await transport.reconnectToStream({ chatId });
      if (stream === null) return null;
      let last: UIMessage | undefined;
      for await (const message of readUIMessageStream({ stream })) last = message;
      return last ?? null;
    };
    const textOf = (message: UIMessage | null): string =>
      (message?.parts ?? []).map((part) => (part.type === 'text' ? part.text : '')).join('');

    it('resumes a running answer from its start, and answers 204 (null) once it ended', async () => {
      const { registry, server } = setup;
      const run = await registry.run('chat-1', tokens(30, 5));
      await sleep(40); // mid-answer, as useChat({ resume: true }) after a reload
      const message = await readWithAiSdk(server.url, 'chat-1');
      expect(message?.id).toBe('chat-1');
      expect(textOf(message)).toBe(expectedTokens(30).join(''));
      await run.done;
      expect(await readWithAiSdk(server.url, 'chat-1')).toBeNull();
      // A chat without an active run: 204, which the AI SDK reads as "nothing to resume".
      expect(await readWithAiSdk(server.url, 'no-such-chat')).toBeNull();
    });

    it('sends the header, then start, text parts, finish and [DONE]; a stopped run ends with abort', async () => {
      const { registry, server } = setup;
      const run = await registry.run('chat-2', tokens(1000, 5));
      const stream = await openStream(`${server.url}/api/chat/chat-2/stream`);
      expect(stream.response.headers['x-vercel-ai-ui-message-stream']).toBe('v1');
      await stream.waitForEvents(4);
      run.stop();
      await stream.ended;
      const parts = stream.events.map((e) => (e.data === '[DONE]' ? '[DONE]' : (JSON.parse(e.data) as { type: string }).type));
      expect(parts.slice(0, 2)).toEqual(['start', 'text-start']);
      expect(parts.slice(-3)).toEqual(['text-end', 'abort', '[DONE]']);
      expect(new Set(parts.slice(2, -3))).toEqual(new Set(['text-delta']));
    });
  });
});
