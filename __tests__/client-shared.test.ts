// Shared mode of express-sse-hub/client, in Node: the ordering rules of a tab that follows the
// leader (SharedLink), driven message by message over a real BroadcastChannel, and sources
// sharing one connection to a real server (only when their requests are the same), with an
// in-process stand-in for Web Locks.
import express, { type Request, type Response as ExpressResponse } from 'express';
import { ChannelRegistry, sse } from 'express-sse-hub';
import { EventSource, type EventSourceInit, type SseErrorEvent } from '../src/client';
import { GAP_WAIT_MS, SharedLink, type EventRelay, type Member, type Relay, type StateRelay } from '../src/client/shared';
import { collect, nextEvent, TestLocks } from './helpers/client';
import { startServer, waitUntil, type TestServer } from './helpers/server';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface TestMember extends Member {
  lastEventId: string;
  readonly applied: EventRelay[];
  readonly states: StateRelay[];
  leads: number;
  greets: number;
}

function testMember(lastEventId = ''): TestMember {
  const member: TestMember = {
    lastEventId,
    applied: [],
    states: [],
    leads: 0,
    greets: 0,
    lead: () => (member.leads += 1),
    follow: (state) => member.states.push(state),
    apply: (relay) => {
      member.lastEventId = relay.id;
      member.applied.push(relay);
    },
    greet: () => (member.greets += 1),
  };
  return member;
}

const event = (prev: string, id: string, data = id): EventRelay => ({ kind: 'event', prev, id, type: 'news', data, origin: 'http://x' });

describe('SharedLink', () => {
  let name: string;
  let locks: TestLocks;
  let cleanup: (() => void)[];
  /** Another leader, as the link's tab sees it: a channel of the same name. */
  let leader: InstanceType<typeof BroadcastChannel>;

  beforeEach(() => {
    name = `test:${Math.random()}`;
    locks = new TestLocks();
    leader = new BroadcastChannel(name);
    cleanup = [() => leader.close()];
  });
  afterEach(() => {
    for (const done of cleanup) done();
  });

  /** A link whose tab follows: some other tab holds the lock. */
  async function follower(member: Member): Promise<SharedLink> {
    let release!: () => void;
    void locks.request(name, { signal: new AbortController().signal }, () => new Promise<void>((r) => (release = r)));
    await waitUntil(() => locks.held(name), 'the other tab leads');
    const link = new SharedLink(name, member, locks);
    cleanup.push(() => link.close(), () => release());
    return link;
  }

  const send = async (...relays: Relay[]): Promise<void> => {
    for (const relay of relays) leader.postMessage(relay);
    await sleep(20);
  };

  const data = (member: TestMember): (string | undefined)[] => member.applied.map((r) => r.data ?? `(id ${r.id})`);

  describe('when a tab joins', () => {
    it('asks for the state, ignores events from before, and starts at the position it is told', async () => {
      const hellos: Relay[] = [];
      leader.onmessage = (e: MessageEvent) => hellos.push(e.data as Relay);
      const member = testMember();
      await follower(member);
      await send(event('p1', 'p2'), { kind: 'state', state: 1, id: 'p2' }, event('p2', 'p3'));
      expect(hellos).toEqual([{ kind: 'hello' }]);
      expect(data(member)).toEqual(['(id p2)', 'p3']);
      expect(member.states).toEqual([{ kind: 'state', state: 1, id: 'p2' }]);
    });

    it('takes events at once when it already is where the stream is (the first connection)', async () => {
      const member = testMember();
      await follower(member);
      await send(event('', 'p1'));
      expect(data(member)).toEqual(['p1']);
    });
  });

  describe('when a new leader replays what this tab already has', () => {
    it('drops the duplicates and goes on from its own id', async () => {
      const member = testMember();
      await follower(member);
      await send({ kind: 'state', state: 1, id: 'p0' }, event('p0', 'p1'), event('p1', 'p2'), event('p2', 'p3'));
      // The new leader resumed from p1: it replays p2 and p3, then goes on.
      await send(event('p1', 'p2'), event('p2', 'p3'), event('p3', 'p4'));
      expect(data(member)).toEqual(['(id p0)', 'p1', 'p2', 'p3', 'p4']);
    });
  });

  describe("when a new leader's events arrive before the former leader's last ones", () => {
    it('holds them back until those arrive, then applies all in order', async () => {
      const member = testMember();
      await follower(member);
      await send({ kind: 'state', state: 1, id: 'p0' }, event('p0', 'p1'));
      // The new leader connected from p3, which this tab has not seen yet.
      await send(event('p3', 'p4'), event('p4', 'p5'));
      expect(data(member)).toEqual(['(id p0)', 'p1']);
      await send(event('p1', 'p2'), event('p2', 'p3'));
      expect(data(member)).toEqual(['(id p0)', 'p1', 'p2', 'p3', 'p4', 'p5']);
    });

    it(`applies them anyway after ${GAP_WAIT_MS} ms if the missing ones never come`, async () => {
      const member = testMember();
      await follower(member);
      await send({ kind: 'state', state: 1, id: 'p0' }, event('p2', 'p3'));
      expect(data(member)).toEqual(['(id p0)']);
      await sleep(GAP_WAIT_MS + 50);
      expect(data(member)).toEqual(['(id p0)', 'p3']);
      await send(event('p3', 'p4'));
      expect(data(member)).toEqual(['(id p0)', 'p3', 'p4']);
    });

    it('applies an event without an id (never replayed) at once', async () => {
      const member = testMember();
      await follower(member);
      await send({ kind: 'state', state: 1, id: 'p0' }, event('p2', 'p3'), event('p0', 'p0', 'tick'));
      expect(data(member)).toEqual(['(id p0)', 'tick']);
    });
  });

  describe('when it holds the lock', () => {
    it('leads, answers hellos, and ignores events a former leader still sends', async () => {
      const member = testMember('p1');
      const link = new SharedLink(name, member, locks);
      cleanup.push(() => link.close());
      await waitUntil(() => link.leading, 'it leads');
      expect(member.leads).toBe(1);
      await send({ kind: 'hello' }, event('p1', 'p2'), { kind: 'state', state: 1, id: 'p2' });
      expect([member.greets, member.applied, member.states]).toEqual([1, [], []]);
    });
  });

  describe('close()', () => {
    it('releases the lock to the next tab in line, or leaves the line', async () => {
      const [a, b, c] = [testMember(), testMember(), testMember()];
      const first = new SharedLink(name, a, locks);
      const second = new SharedLink(name, b, locks);
      const third = new SharedLink(name, c, locks);
      cleanup.push(() => first.close(), () => second.close(), () => third.close());
      await waitUntil(() => first.leading, 'the first leads');
      second.close(); // leaves the line
      first.close();
      await waitUntil(() => third.leading, 'the third leads');
      expect([a.leads, b.leads, c.leads]).toEqual([1, 0, 1]);
    });
  });
});

describe('new EventSource(url, { shared: true }) with Web Locks', () => {
  let server: TestServer;
  let registry: ChannelRegistry;
  let connections: { lastEventId: string | undefined; res: ExpressResponse }[];
  const g = globalThis as { navigator?: unknown };
  let sources: EventSource[];

  beforeEach(async () => {
    Object.defineProperty(globalThis, 'navigator', { value: { locks: new TestLocks() }, configurable: true });
    registry = new ChannelRegistry({ history: 100 });
    connections = [];
    sources = [];
    const app = express();
    app.get('/news', sse({ retry: 20 }), (req, res) => {
      connections.push({ lastEventId: req.get('last-event-id'), res });
      registry.subscribe(res, ['news']);
    });
    server = await startServer(app);
  });
  afterEach(async () => {
    for (const source of sources) source.close();
    delete g.navigator;
    await registry.close({ timeout: 100 });
    await server.close();
  });

  function open(): EventSource {
    const source = new EventSource(`${server.url}/news`, { shared: true });
    sources.push(source);
    return source;
  }

  it('makes one connection for sources opened together, whichever leads', async () => {
    const [a, b] = [open(), open()];
    const [newsA, newsB] = [collect(a, 'news'), collect(b, 'news')];
    await Promise.all([nextEvent(a, 'open'), nextEvent(b, 'open')]);
    const channel = registry.channel('news');
    for (const n of [1, 2]) await channel.broadcast(n, { event: 'news' });
    await waitUntil(() => newsA.length === 2 && newsB.length === 2, 'both get every event');
    expect([newsA, newsB]).toEqual([['1', '2'], ['1', '2']]);
    expect(connections).toHaveLength(1);
  });

  it('makes one connection for all, and hands it over when the leader closes', async () => {
    // A leads: it is open before B asks for the lock (sources opened together ask in the order
    // their share names are hashed, which is async).
    const a = open();
    const newsA = collect(a, 'news');
    await nextEvent(a, 'open');
    const b = open();
    const newsB = collect(b, 'news');
    await nextEvent(b, 'open');
    const channel = registry.channel('news');
    for (const n of [1, 2]) await channel.broadcast(n, { event: 'news' });
    await waitUntil(() => newsB.length === 2, 'B gets what A reads');
    expect(connections).toHaveLength(1);
    const position = b.lastEventId;
    const errored = nextEvent(b, 'error');
    a.close();
    for (const n of [3, 4]) await channel.broadcast(n, { event: 'news' });
    await errored; // the connection B relied on is gone: error, then open again
    await waitUntil(() => newsB.length === 4, 'B gets the missed events');
    expect([newsA, newsB]).toEqual([['1', '2'], ['1', '2', '3', '4']]);
    expect(connections.map((c) => c.lastEventId)).toEqual([undefined, position]);
    expect(b.readyState).toBe(EventSource.OPEN);
  });

  it('mirrors a refusal to every source and closes them', async () => {
    const refused = express();
    refused.get('/', (_req, res) => res.status(403).end());
    const other = await startServer(refused);
    try {
      const [a, b] = [new EventSource(other.url, { shared: true }), new EventSource(other.url, { shared: true })];
      sources.push(a, b);
      const [ea, eb] = await Promise.all([nextEvent<SseErrorEvent>(a, 'error'), nextEvent<SseErrorEvent>(b, 'error')]);
      expect([ea.status, eb.status, a.readyState, b.readyState]).toEqual([403, 403, EventSource.CLOSED, EventSource.CLOSED]);
    } finally {
      await other.close();
    }
  });
});

describe('new EventSource(url, { shared: true }) for requests that differ', () => {
  let server: TestServer;
  /** Each request to /stream: its method, Authorization, body and x-tab header. */
  let requests: { auth: string | undefined; body: string; tab: string | undefined }[];
  let sources: EventSource[];

  beforeEach(async () => {
    Object.defineProperty(globalThis, 'navigator', { value: { locks: new TestLocks() }, configurable: true });
    requests = [];
    sources = [];
    const app = express();
    const answer = (req: Request, res: ExpressResponse): void => {
      const body = typeof req.body === 'string' ? req.body : '';
      requests.push({ auth: req.get('authorization'), body, tab: req.get('x-tab') });
      // What only this request may see: its user, its room.
      res.sse.send(`${req.get('authorization') ?? 'nobody'} in ${body || 'the lobby'}`);
    };
    app.get('/stream', sse({ heartbeat: false }), answer);
    app.post('/stream', express.text(), sse({ heartbeat: false }), answer);
    server = await startServer(app);
  });
  afterEach(async () => {
    for (const source of sources) source.close();
    delete (globalThis as { navigator?: unknown }).navigator;
    await server.close();
  });

  function open(init: EventSourceInit): EventSource {
    const source = new EventSource(`${server.url}/stream`, { shared: true, ...init });
    sources.push(source);
    return source;
  }

  /** Opens a source per init, and resolves with the messages each got once all got one. */
  async function firstMessages(...inits: EventSourceInit[]): Promise<string[][]> {
    const opened = inits.map(open);
    const got = opened.map((source) => collect(source));
    // Shared sources wait for a Web Lock and a BroadcastChannel hand-over: seconds on a busy machine.
    await waitUntil(() => got.every((messages) => messages.length > 0), 'every source to get its first event', 20_000);
    await sleep(50);
    return got;
  }

  it("never shares between different Authorization headers: each tab reads its own user's stream", async () => {
    const got = await firstMessages({ headers: { Authorization: 'Bearer alice' } }, { headers: { Authorization: 'Bearer bob' } });
    expect(got).toEqual([['Bearer alice in the lobby'], ['Bearer bob in the lobby']]);
    expect(requests.map((r) => r.auth).sort()).toEqual(['Bearer alice', 'Bearer bob']);
  });

  it('never shares between different bodies', async () => {
    const got = await firstMessages(
      { method: 'POST', body: 'room-a', headers: { 'content-type': 'text/plain' } },
      { method: 'POST', body: 'room-b', headers: { 'content-type': 'text/plain' } },
    );
    expect(got).toEqual([['nobody in room-a'], ['nobody in room-b']]);
    expect(requests).toHaveLength(2);
  });

  it('never shares between methods', async () => {
    await firstMessages({}, { method: 'POST' });
    expect(requests).toHaveLength(2);
  });

  it('shares one connection between the same requests, headers given as an object or a function', async () => {
    const got = await firstMessages(
      { headers: { Authorization: 'Bearer alice' } },
      { headers: () => Promise.resolve({ authorization: 'Bearer alice' }) },
      { headers: { Authorization: 'Bearer alice' } },
    );
    expect(got).toEqual([['Bearer alice in the lobby'], ['Bearer alice in the lobby'], ['Bearer alice in the lobby']]);
    expect(requests).toHaveLength(1);
  });

  it('shares by shareKey instead of the headers: one connection per key', async () => {
    const got = await firstMessages(
      { headers: { 'x-tab': 'A', Authorization: 'Bearer alice-1' }, shareKey: 'alice' },
      { headers: { 'x-tab': 'B', Authorization: 'Bearer alice-2' }, shareKey: 'alice' },
      { headers: { 'x-tab': 'C', Authorization: 'Bearer bob' }, shareKey: 'bob' },
    );
    // One of A and B connects for both (whichever hashed its share name first), C alone.
    const alice = requests.filter((r) => r.tab !== 'C');
    expect(alice).toHaveLength(1);
    expect(got).toEqual([[`${alice[0]!.auth} in the lobby`], [`${alice[0]!.auth} in the lobby`], ['Bearer bob in the lobby']]);
    expect(requests.map((r) => r.tab).filter((tab) => tab === 'C')).toEqual(['C']);
  });

  it('connects alone when the headers function throws while the share key is made, and reports the failure there', async () => {
    let calls = 0;
    const source = open({
      headers: () => {
        calls += 1;
        if (calls <= 2) throw new Error('token service down');
        return { Authorization: 'Bearer late' };
      },
    });
    const error = await nextEvent<SseErrorEvent>(source, 'error');
    expect([error.message, source.readyState]).toEqual(['express-sse-hub: token service down', EventSource.CONNECTING]);
  });
});
