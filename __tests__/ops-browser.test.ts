// The demo page's operations panel and its error states (#16), in real headless Chromium.
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createDemoApp, type Demo } from '../demo/app';
import { describeBrowser, launchChromium, openDemoPage, pngInfo } from './helpers/chromium';
import { startServer, type TestServer } from './helpers/server';

// The page functions below run in the browser (the project compiles without the DOM lib).
interface PageElement {
  readonly textContent: string | null;
  readonly hidden: boolean;
  getAttribute(name: string): string | null;
}
declare const document: { querySelector(selector: string): PageElement | null };

const ARTIFACTS = path.join(__dirname, 'artifacts');

describeBrowser('the demo page in Chromium (operations and errors)', () => {
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
    demo = createDemoApp({ clockIntervalMs: 300, tokenPaceMs: 5, randomPaceMs: 5, generateEventLimit: { windowMs: 60_000, limit: 5 } });
    await listen();
  });
  afterEach(async () => {
    await demo.close();
    if (server.server.listening) await stopServer();
  });

  it('draws the operations panel from /metrics.json: open streams, events/s, drops, memory (screenshot saved)', async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const page = await openPage();
    // The first poll (every 2 s) sets the baseline of the rates ...
    await page.waitForFunction(() => document.querySelector('#ops-connections')?.textContent === '1', undefined, { timeout: 10_000 });
    const before = await text(page, '#ops-totals');
    for (let i = 0; i < 4; i += 1) await fetch(`${url}/generateEvent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: `event ${i}` }) });
    // ... the next ones count these events: a rate above 0, and lines of several points.
    await page.waitForFunction(() => Number(document.querySelector('#ops-events')?.textContent) > 0 && (document.querySelector('#ops-chart-events polyline')?.getAttribute('points') ?? '').split(' ').length >= 2, undefined, { timeout: 10_000 });
    await page.waitForFunction((seen) => document.querySelector('#ops-totals')?.textContent !== seen, before, { timeout: 10_000 });
    const events = (totals: string): number => Number(/^(\d+) events/.exec(totals)?.[1]);
    expect(events(await text(page, '#ops-totals')) - events(before)).toBeGreaterThanOrEqual(4);
    expect(await text(page, '#ops-rss')).toMatch(/^\d+ MB$/);
    expect(await text(page, '#ops-totals')).toMatch(/^\d+ events, \d+ deliveries, 0 dropped, 0 refused/);
    for (const chart of ['connections', 'events', 'drops', 'rss']) {
      expect(await page.locator(`#ops-chart-${chart} polyline`).count()).toBe(1);
    }
    await page.locator('#ops-title').scrollIntoViewIfNeeded();
    await page.locator('section[aria-labelledby="ops-title"]').screenshot({ path: path.join(ARTIFACTS, 'ops-panel.png') });
    const box = await page.locator('section[aria-labelledby="ops-title"]').boundingBox();
    const shot = pngInfo(path.join(ARTIFACTS, 'ops-panel.png'));
    // The picture is the panel (a fractional box comes out a pixel larger or smaller).
    expect(Math.abs(shot.width - box!.width)).toBeLessThan(1.5);
    expect(Math.abs(shot.height - box!.height)).toBeLessThan(1.5);
    expect(shot.colours).toBeGreaterThan(20);
    await page.close();
  }, 30_000);

  it('shows why the cat-fact button failed: a 429 with its message, then a server that is down', async () => {
    const page = await openPage();
    // The limit is 5 per minute: the sixth is refused.
    for (let i = 0; i < 5; i += 1) await fetch(`${url}/generateEvent`);
    await page.click('#cat-fact');
    await page.waitForFunction(() => document.querySelector('#broadcast-result')?.textContent?.startsWith('Refused (429): too many events'));
    await stopServer();
    await page.click('#cat-fact');
    await page.waitForFunction(() => document.querySelector('#broadcast-result')?.textContent === 'Failed: the server cannot be reached.');
    await page.close();
  });

  it('shows "retrying" for the random events while the server is down', async () => {
    const page = await openPage('?pace=1000');
    await page.click('#random-start');
    await page.waitForFunction(() => document.querySelector('#random-state')?.textContent === 'running');
    await stopServer();
    await page.waitForFunction(() => document.querySelector('#random-state')?.textContent?.startsWith('retrying'), undefined, { timeout: 10_000 });
    await page.close();
  }, 20_000);

  it('shows a reset on the page when a restarted server no longer knows the last event id', async () => {
    const page = await openPage('?channels=news');
    await demo.registry.channel('news').broadcast('before the restart');
    await page.waitForFunction(() => document.querySelector('#messages')?.textContent?.includes('before the restart'));
    expect(await page.locator('#reset-notice').isHidden()).toBe(true);
    const port = Number(new URL(url).port);
    await stopServer();
    await demo.close();
    // A new process: a new in-memory log, so the page's id means nothing to it.
    demo = createDemoApp({ clockIntervalMs: 300 });
    await listen(port);
    await page.waitForFunction(() => document.querySelector('#reset-notice')?.hidden === false, undefined, { timeout: 15_000 });
    expect(await text(page, '#reset-notice')).toMatch(/^Reset on "news": the server did not know the last event id/);
    await page.close();
  }, 30_000);
});
