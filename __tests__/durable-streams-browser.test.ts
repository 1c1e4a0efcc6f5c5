// The demo page's Durable Streams panel in real headless Chromium: a chat answered by a run,
// read through /v1/stream by the AI SDK's Durable Streams transport
// (@durable-streams/aisdk-transport, bundled into the page), survives a reload mid-answer.
import type { Browser, Page } from 'playwright-core';
import { createDemoApp, type Demo } from '../demo/app';
import { CANNED_ANSWER } from '../demo/feeds';
import { describeBrowser, launchChromium } from './helpers/chromium';
import { startServer, type TestServer } from './helpers/server';

declare const document: { querySelector(selector: string): { readonly textContent: string | null; readonly dataset?: Record<string, string> } | null };

describeBrowser('a durable stream read by the AI SDK transport on the demo page, in Chromium', () => {
  let browser: Browser;
  let demo: Demo;
  let server: TestServer;

  beforeAll(async () => {
    browser = await launchChromium();
    // Generated slowly enough that the reload lands mid-answer.
    demo = createDemoApp({ clockIntervalMs: 1000, tokenPaceMs: 60 });
    server = await startServer(demo.app);
  });
  afterAll(async () => {
    await demo?.close();
    await server?.close();
    await browser?.close();
  });

  const answer = (page: Page): Promise<string> => page.locator('#durable-answer').innerText();

  it('resumes the answer from the stream after a reload, whole and once', async () => {
    const page = await browser.newPage();
    page.on('pageerror', (error) => {
      throw error;
    });
    await page.goto(server.url);
    await page.click('#durable-ask');
    await page.waitForFunction(() => (document.querySelector('#durable-answer')?.textContent ?? '').length >= 40, undefined, { timeout: 20_000 });
    const before = await answer(page);
    expect(CANNED_ANSWER.startsWith(before)).toBe(true);
    expect(before.length).toBeLessThan(CANNED_ANSWER.length);
    await page.reload();
    await page.waitForFunction(() => document.querySelector('#durable-state')?.dataset?.state === 'done', undefined, { timeout: 20_000 });
    expect(await page.locator('#durable-state').innerText()).toBe('done (resumed after a reload)');
    expect(await answer(page)).toBe(CANNED_ANSWER);
    await page.close();
  }, 60_000);
});
