// Found by the independent delivery checker (issue #21; __tests__/long/delivery-checker.long.test.ts,
// seed 21102): a reconnecting client's replay read and its channel's own first read of the log
// both run when the channel's first subscriber here joins. When an event is appended between the
// two (another process broadcast it), the replay's read ends before it, the channel's read after
// it: the channel takes that event as already fanned out (it learned its head from the log) and
// drops it when Pub/Sub brings it, and the client, one behind the channel, waited for the next
// event of the channel to notice the gap. On a quiet channel that event never came: an
// acknowledged event that never reached a connected client.
//
// Reproduced deterministically with an adapter (the public Adapter interface) whose reads wait
// for the test to let them through, in the order above.
import express from 'express';
import { ChannelRegistry, MemoryAdapter, sse } from 'express-sse-hub';
import type { Adapter, EntryListener, LogOptions, Position, PublishedEvent, PublishOptions, ReadResult } from 'express-sse-hub/adapter';
import { DeliveryChecker } from './helpers/delivery-checker';
import { queryString, startServer, waitUntil, type TestServer } from './helpers/server';

/** A MemoryAdapter whose reads are held until released (each read of the log as it is then). */
class GatedAdapter implements Adapter {
  readonly held: { head: boolean; release: () => void }[] = [];
  gated = false;
  onResync: ((channels?: readonly string[]) => void) | undefined;
  onError: ((error: Error) => void) | undefined;

  constructor(readonly inner: MemoryAdapter) {}

  publish(channel: string, event: PublishedEvent, options: PublishOptions): Promise<Position | undefined> {
    return this.inner.publish(channel, event, options);
  }

  subscribe(channel: string, listener: EntryListener): Promise<void> {
    return this.inner.subscribe(channel, listener);
  }

  unsubscribe(channel: string): void {
    this.inner.unsubscribe(channel);
  }

  async read(channel: string, after: readonly Position[] | undefined, options: LogOptions): Promise<ReadResult> {
    if (this.gated) await new Promise<void>((release) => this.held.push({ head: after === undefined, release }));
    return this.inner.read(channel, after, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('a reconnect to a process where its channel is quiet', () => {
  let server: TestServer | undefined;
  let registries: ChannelRegistry[] = [];
  afterEach(async () => {
    for (const r of registries) await r.close({ timeout: 100 });
    registries = [];
    await server?.close();
  });

  it('gets an event appended between its replay read and the channel’s first read', async () => {
    const memory = new MemoryAdapter();
    const gated = new GatedAdapter(memory);
    // This process: its channel "news" has no subscriber yet.
    const here = new ChannelRegistry({ adapter: gated, history: 100 });
    // Another process on the same log (it only broadcasts, so it never subscribes).
    const there = new ChannelRegistry({ adapter: memory, history: 100 });
    registries = [here, there];
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false }), (req, res) => {
      here.subscribe(res, queryString(req.query.channels).split(','));
    });
    server = await startServer(app);

    const checker = new DeliveryChecker('quiet channel, event between the two reads');
    let n = 0;
    const send = (): Promise<string | undefined> => {
      n += 1;
      const data = `news ${n}`;
      return checker.broadcast('news', data, () => there.channel('news').broadcast(data));
    };
    const first = await send();
    await send();
    const client = checker.client('client', ['news']);
    gated.gated = true;
    await client.connect(`${server.url}/subscribe?channels=news`, { lastEventId: first! });
    // Joining reads the log twice: the channel's head, and the client's replay after its id.
    await waitUntil(() => gated.held.length === 2, 'both reads are on their way');
    gated.gated = false;
    const replay = gated.held.find((r) => !r.head)!;
    const head = gated.held.find((r) => r.head)!;
    replay.release();
    await client.waitFor(() => client.eventData().includes('news 2'), 'the replay');
    await send(); // appended after the replay's read, before the channel's
    checker.last.set('news', `news ${n}`);
    head.release();
    await client.waitFor(() => checker.hasLast(client), 'the last event', 2000).catch(() => undefined);
    const { violations } = checker.check();
    expect(violations.length === 0 ? '' : checker.report(violations)).toBe('');
  });
});
