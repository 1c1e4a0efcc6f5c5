import express, { type Response } from 'express';
import { EventSource } from 'eventsource';
import { ChannelRegistry, RESET_EVENT, sse } from 'express-sse-hub';
import type { AdapterEvent } from '../src/adapters/adapter';
import { History } from '../src/history';
import { openStream, queryString, startServer, waitUntil, type TestServer } from './helpers/server';

function entry(seq: number, id?: string): AdapterEvent {
  return { seq, id, event: undefined, text: String(seq), kind: 'text' };
}

describe('History', () => {
  describe('readAfter()', () => {
    it('returns the newer entries in order', () => {
      const history = new History(10);
      for (const seq of [1, 2, 3, 4]) history.append(entry(seq));
      expect(history.readAfter('2', 4)).toEqual({ events: [entry(3), entry(4)], reset: undefined });
      expect(history.readAfter('4', 4).events).toEqual([]);
    });

    it('finds the position between gaps left by other channels', () => {
      const history = new History(10);
      for (const seq of [2, 5, 9, 14]) history.append(entry(seq));
      expect(history.readAfter('6', 20).events.map((e) => e.seq)).toEqual([9, 14]);
      expect(history.readAfter('1', 20).events.map((e) => e.seq)).toEqual([2, 5, 9, 14]);
    });

    it('looks up ids the caller chose', () => {
      const history = new History(10);
      history.append(entry(1, 'order-a'));
      history.append(entry(2, 'order-b'));
      history.append(entry(3));
      expect(history.readAfter('order-a', 3).events.map((e) => e.seq)).toEqual([2, 3]);
    });

    describe('when the id was evicted', () => {
      it('returns what remains with reset "evicted"', () => {
        const history = new History(3);
        for (let seq = 1; seq <= 6; seq += 1) history.append(entry(seq));
        expect(history.size).toBe(3);
        const result = history.readAfter('1', 6);
        expect(result.reset).toBe('evicted');
        expect(result.events.map((e) => e.seq)).toEqual([4, 5, 6]);
        // The newest evicted id itself is still exact: nothing after it is lost.
        expect(history.readAfter('3', 6)).toEqual({ events: [entry(4), entry(5), entry(6)], reset: undefined });
      });

      it('forgets evicted custom ids', () => {
        const history = new History(1);
        history.append(entry(1, 'x'));
        history.append(entry(2));
        expect(history.readAfter('x', 2).reset).toBe('unknown-id');
      });
    });

    describe('when the id is unknown', () => {
      it.each([
        ['not a number', 'abc'],
        ['from before a restart (beyond the sequence)', '99'],
        ['absurdly long', '9'.repeat(5000)],
      ])('returns everything with reset "unknown-id" when it is %s', (_what, id) => {
        const history = new History(5);
        history.append(entry(1));
        history.append(entry(2));
        expect(history.readAfter(id, 2)).toEqual({ events: [entry(1), entry(2)], reset: 'unknown-id' });
      });
    });
  });
});

describe('Last-Event-ID replay', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function historyServer(history: number): Promise<{ url: string; registry: ChannelRegistry; responses: Set<Response> }> {
    const registry = new ChannelRegistry({ history });
    const responses = new Set<Response>();
    const app = express();
    app.get('/subscribe', sse({ heartbeat: false, retry: 20 }), (req, res) => {
      responses.add(res);
      res.on('close', () => responses.delete(res));
      registry.subscribe(res, queryString(req.query.channels, 'feed').split(','));
    });
    server = await startServer(app);
    return { url: `${server.url}/subscribe`, registry, responses };
  }

  describe('when the eventsource client reconnects while broadcasts keep coming', () => {
    it('receives every event exactly once, in order', async () => {
      const { url, registry, responses } = await historyServer(5000);
      const feed = registry.channel('feed');
      const source = new EventSource(url);
      const seen: number[] = [];
      let opens = 0;
      source.addEventListener('open', () => (opens += 1));
      source.addEventListener('message', (event) => {
        seen.push(Number(event.data));
        // Cut the connection from the server side twice, mid-stream.
        if (seen.length === 300 || seen.length === 900) for (const res of responses) res.socket?.destroy();
      });
      await waitUntil(() => feed.size === 1, 'the client subscribed');
      const TOTAL = 1500;
      for (let i = 1; i <= TOTAL; i += 1) {
        await feed.broadcast(String(i));
        await new Promise((r) => setImmediate(r));
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      await waitUntil(() => seen.length >= TOTAL, `all ${TOTAL} events arrive (have ${seen.length})`, 15_000);
      await new Promise((r) => setTimeout(r, 50));
      source.close();
      expect(opens).toBe(3);
      expect(seen).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
      expect(registry.stats().replays).toBe(2);
    });
  });

  describe('when broadcasts happen between subscribe and the replay', () => {
    it('sends history first, then the live events, with no gap and no duplicate', async () => {
      const registry = new ChannelRegistry({ history: 100 });
      const feed = registry.channel('feed');
      for (let i = 1; i <= 5; i += 1) await feed.broadcast(`old${i}`);
      const app = express();
      app.get('/subscribe', sse({ heartbeat: false }), (_req, res) => {
        feed.subscribe(res);
        // Synchronously after subscribe, before the history read has resolved.
        void feed.broadcast('live1');
        void feed.broadcast('live2');
      });
      server = await startServer(app);
      const client = await openStream(`${server.url}/subscribe`, { headers: { 'last-event-id': '2' } });
      await client.waitForEvents(5);
      await feed.broadcast('live3');
      await client.waitForEvents(6);
      expect(client.events.map((e) => `${e.id}:${e.data}`)).toEqual(['3:old3', '4:old4', '5:old5', '6:live1', '7:live2', '8:live3']);
    });
  });

  describe('when the client id was evicted from history', () => {
    it('sends a reset event, then what history remains', async () => {
      const { url, registry } = await historyServer(3);
      const feed = registry.channel('feed');
      for (let i = 1; i <= 6; i += 1) await feed.broadcast(`e${i}`);
      const client = await openStream(url, { headers: { 'last-event-id': '1' } });
      await client.waitForEvents(4);
      expect(client.events[0]).toEqual({ event: RESET_EVENT, id: undefined, data: JSON.stringify({ channel: 'feed', lastEventId: '1', reason: 'evicted' }) });
      expect(client.events.slice(1).map((e) => e.data)).toEqual(['e4', 'e5', 'e6']);
      expect(registry.stats().resets).toBe(1);
    });
  });

  describe('when the client id comes from before a server restart', () => {
    it('sends a reset with reason unknown-id', async () => {
      const { url, registry } = await historyServer(10);
      await registry.channel('feed').broadcast('fresh');
      const client = await openStream(url, { headers: { 'last-event-id': '4711' } });
      await client.waitForEvents(2);
      expect(client.events[0]?.event).toBe(RESET_EVENT);
      expect(JSON.parse(client.events[0]!.data)).toMatchObject({ reason: 'unknown-id' });
      expect(client.events[1]?.data).toBe('fresh');
    });
  });

  describe('when one connection replays several channels', () => {
    it('merges their histories in id order', async () => {
      const { url, registry } = await historyServer(10);
      const a = registry.channel('a');
      const b = registry.channel('b');
      await a.broadcast('a1'); // id 1
      await b.broadcast('b2'); // id 2
      await a.broadcast('a3'); // id 3
      await b.broadcast('b4'); // id 4
      await a.broadcast('a5'); // id 5
      const client = await openStream(`${url}?channels=a,b`, { headers: { 'last-event-id': '1' } });
      await client.waitForEvents(4);
      expect(client.events.map((e) => `${e.id}:${e.data}`)).toEqual(['2:b2', '3:a3', '4:b4', '5:a5']);
    });
  });

  describe('when the client asks with the lastEventId query parameter', () => {
    it('replays as with the header', async () => {
      const { url, registry } = await historyServer(10);
      const feed = registry.channel('feed');
      await feed.broadcast('one');
      await feed.broadcast('two');
      const client = await openStream(`${url}?lastEventId=1`);
      await client.waitForEvents(1);
      expect(client.events.map((e) => e.data)).toEqual(['two']);
    });
  });
});
