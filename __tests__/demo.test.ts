import request from 'supertest';
import { createDemoApp, DEMO_TOKEN, PRESENCE_COALESCE_MS, RANDOM_EVENTS_TOTAL, type Demo } from '../demo/app';
import { CANNED_ANSWER } from '../demo/feeds';
import { parsePrometheus, valueOf } from './helpers/prometheus';
import { openStream, shutdownRetry, startServer, waitUntil, type TestServer, type TestStream } from './helpers/server';

describe('the demo server', () => {
  let demo: Demo;
  let server: TestServer;
  beforeEach(async () => {
    demo = createDemoApp({ clockIntervalMs: 50, tokenPaceMs: 5, randomPaceMs: 2 });
    server = await startServer(demo.app);
  });
  afterEach(async () => {
    await demo.close();
    await server.close();
  });

  describe('GET /', () => {
    it('serves the page and its script', async () => {
      const page = await request(demo.app).get('/');
      expect(page.status).toBe(200);
      expect(page.text).toContain('<script src="/app.js"></script>');
      const script = await request(demo.app).get('/app.js');
      expect(script.status).toBe(200);
      // Server values are rendered as text only: no HTML sinks in the page script.
      expect(script.text).not.toMatch(/\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write/);
    });
  });

  describe('GET /subscribe', () => {
    it('sends a connected event, tells the client where it is, then the clock and presence', async () => {
      const client = await openStream(`${server.url}/subscribe`);
      await client.waitForEvents(3);
      expect(client.events[0]).toEqual({ event: 'connected', id: undefined, data: 'You are now subscribed!' });
      // Its place in the news channel's log, in an id-only frame.
      expect(client.lastEventId()).toMatch(/^0\.[0-9a-z]{8}$/);
      // Presence changes are gathered for PRESENCE_COALESCE_MS, so it may come after a tick.
      await waitUntil(() => client.events.some((e) => e.event === 'presence'), 'the head count');
      await waitUntil(() => client.events.some((e) => e.event === 'current-date'), 'a clock tick');
      const tick = client.events.find((e) => e.event === 'current-date');
      expect(Number.isNaN(Date.parse(tick!.data))).toBe(false);
      client.destroy();
    });

    it('sends the date at once, not at the next tick of the clock', async () => {
      await demo.close();
      await server.close();
      demo = createDemoApp({ clockIntervalMs: 3_600_000 });
      server = await startServer(demo.app);
      for (const path of ['/subscribe', '/subscribe?channels=clock']) {
        const client = await openStream(`${server.url}${path}`);
        await client.waitForEvents(2);
        expect(client.events[1]!.event).toBe('current-date');
        expect(Date.now() - Date.parse(client.events[1]!.data)).toBeGreaterThanOrEqual(0);
        client.destroy();
      }
      const solo = await openStream(`${server.url}/private/solo`, { headers: { authorization: `Bearer ${DEMO_TOKEN}` } });
      await solo.waitForEvents(2);
      expect(solo.events.map((e) => e.event)).toEqual(['connected', 'current-date']);
      solo.destroy();
    });

    it('replays to a reconnecting client what it missed, from its own position', async () => {
      const first = await openStream(`${server.url}/subscribe?channels=news`);
      await waitUntil(() => first.lastEventId() !== undefined, 'the client knows where it is');
      const position = first.lastEventId()!;
      first.destroy();
      await request(demo.app).post('/generateEvent').send({ data: 'while away' });
      const again = await openStream(`${server.url}/subscribe?channels=news`, { headers: { 'last-event-id': position } });
      await waitUntil(() => again.events.some((e) => e.data === 'while away'), 'the missed event');
      expect(again.events.filter((e) => e.event !== 'presence').map((e) => e.data)).toEqual(['You are now subscribed!', 'while away']);
      again.destroy();
    });

    it('announces presence as clients join and leave', async () => {
      const first = await openStream(`${server.url}/subscribe?channels=news`);
      await waitUntil(() => first.events.some((e) => e.event === 'presence' && e.data === '{"count":1}'), 'count 1');
      const second = await openStream(`${server.url}/subscribe?channels=news`);
      await waitUntil(() => first.events.some((e) => e.event === 'presence' && e.data === '{"count":2}'), 'count 2');
      second.destroy();
      await waitUntil(() => first.events.filter((e) => e.event === 'presence').at(-1)?.data === '{"count":1}', 'back to 1');
      first.destroy();
    });

    it.each([
      ['a b', /channels must be/],
      ['x'.repeat(33), /channels must be/],
      ['a,,b', /channels must be/],
      ['presence', /"presence" is reserved/],
      ['news,made-up', /no channel "made-up" here/],
    ])('answers 400 JSON for channels=%p before opening a stream', async (channels, message) => {
      const response = await request(demo.app).get('/subscribe').query({ channels }).set('Accept', 'text/event-stream');
      expect(response.status).toBe(400);
      expect(response.type).toBe('application/json');
      expect((response.body as { error: string }).error).toMatch(message);
    });

    it('creates no channel for made-up names, even with a Last-Event-ID', async () => {
      for (let i = 0; i < 50; i += 1) {
        const response = await request(demo.app).get('/subscribe').query({ channels: `made-up-${i}` }).set('Last-Event-ID', '0.aaaaaaaa');
        expect(response.status).toBe(400);
      }
      expect(Object.keys(demo.registry.stats().channels).filter((name) => name.startsWith('made-up'))).toEqual([]);
    });

    it.each([['%0A'], ['a%0Db'], ['%00'], [encodeURIComponent('x'.repeat(513))]])('answers 400 JSON for ?lastEventId=%s', async (id) => {
      const response = await fetch(`${server.url}/subscribe?channels=news&lastEventId=${id}`, { headers: { accept: 'text/event-stream' } });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toMatch(/Last-Event-ID must be one line/);
    });

    it('sends one presence event for many clients leaving at once, not one per client', async () => {
      const watcher = await openStream(`${server.url}/subscribe?channels=news`);
      const crowd = await Promise.all(Array.from({ length: 40 }, () => openStream(`${server.url}/subscribe?channels=news`, { retain: false })));
      await waitUntil(() => watcher.events.some((e) => e.event === 'presence' && e.data === '{"count":41}'), 'count 41', 5000);
      const before = watcher.events.filter((e) => e.event === 'presence').length;
      for (const client of crowd) client.destroy();
      await waitUntil(() => watcher.events.filter((e) => e.event === 'presence').at(-1)?.data === '{"count":1}', 'back to 1', 5000);
      await new Promise((r) => setTimeout(r, PRESENCE_COALESCE_MS * 2));
      // 40 leaves: at most two events (a window may close while the sockets are still closing).
      expect(watcher.events.filter((e) => e.event === 'presence').length - before).toBeLessThanOrEqual(2);
      watcher.destroy();
    });
  });

  describe('POST /generateEvent', () => {
    it('broadcasts to the default channel a bare /subscribe joined', async () => {
      const client = await openStream(`${server.url}/subscribe`);
      await client.waitForEvents(1);
      const response = await request(demo.app).post('/generateEvent').send({ data: { text: 'hi' } });
      expect(response.status).toBe(200);
      const { id } = response.body as { id: string };
      expect(response.body).toEqual({ delivered: 1, id: expect.stringMatching(/^1\.[0-9a-z]{8}$/) as string });
      await waitUntil(() => client.events.some((e) => e.event === undefined), 'the broadcast');
      expect(client.events.find((e) => e.event === undefined)).toEqual({ event: undefined, id, data: '{"text":"hi"}' });
      client.destroy();
    });

    it('reaches only the channel named, with the event named', async () => {
      const news = await openStream(`${server.url}/subscribe?channels=news`);
      const sport = await openStream(`${server.url}/subscribe?channels=sport`);
      await news.waitForEvents(1);
      await sport.waitForEvents(1);
      const response = await request(demo.app).post('/generateEvent').send({ channel: 'sport', event: 'goal', data: '1-0' });
      expect(response.body).toMatchObject({ delivered: 1 });
      await waitUntil(() => sport.events.some((e) => e.event === 'goal'), 'the goal');
      await new Promise((r) => setTimeout(r, 30));
      expect(news.events.some((e) => e.event === 'goal')).toBe(false);
      news.destroy();
      sport.destroy();
    });

    describe.each([
      ['invalid JSON', (r: request.Test) => r.set('Content-Type', 'application/json').send('{"data": nope'), 400, /not valid JSON/],
      ['a bad event name', (r: request.Test) => r.send({ event: 'a\nb', data: 'x' }), 400, /event must be/],
      ['a long event name', (r: request.Test) => r.send({ event: 'e'.repeat(33), data: 'x' }), 400, /event must be/],
      ['a bad channel name', (r: request.Test) => r.send({ channel: '../etc', data: 'x' }), 400, /channel must be/],
      ['a reserved channel', (r: request.Test) => r.send({ channel: 'clock', data: 'x' }), 400, /channel "clock" is reserved/],
      ['a made-up channel', (r: request.Test) => r.send({ channel: 'made-up', data: 'x' }), 400, /no channel "made-up" here/],
      ['an array body', (r: request.Test) => r.send([1, 2]), 400, /JSON object/],
      ['a body over the limit', (r: request.Test) => r.send({ data: 'x'.repeat(20_000) }), 413, /larger than/],
      ['a form body', (r: request.Test) => r.type('form').send('data=x'), 415, /Content-Type: application\/json/],
    ])('when it gets %s', (_what, build, status, message) => {
      it(`answers ${status} with a JSON error, broadcasts nothing and keeps serving`, async () => {
        const client = await openStream(`${server.url}/subscribe?channels=news`);
        await client.waitForEvents(1);
        const eventsBefore = demo.registry.stats().events;
        const response = await build(request(server.url).post('/generateEvent'));
        expect(response.status).toBe(status);
        expect((response.body as { error: string }).error).toMatch(message);
        expect(demo.registry.stats().events - eventsBefore).toBe(0);
        const ok = await request(server.url).post('/generateEvent').send({ data: 'still here' });
        expect(ok.status).toBe(200);
        await waitUntil(() => client.events.some((e) => e.data === 'still here'), 'the next broadcast');
        expect(client.events.filter((e) => e.event === undefined).map((e) => e.data)).toEqual(['still here']);
        client.destroy();
      });
    });
  });

  describe('the /generateEvent rate limit (express-rate-limit)', () => {
    it('answers 429 with a JSON error and Retry-After beyond the limit, broadcasting nothing', async () => {
      const limited = createDemoApp({ clockIntervalMs: 60_000, generateEventLimit: { windowMs: 60_000, limit: 3 } });
      try {
        const ok = [
          await request(limited.app).post('/generateEvent').send({ data: 'one' }),
          await request(limited.app).post('/generateEvent').send({ data: 'two' }),
          // GET counts against the same limit.
          await request(limited.app).get('/generateEvent'),
        ];
        expect(ok.map((r) => r.status)).toEqual([200, 200, 200]);
        expect(ok[0]!.headers.ratelimit).toMatch(/limit=3, remaining=2/);
        const eventsBefore = limited.registry.stats().events;
        const refused = await request(limited.app).post('/generateEvent').send({ data: 'three' });
        expect(refused.status).toBe(429);
        expect(refused.type).toBe('application/json');
        expect((refused.body as { error: string }).error).toMatch(/too many events/);
        expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
        expect(limited.registry.stats().events).toBe(eventsBefore);
        expect((await request(limited.app).get('/generateEvent')).status).toBe(429);
      } finally {
        await limited.close();
      }
    });
  });

  describe('GET /generateEvent', () => {
    it('broadcasts a random cat fact', async () => {
      const client = await openStream(`${server.url}/subscribe`);
      await client.waitForEvents(1);
      const response = await request(demo.app).get('/generateEvent');
      expect(response.body).toMatchObject({ delivered: 1 });
      await waitUntil(() => client.events.some((e) => e.event === 'catFact'), 'a cat fact');
      expect(client.events.find((e) => e.event === 'catFact')?.data.length).toBeGreaterThan(10);
      client.destroy();
    });
  });

  describe('GET /random-events', () => {
    it(`sends ${RANDOM_EVENTS_TOTAL} events of the four types, then the end event, and closes`, async () => {
      const client = await openStream(`${server.url}/random-events?pace=1`);
      await client.ended;
      const [first, ...rest] = client.events;
      expect(first?.event).toBe('stream');
      const body = rest.slice(0, -1);
      expect(body).toHaveLength(RANDOM_EVENTS_TOTAL);
      expect(new Set(body.map((e) => e.event)).size).toBeGreaterThan(1);
      for (const e of body) expect(['coinToss', 'dieRoll', 'catFact', 'meme']).toContain(e.event);
      expect(body.map((e) => e.id)).toEqual(Array.from({ length: RANDOM_EVENTS_TOTAL }, (_, i) => String(i + 1)));
      expect(rest.at(-1)).toEqual({ event: 'end', id: '-1', data: 'complete' });
      for (const e of body.filter((x) => x.event === 'dieRoll')) expect(['1', '2', '3', '4', '5', '6']).toContain(e.data);
      for (const e of body.filter((x) => x.event === 'meme')) expect(e.data).toMatch(/^\/memes\/[\w-]+\.svg$/);
      expect(demo.metrics.randomStreams).toBe(0);
    });

    it('ends early when asked by POST /random-events/:id/stop', async () => {
      const client = await openStream(`${server.url}/random-events?pace=200`);
      const [first] = await client.waitForEvents(1);
      const { stream } = JSON.parse(first!.data) as { stream: string };
      const response = await request(demo.app).post(`/random-events/${stream}/stop`);
      expect(response.body).toEqual({ stopped: true });
      await client.ended;
      expect(client.events.at(-1)).toEqual({ event: 'end', id: '-1', data: 'stopped by the server' });
      expect((await request(demo.app).post(`/random-events/${stream}/stop`)).status).toBe(404);
    });

    it('stops its timer when the client closes', async () => {
      const client = await openStream(`${server.url}/random-events?pace=200`);
      await client.waitForEvents(1);
      expect(demo.metrics.randomStreams).toBe(1);
      client.destroy();
      await waitUntil(() => demo.metrics.randomStreams === 0, 'the stream is forgotten');
    });
  });

  describe('/ai/stream', () => {
    const answerOf = (events: { data: string }[]): string =>
      events
        .slice(0, -1)
        .map((e) => (JSON.parse(e.data) as { token: string }).token)
        .join('');

    it('streams the answer word by word over GET, ending with [DONE]', async () => {
      const client = await openStream(`${server.url}/ai/stream?prompt=hello`);
      await client.ended;
      expect(client.events.at(-1)?.data).toBe('[DONE]');
      expect(answerOf(client.events)).toBe(CANNED_ANSWER);
      expect(client.events.length).toBeGreaterThan(20);
    });

    it('streams over POST with a JSON body', async () => {
      const client = await openStream(`${server.url}/ai/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'hello' }),
      });
      await client.ended;
      expect(answerOf(client.events)).toBe(CANNED_ANSWER);
      expect(client.events.at(-1)?.data).toBe('[DONE]');
    });

    it('stops generating as soon as the client leaves', async () => {
      const client = await openStream(`${server.url}/ai/stream?prompt=hello&pace=40`);
      await client.waitForEvents(2);
      client.destroy();
      await waitUntil(() => demo.metrics.generating === 0, 'the generation stops', 500);
      const produced = demo.metrics.tokens;
      await new Promise((r) => setTimeout(r, 150));
      expect(demo.metrics.tokens).toBe(produced);
      expect(produced).toBeLessThan(CANNED_ANSWER.split(' ').length);
    });

    it('answers 400 for a prompt that is not a short string', async () => {
      const response = await request(demo.app).post('/ai/stream').send({ prompt: 'x'.repeat(501) }).set('Accept', 'text/event-stream');
      expect(response.status).toBe(400);
      expect((response.body as { error: string }).error).toMatch(/prompt must be/);
    });
  });

  describe('demo.close()', () => {
    it('sends every subscriber a shutdown event after a retry: within 5 s, and ends the streams', async () => {
      const client = await openStream(`${server.url}/subscribe`);
      await client.waitForEvents(1);
      await demo.close();
      await client.ended;
      expect(client.events.at(-1)).toMatchObject({ event: 'shutdown' });
      // The stream's own retry: when it opened, then the shutdown's, drawn from 1 to 5 s, before the last event.
      const retry = shutdownRetry(client.raw());
      expect(retry).toBeGreaterThanOrEqual(1000);
      expect(retry).toBeLessThanOrEqual(5000);
    });
  });

  describe('GET /metrics', () => {
    it('answers Prometheus text that moves as clients connect and events are broadcast', async () => {
      const scrape = async () => parsePrometheus((await request(demo.app).get('/metrics').expect(200)).text);
      const before = await scrape();
      const client = await openStream(`${server.url}/subscribe?channels=news`);
      await client.waitForEvents(1);
      await request(demo.app).post('/generateEvent').send({ data: 'counted' }).expect(200);
      await waitUntil(() => client.events.some((e) => e.data === 'counted'), 'the event');
      const after = await scrape();
      expect(valueOf(after, 'sse_connections') - valueOf(before, 'sse_connections')).toBe(1);
      expect(valueOf(after, 'sse_events_total') - valueOf(before, 'sse_events_total')).toBeGreaterThanOrEqual(1);
      expect(valueOf(after, 'sse_deliveries_total')).toBeGreaterThan(valueOf(before, 'sse_deliveries_total'));
      const json = (await request(demo.app).get('/metrics.json').expect(200)).body as Record<string, number>;
      expect(json.sse_connections).toBe(1);
      client.destroy();
    });
  });
});

describe('the demo\'s stream limits', () => {
  let demo: Demo;
  let server: TestServer;
  const clients: TestStream[] = [];
  async function start(trustProxy?: string): Promise<void> {
    demo = createDemoApp({ clockIntervalMs: 60_000, randomPaceMs: 1000, tokenPaceMs: 1000, streamLimits: { max: 5, perIp: 2 }, trustProxy });
    server = await startServer(demo.app);
  }
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await demo.close();
    await server.close();
  });

  it.each([['/subscribe?channels=news'], ['/random-events'], ['/ai/stream?prompt=hi']])('refuses a third stream from one IP on %s with 429', async (route) => {
    await start();
    clients.push(await openStream(`${server.url}${route}`), await openStream(`${server.url}${route}`));
    await Promise.all(clients.map((c) => c.waitForEvents(1)));
    const third = await fetch(`${server.url}${route}`, { headers: { accept: 'text/event-stream' } });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).not.toBeNull();
  });

  it.each([['/subscribe?channels=news'], ['/random-events'], ['/ai/stream?prompt=hi'], ['/private/solo']])(
    'refuses a sixth stream on %s whatever the IP with 503, and GET / keeps answering',
    async (route) => {
      await start('loopback');
      const headers = (ip: string) => ({ 'x-forwarded-for': ip, authorization: `Bearer ${DEMO_TOKEN}` });
      for (let i = 0; i < 5; i += 1) clients.push(await openStream(`${server.url}${route}`, { headers: headers(`203.0.113.${i}`) }));
      const sixth = await fetch(`${server.url}${route}`, { headers: { ...headers('203.0.113.99'), accept: 'text/event-stream' } });
      expect(sixth.status).toBe(503);
      expect((await fetch(`${server.url}/`)).status).toBe(200);
    },
  );

  describe('behind a proxy (TRUST_PROXY)', () => {
    it('counts each forwarded client on its own when the proxy is trusted, and all as one when not', async () => {
      const through = (ip: string) => openStream(`${server.url}/subscribe?channels=news`, { headers: { 'x-forwarded-for': ip } });
      await start('loopback');
      for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) clients.push(await through(ip));
      await Promise.all(clients.map((c) => c.waitForEvents(1)));
      expect(demo.registry.stats().connections).toBe(3);
      for (const client of clients.splice(0)) client.destroy();
      await demo.close();
      await server.close();

      await start();
      clients.push(await through('198.51.100.1'), await through('198.51.100.2'));
      const third = await fetch(`${server.url}/subscribe?channels=news`, { headers: { 'x-forwarded-for': '198.51.100.3' } });
      expect(third.status).toBe(429);
    });
  });
});
