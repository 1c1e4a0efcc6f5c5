// End-to-end tests of the demo page in real headless Chromium (Debian's), driven by playwright-core.
import fs from 'node:fs';
import path from 'node:path';
import cors from 'cors';
import express from 'express';
import { sse } from 'express-sse-hub';
import type { Browser, Page } from 'playwright-core';
import { createDemoApp, RANDOM_EVENTS_TOTAL, type Demo } from '../demo/app';
import { CANNED_ANSWER } from '../demo/feeds';
import { describeBrowser, launchChromium, openDemoPage, pngInfo } from './helpers/chromium';
import { startServer, waitUntil, type TestServer } from './helpers/server';

// The page functions below run in the browser; these are the few DOM members they touch (the
// project compiles without the DOM lib).
interface PageElement {
  readonly textContent: string | null;
  readonly disabled?: boolean;
  getAttribute(name: string): string | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  readonly documentElement: { readonly scrollWidth: number; readonly clientWidth: number };
};
declare const window: { __pwned?: number };

const ARTIFACTS = path.join(__dirname, 'artifacts');

describeBrowser('the demo page in Chromium', () => {
  let browser: Browser;
  let demo: Demo;
  let server: TestServer;
  let url: string;

  async function listen(port = 0): Promise<void> {
    server = await startServer(demo.app, port);
    url = server.url;
  }

  const stopServer = (): Promise<void> => server.close();

  const openPage = async (query = ''): Promise<Page> => openDemoPage(await browser.newPage({ viewport: { width: 1280, height: 900 } }), url, query);

  const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText();

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    demo = createDemoApp({ clockIntervalMs: 300, tokenPaceMs: 5, randomPaceMs: 5 });
    await listen();
  });
  afterEach(async () => {
    await demo.close();
    await stopServer();
  });

  it('connects and shows the connected event, the clock and presence', async () => {
    const page = await openPage();
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('You are now subscribed!'));
    await page.waitForFunction(() => document.querySelector('#clock')?.textContent !== '–');
    // Presence changes are sent at most every 250 ms (coalesced): wait for the count.
    await page.waitForFunction(() => document.querySelector('#presence')?.textContent === '1');
    expect(await text(page, '#state')).toBe('open');
    await page.close();
  });

  it('shows the time, the position and no broken image before any event or tick', async () => {
    await demo.close();
    await stopServer();
    demo = createDemoApp({ clockIntervalMs: 3_600_000 });
    await listen();
    const page = await openPage();
    // The stream's position in news and sport comes in an id-only frame, which fires no event.
    await page.waitForFunction(() => /^0\.[0-9a-z]{8},0\.[0-9a-z]{8}$/.test(document.querySelector('#last-id')?.textContent ?? ''));
    await page.waitForFunction(() => document.querySelector('#clock')?.textContent !== '–');
    // Every image drawn on the page has loaded (a broken one has no natural width).
    const broken = await page.evaluate(() =>
      [...(document as unknown as { images: Iterable<{ hidden: boolean; complete: boolean; naturalWidth: number; id: string }> }).images]
        .filter((img) => !img.hidden && (!img.complete || img.naturalWidth === 0))
        .map((img) => img.id),
    );
    expect(broken).toEqual([]);
    await page.close();
  });

  it('shows in one tab an event posted from another', async () => {
    const first = await openPage();
    const second = await openPage();
    await second.fill('#bc-data', 'hello from tab two');
    await second.click('#broadcast-form button[type="submit"]');
    await first.waitForFunction(() => document.querySelector('#messages')?.textContent?.includes('hello from tab two'));
    await second.waitForFunction(() => document.querySelector('#broadcast-result')?.textContent?.includes('Delivered to 2'));
    // The page is in news and sport, both with history: the id says where it is in each.
    expect(await text(first, '#last-id')).toMatch(/^1\.[0-9a-z]{8},0\.[0-9a-z]{8}$/);
    await Promise.all([first.close(), second.close()]);
  });

  it(`ends the random-events demo after ${RANDOM_EVENTS_TOTAL} events`, async () => {
    const page = await openPage('?pace=5');
    await page.click('#random-start');
    await page.waitForFunction(() => document.querySelector('#random-state')?.textContent === 'ended: complete');
    expect(await text(page, '#random-count')).toBe(String(RANDOM_EVENTS_TOTAL));
    expect(await page.locator('#random-start').isEnabled()).toBe(true);
    await page.close();
  });

  it('stops the random events from the page and from the server', async () => {
    const page = await openPage('?pace=150');
    await page.click('#random-start');
    await page.waitForFunction(() => Number(document.querySelector('#random-count')?.textContent) >= 1);
    await page.click('#random-stop');
    const stoppedAt = await text(page, '#random-count');
    await waitUntil(() => demo.metrics.randomStreams === 0, 'the server notices the client left');
    await page.waitForTimeout(400);
    expect(await text(page, '#random-count')).toBe(stoppedAt);

    await page.click('#random-start');
    await page.waitForFunction(() => document.querySelector('#random-stop-server')?.disabled === false);
    await page.click('#random-stop-server');
    await page.waitForFunction(() => document.querySelector('#random-state')?.textContent === 'ended: stopped by the server');
    expect(demo.metrics.randomStreams).toBe(0);
    await page.close();
  });

  it('reconnects after a server restart and shows the events it missed', async () => {
    const page = await openPage('?channels=news');
    await demo.registry.channel('news').broadcast('before the restart');
    await page.waitForFunction(() => document.querySelector('#messages')?.textContent?.includes('before the restart'));
    const port = Number(new URL(url).port);
    await stopServer();
    await page.waitForFunction(() => document.querySelector('#state')?.getAttribute('data-state') !== 'open');
    // While the page is cut off, events keep being published.
    for (const n of [1, 2, 3]) await demo.registry.channel('news').broadcast(`missed ${n}`);
    await listen(port);
    await page.waitForFunction(() => document.querySelector('#messages')?.textContent?.includes('missed 3'), undefined, { timeout: 15_000 });
    const messages = await page.locator('#messages li').allInnerTexts();
    expect(messages.slice(0, 4)).toEqual(['missed 3', 'missed 2', 'missed 1', 'before the restart']);
    expect(await text(page, '#last-id')).toMatch(/^4\.[0-9a-z]{8}$/);
    expect(await text(page, '#state')).toBe('open');
    await page.close();
  }, 30_000);

  it('shows an HTML payload as text and runs nothing', async () => {
    const page = await openPage();
    const payload = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>';
    await page.fill('#bc-data', payload);
    await page.click('#broadcast-form button[type="submit"]');
    await page.waitForFunction(() => document.querySelector('#messages li') !== null);
    expect(await page.locator('#messages li').first().innerText()).toBe(payload);
    await page.waitForTimeout(200);
    expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
    expect(await page.locator('#messages img, #log img, #messages script').count()).toBe(0);
    await page.close();
  });

  it.each([
    ['EventSource (GET)', '#ai-get'],
    ['fetch (POST)', '#ai-post'],
  ])('streams the whole answer and [DONE] with %s', async (_how, button) => {
    const page = await openPage('?pace=3');
    await page.click(button);
    await page.waitForFunction(() => document.querySelector('#ai-state')?.textContent === 'done');
    expect(await page.locator('#ai-output').textContent()).toBe(`${CANNED_ANSWER} [DONE]`);
    await page.close();
  });

  it('renders cleanly on a laptop and a phone (screenshots saved)', async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const page = await openPage('?pace=20');
    await page.fill('#bc-data', 'Hello from the broadcast form');
    await page.click('#broadcast-form button[type="submit"]');
    await page.click('#random-start');
    await page.click('#ai-post');
    await page.waitForFunction(() => document.querySelector('#random-state')?.textContent === 'ended: complete', undefined, { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelector('#ai-state')?.textContent === 'done');
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo.png'), fullPage: true });
    // Nothing spills sideways on a phone.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-phone.png') });
    // The whole page at the laptop width, with something drawn on it (not a blank capture).
    const shot = pngInfo(path.join(ARTIFACTS, 'demo.png'));
    expect(shot.width).toBe(1280);
    expect(shot.height).toBeGreaterThan(900);
    expect(shot.colours).toBeGreaterThan(50);
    expect(pngInfo(path.join(ARTIFACTS, 'demo-phone.png'))).toMatchObject({ width: 390, height: 844 });
    await page.close();
  }, 30_000);
});

describeBrowser('a cross-origin EventSource with credentials (the cors package) in Chromium', () => {
  let browser: Browser;
  const servers: TestServer[] = [];
  let streamUrl = '';
  let allowedOrigin = '';

  /** A page origin: serves a blank page and sets a session cookie (host-only, so for every port of 127.0.0.1). */
  async function pageServer(): Promise<TestServer> {
    const app = express();
    app.get('/', (_req, res) => {
      res.cookie('session', 'abc', { path: '/' });
      res.type('html').send('<!doctype html><title>page</title>');
    });
    const s = await startServer(app);
    servers.push(s);
    return s;
  }

  /** Opens an EventSource from the page and resolves with the first message, or 'error'. */
  function firstMessage(page: Page, withCredentials: boolean): Promise<string> {
    return page.evaluate(
      `new Promise((resolve) => {
        const source = new EventSource(${JSON.stringify(`${streamUrl}/events`)}, { withCredentials: ${withCredentials} });
        source.onmessage = (e) => { source.close(); resolve(e.data); };
        source.onerror = () => { source.close(); resolve('error'); };
      })`,
    );
  }

  beforeAll(async () => {
    browser = await launchChromium();
    allowedOrigin = (await pageServer()).url;
    const app = express();
    app.use(cors({ origin: (origin, done) => done(null, origin === allowedOrigin), credentials: true }));
    app.get('/events', sse({ heartbeat: false }), (req, res) => {
      res.sse.send(req.headers.cookie ?? 'no cookie');
    });
    const stream = await startServer(app);
    servers.push(stream);
    streamUrl = stream.url;
  });
  afterAll(async () => {
    await browser?.close();
    for (const s of servers) await s.close();
  });

  it('sends the cookie and delivers events to the allowed origin', async () => {
    const page = await browser.newPage();
    await page.goto(allowedOrigin);
    expect(await firstMessage(page, true)).toBe('session=abc');
    // Without withCredentials the browser leaves the cookie out.
    expect(await firstMessage(page, false)).toBe('no cookie');
    await page.close();
  });

  it('blocks the stream for an origin the cors options do not list', async () => {
    const other = await pageServer();
    const page = await browser.newPage();
    await page.goto(other.url);
    expect(await firstMessage(page, true)).toBe('error');
    await page.close();
  });
});
