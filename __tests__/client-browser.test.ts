// express-sse-hub/client in real headless Chromium (Debian's, driven by playwright-core): the
// built ESM file loaded by a page, shared mode across several pages of one browser context,
// headers, 429 with Retry-After, online and the back/forward cache; then the demo page using it.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express, { type RequestHandler } from 'express';
import { ChannelRegistry, sse } from 'express-sse-hub';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createDemoApp, DEMO_TOKEN, SOLO_RETRY_AFTER, type Demo } from '../demo/app';
import { describeBrowser, launchChromium, openDemoPage } from './helpers/chromium';
import { queryString, startServer, waitUntil, type TestServer } from './helpers/server';

const ROOT = path.join(__dirname, '..');
const CLIENT_FILE = path.join(ROOT, 'dist', 'client', 'index.mjs');
const PAGE = path.join(__dirname, 'fixtures', 'client-page.html');

// The page functions below run in the browser; these are the few members they touch (the project
// compiles without the DOM lib).
interface Received {
  readonly type: string;
  readonly data: string;
  readonly id: string;
}
declare const window: {
  readonly received: Received[];
  readonly states: string[];
  readonly ready?: boolean;
  readonly source?: { readonly readyState: number; readonly lastEventId: string; close(): void };
};
declare const document: { querySelector(selector: string): { readonly textContent: string | null } | null };

function launch(): Promise<Browser> {
  // Playwright turns the back/forward cache off by default; these tests need it (each launch gets
  // a fresh temporary profile).
  return launchChromium({ ignoreDefaultArgs: ['--disable-back-forward-cache'] });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describeBrowser('express-sse-hub/client in Chromium', () => {
  let browser: Browser;
  let context: BrowserContext;
  let server: TestServer;
  let registry: ChannelRegistry;
  /** Streams open now on /news, by the x-tab header of the page that opened them. */
  let active: string[];
  /** Every request to /news: which page, with which Last-Event-ID. */
  let connects: { tab: string; lastEventId: string | undefined }[];
  /** Requests to /once, a stream that ends at once and asks for a minute before the next. */
  let onceRequests: number;
  /** The Authorization of every request to /whoami. */
  let whoami: string[];

  beforeAll(async () => {
    if (!fs.existsSync(CLIENT_FILE)) throw new Error('dist/client/index.mjs is missing: run `npm run build` (npm test does it for you)');
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    registry = new ChannelRegistry({ history: 10_000 });
    active = [];
    connects = [];
    onceRequests = 0;
    whoami = [];
    const app = express();
    app.get('/', (_req, res) => res.sendFile(PAGE));
    app.get('/client.js', (_req, res) => res.type('text/javascript').sendFile(CLIENT_FILE));
    app.get('/news', sse({ retry: 100 }), (req, res) => {
      const tab = req.get('x-tab') ?? '?';
      connects.push({ tab, lastEventId: req.get('last-event-id') });
      active.push(tab);
      res.sse.signal.addEventListener('abort', () => active.splice(active.indexOf(tab), 1));
      registry.subscribe(res, ['news']);
    });
    const requireToken: RequestHandler = (req, res, next) => {
      if (req.get('authorization') === 'Bearer good') next();
      else res.status(401).json({ error: 'no' });
    };
    app.get('/private', requireToken, sse({ retry: 50 }), (req, res) => {
      res.sse.send(req.get('authorization') ?? '');
      if (req.query.drop === '1') res.sse.close();
    });
    app.get('/once', (_req, res) => {
      onceRequests += 1;
      res.type('text/event-stream').end('retry: 60000\ndata: hi\n\n');
    });
    app.get('/limited', sse({ maxConnectionsPerKey: 1, retryAfter: 1, heartbeat: false }), (_req, res) => res.sse.send('in'));
    app.get('/whoami', sse({ heartbeat: false }), (req, res) => {
      whoami.push(req.get('authorization') ?? '');
      res.sse.send(req.get('authorization') ?? '');
    });
    // Sends one event with the id asked for, then the id the next request brought back.
    app.get('/ids', sse({ retry: 50, heartbeat: false }), (req, res) => {
      const back = res.sse.lastEventId;
      if (back === undefined) {
        res.sse.send('first', { id: queryString(req.query.id) });
        res.sse.close();
      } else res.sse.send(back, { event: 'back' });
    });
    server = await startServer(app);
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context.close();
    await registry.close({ timeout: 100 });
    await server.close();
  });

  async function openPage(): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (error) => {
      throw error;
    });
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => window.ready === true);
    return page;
  }

  const received = (page: Page): Promise<Received[]> => page.evaluate(() => window.received);
  const states = (page: Page): Promise<string[]> => page.evaluate(() => window.states);
  const readyState = (page: Page): Promise<number | undefined> => page.evaluate(() => window.source?.readyState);

  /** Broadcasts each of `values` to news; resolves with their ids (positions). */
  async function publish(values: readonly number[]): Promise<string[]> {
    const ids: string[] = [];
    for (const value of values) ids.push((await registry.channel('news').broadcast(value, { event: 'news' })).id!);
    return ids;
  }

  const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  describe('when a page imports the built file', () => {
    it('connects to a relative URL and dispatches events with their ids', async () => {
      const page = await openPage();
      await page.evaluate(`track(new Client('/news', { headers: { 'x-tab': 'solo' } }))`);
      await page.waitForFunction(() => window.source?.lastEventId !== '');
      const ids = await publish([1, 2]);
      await page.waitForFunction(() => window.received.length === 2);
      expect(await received(page)).toEqual([
        { type: 'news', data: '1', id: ids[0] },
        { type: 'news', data: '2', id: ids[1] },
      ]);
      expect(await states(page)).toEqual(['open']);
    });
  });

  describe('when headers is a function returning a bearer token', () => {
    it('sends it as a header, fetching a fresh one for every connect', async () => {
      const page = await openPage();
      await page.evaluate(`let n = 0; track(new Client('/private?drop=1', { headers: async () => ({ Authorization: 'Bearer ' + (++n < 3 ? 'good' : 'expired') }) }))`);
      await page.waitForFunction(() => window.source?.readyState === 2);
      expect((await received(page)).map((e) => e.data)).toEqual(['Bearer good', 'Bearer good']);
      // The third token is refused: closed for good, with the status.
      expect((await states(page)).slice(-1)).toEqual(['error 401 undefined 2']);
    });
  });

  describe('when the server answers 429 with Retry-After: 1', () => {
    it('tries again after the backoff (Retry-After is a floor) and gets in once the other stream closed', async () => {
      const page = await openPage();
      await page.evaluate(`window.first = new Client('/limited'); first.onmessage = () => (window.firstIn = true)`);
      await page.waitForFunction(`window.firstIn === true`);
      await page.evaluate(`track(new Client('/limited'))`);
      await page.waitForFunction(() => window.states.length > 0);
      const [refused] = await states(page);
      // Retry-After (1 s) is a floor; the backoff from the reconnection time (3 s) applies too.
      const [, reconnectIn] = /^error 429 (\d+(?:\.\d+)?) 0$/.exec(refused!) ?? [];
      expect(Number(reconnectIn)).toBeGreaterThanOrEqual(3000);
      const started = Date.now();
      await page.evaluate(`first.close()`);
      await page.waitForFunction(() => window.received.length === 1, undefined, { timeout: 10_000 });
      expect(Date.now() - started).toBeGreaterThan(Number(reconnectIn) - 1000);
      expect(await states(page)).toEqual([refused, 'open']);
    }, 20_000);
  });

  describe('when event ids are not ASCII', () => {
    it.each(['native', 'ours'])('the id comes back in Last-Event-ID as the server sent it (%s)', async (impl) => {
      const page = await openPage();
      for (const id of ['naïve…', '日本語', '😀', 'café']) {
        await page.evaluate(`window.back = undefined;
          window.es = new (${impl === 'native' ? 'EventSource' : 'Client'})('/ids?id=' + encodeURIComponent(${JSON.stringify(id)}));
          es.addEventListener('back', (e) => { window.back = e.data; es.close(); });`);
        await page.waitForFunction(`window.back !== undefined`);
        expect(await page.evaluate(`window.back`)).toBe(id);
      }
    });
  });

  describe('when the stream is on another origin', () => {
    let other: TestServer;
    /** Requests the other origin got (the client's and its no-cors probes). */
    let requests: number;
    beforeEach(async () => {
      requests = 0;
      const app = express();
      app.get('/stream', (_req, res, next) => {
        requests += 1;
        next();
      }, sse({ heartbeat: false }), (_req, res) => res.sse.send('from afar'));
      other = await startServer(app);
    });
    afterEach(async () => {
      await other.close();
    });

    it('closes for good, as EventSource does, when that origin does not allow this page (CORS)', async () => {
      const page = await openPage();
      await page.evaluate(`track(new Client(${JSON.stringify(`${other.url}/stream`)}))`);
      await page.waitForFunction(() => window.source?.readyState === 2);
      expect(await states(page)).toEqual(['error undefined undefined 2']);
      expect(await page.evaluate(`window.lastError`)).toMatch(/refused the origin http:\/\/127\.0\.0\.1:\d+ \(no CORS headers allowing it\)/);
      const seen = requests;
      await sleep(500);
      expect(requests).toBe(seen);
    });

    it('keeps trying when that origin cannot be reached (an outage, not a refusal)', async () => {
      const url = `${other.url}/stream`;
      await other.close();
      const page = await openPage();
      await page.evaluate(`track(new Client(${JSON.stringify(url)}))`);
      await page.waitForFunction(() => window.states.length >= 1);
      expect(await states(page)).toEqual([expect.stringMatching(/^error undefined \d+(\.\d+)? 0$/)]);
      expect(await readyState(page)).toBe(0);
    });
  });

  describe('when the page goes offline and back online', () => {
    it('reconnects at once instead of waiting out the reconnection time', async () => {
      const page = await openPage();
      await page.evaluate(`track(new Client('/once'))`);
      // The stream ended and asked for a minute before the next attempt.
      await page.waitForFunction(() => window.states.length === 2);
      expect(await states(page)).toEqual(['open', 'error undefined 60000 0']);
      await context.setOffline(true);
      await context.setOffline(false);
      // Waiting out the reconnection time would take 60 s: the reconnect must come well before.
      await waitUntil(() => onceRequests === 2, 'a reconnect', 30_000);
    });
  });

  describe('when the page comes back from the back/forward cache', () => {
    it('closes its stream on the way in and reconnects at once on the way back', async () => {
      const page = await openPage();
      await page.evaluate(`track(new Client('/news', { headers: { 'x-tab': 'solo' } }))`);
      await page.waitForFunction(() => window.states.includes('open'));
      await page.goto(`${server.url}/client.js`);
      await waitUntil(() => active.length === 0, 'the stream closes when the page is cached');
      await page.goBack({ waitUntil: 'commit' });
      await waitUntil(() => active.length === 1, 'the stream is back');
      // The same document (restored, not reloaded) resumed from its position.
      expect(await states(page)).toEqual(['open', 'error undefined 0 0', 'open']);
      expect(connects.map((c) => c.lastEventId)).toEqual([undefined, expect.stringMatching(/^0\./)]);
    });
  });

  describe('with shared: true in several pages of one browser context', () => {
    async function sharedPages(names: readonly string[], url = '/news'): Promise<Page[]> {
      const pages: Page[] = [];
      for (const name of names) {
        const page = await openPage();
        // One user's tabs (shareKey), each naming itself in x-tab.
        await page.evaluate(`track(new Client(${JSON.stringify(url)}, { shared: true, shareKey: 'reader', headers: { 'x-tab': ${JSON.stringify(name)}, Authorization: 'Bearer ' + ${JSON.stringify(name)} } }))`);
        pages.push(page);
      }
      return pages;
    }

    it('opens one connection, and every page gets every event with the same ids', async () => {
      const pages = await sharedPages(['A', 'B', 'C']);
      for (const page of pages) await page.waitForFunction(() => window.source?.readyState === 1);
      expect(active).toEqual(['A']);
      const ids = await publish(range(1, 5));
      for (const page of pages) {
        await page.waitForFunction(() => window.received.length === 5);
        expect(await received(page)).toEqual(ids.map((id, i) => ({ type: 'news', data: String(i + 1), id })));
        expect(await page.evaluate(() => window.source?.lastEventId)).toBe(ids[4]);
      }
      await sleep(100);
      expect(connects).toHaveLength(1);
    });

    it('hands over when the leader page closes: the next resumes from its id, no gap, no duplicate', async () => {
      const pages = await sharedPages(['A', 'B', 'C']);
      for (const page of pages) await page.waitForFunction(() => window.source?.readyState === 1);
      const [leader, ...others] = pages;
      const ids = await publish(range(1, 20));
      // Events keep coming while the leader's page closes and another takes over.
      let publishing = true;
      let next = 21;
      const publisher = (async () => {
        while (publishing) {
          ids.push(...(await publish([next])));
          next += 1;
          await sleep(3);
        }
      })();
      await sleep(50);
      await leader!.close();
      await waitUntil(() => connects.length === 2 && active.length === 1, 'another page takes over', 5000);
      const taken = next;
      // Events go on after the takeover too: some time, and some events (a busy machine publishes few).
      await sleep(200);
      await waitUntil(() => next > Math.max(taken + 5, 41), 'events after the takeover');
      publishing = false;
      await publisher;
      const last = next - 1;
      expect(last).toBeGreaterThan(40);
      for (const page of others) {
        await page.waitForFunction((count) => window.received.length >= count, last, { timeout: 5000 });
        await sleep(50);
        const events = await received(page);
        expect(events.map((e) => Number(e.data))).toEqual(range(1, last));
        expect(events.map((e) => e.id)).toEqual(ids);
        expect(await readyState(page)).toBe(1);
      }
      expect(connects[1]?.tab).toMatch(/^[BC]$/);
      expect(connects[1]?.lastEventId).toMatch(/^\d+\.[0-9a-z]+$/);
      expect(active).toHaveLength(1);
    }, 30_000);

    it('hands over when the leader calls close(), and a page that joins later starts where the stream is', async () => {
      const [a, b] = await sharedPages(['A', 'B']);
      for (const page of [a!, b!]) await page.waitForFunction(() => window.source?.readyState === 1);
      const before = await publish([1, 2]);
      await b!.waitForFunction(() => window.received.length === 2);
      await a!.evaluate(() => window.source?.close());
      await waitUntil(() => active.length === 1 && active[0] === 'B', 'B takes over');
      const [c] = await sharedPages(['C']);
      await c!.waitForFunction(() => window.source?.readyState === 1);
      const after = await publish([3]);
      await c!.waitForFunction(() => window.received.length === 1);
      await b!.waitForFunction(() => window.received.length === 3);
      expect(await received(c!)).toEqual([{ type: 'news', data: '3', id: after[0] }]);
      expect((await received(b!)).map((e) => e.id)).toEqual([...before, ...after]);
      expect(await readyState(a!)).toBe(2);
      expect(connects.map((x) => x.tab)).toEqual(['A', 'B']);
    });

    it("never shares between tabs of different users (Authorization): each reads its own user's stream", async () => {
      const pages: Page[] = [];
      for (const user of ['alice', 'bob']) {
        const page = await openPage();
        await page.evaluate(`track(new Client('/whoami', { shared: true, headers: { Authorization: 'Bearer ${user}' } }))`);
        pages.push(page);
      }
      for (const page of pages) await page.waitForFunction(() => window.received.length === 1);
      await sleep(200);
      expect(await received(pages[0]!)).toEqual([{ type: 'message', data: 'Bearer alice', id: '' }]);
      expect(await received(pages[1]!)).toEqual([{ type: 'message', data: 'Bearer bob', id: '' }]);
      expect(whoami.sort()).toEqual(['Bearer alice', 'Bearer bob']);
    });

    it('closes every page when the shared connection is refused for good', async () => {
      const pages = await sharedPages(['bad', 'bad'], '/private');
      for (const page of pages) {
        await page.waitForFunction(() => window.source?.readyState === 2);
        expect((await states(page)).slice(-1)).toEqual(['error 401 undefined 2']);
      }
    });
  });
});

describeBrowser('the demo page with express-sse-hub/client in Chromium', () => {
  let browser: Browser;
  let context: BrowserContext;
  let demo: Demo;
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    demo = createDemoApp({ clockIntervalMs: 300 });
    server = http.createServer(demo.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context.close();
    await demo.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const openDemo = async (query = ''): Promise<Page> => openDemoPage(await context.newPage(), url, query);

  const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText();

  it('streams through the guarded route with the bearer token, and shows a 401 for a wrong one', async () => {
    const page = await openDemo();
    expect(await page.inputValue('#token')).toBe(DEMO_TOKEN);
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('You are now subscribed!'));
    await page.fill('#token', 'not-the-token');
    await page.click('#reconnect');
    await page.waitForSelector('#state[data-state="closed"]');
    expect(await text(page, '#client-state')).toBe('the server answered 401; closed for good');
    await page.fill('#token', DEMO_TOKEN);
    await page.click('#reconnect');
    await page.waitForSelector('#state[data-state="open"]');
  });

  it(`shows a second stream refused with 429, retrying after at least ${SOLO_RETRY_AFTER} s until the first closes`, async () => {
    const page = await openDemo();
    await page.click('#solo-a');
    await page.waitForFunction(() => document.querySelector('#solo-a-state')?.textContent?.startsWith('open') === true);
    await page.click('#solo-b');
    await page.waitForFunction(() => document.querySelector('#solo-b-state')?.textContent?.includes('429') === true);
    // Retry-After is a floor, with up to half of it again so that a crowd comes back spread out.
    const [, wait] = /^the server answered 429; retrying in (\d+\.\d) s$/.exec(await text(page, '#solo-b-state')) ?? [];
    expect(Number(wait)).toBeGreaterThanOrEqual(SOLO_RETRY_AFTER);
    expect(Number(wait)).toBeLessThanOrEqual(2 * SOLO_RETRY_AFTER);
    await page.click('#solo-a');
    await page.waitForFunction(() => document.querySelector('#solo-b-state')?.textContent?.startsWith('open') === true, undefined, {
      timeout: (2 * SOLO_RETRY_AFTER + 3) * 1000,
    });
    expect(await text(page, '#solo-a-state')).toBe('closed');
  }, 20_000);

  it('shares one connection between tabs in shared mode (online here: 1) and survives the leader tab closing', async () => {
    const first = await openDemo('?shared=1&channels=news');
    const second = await openDemo('?shared=1&channels=news');
    expect(await second.isChecked('#shared')).toBe(true);
    await first.waitForFunction(() => document.querySelector('#presence')?.textContent === '1');
    await demo.registry.channel('news').broadcast('to both tabs');
    for (const page of [first, second]) await page.waitForFunction(() => document.querySelector('#messages')?.textContent?.includes('to both tabs'));
    // The second tab opened no stream of its own: the count the first tab shows never went to 2.
    await sleep(300);
    expect(await text(first, '#presence')).toBe('1');
    await first.close();
    await demo.registry.channel('news').broadcast('after the leader left');
    await second.waitForFunction(() => document.querySelector('#messages')?.textContent?.includes('after the leader left'), undefined, { timeout: 5000 });
    const messages = await second.locator('#messages li').allInnerTexts();
    expect(messages).toEqual(['after the leader left', 'to both tabs']);
  });
});
