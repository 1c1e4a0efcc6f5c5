// The demo page's resumable runs in real headless Chromium: a reload mid-answer continues it, a
// second tab on the same run shows the same tokens, Stop works from either tab.
import type { Browser, Page } from 'playwright-core';
import { createDemoApp, type Demo } from '../demo/app';
import { CANNED_ANSWER } from '../demo/feeds';
import { describeBrowser, launchChromium } from './helpers/chromium';
import { startServer, type TestServer } from './helpers/server';

declare const document: { querySelector(selector: string): { readonly textContent: string | null } | null };


describeBrowser('resumable runs on the demo page, in Chromium', () => {
  let browser: Browser;
  let demo: Demo;
  let server: TestServer;

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    demo = createDemoApp({ clockIntervalMs: 1000 });
    server = await startServer(demo.app);
  });
  afterEach(async () => {
    await demo.close();
    await server.close();
  });

  async function open(path: string): Promise<Page> {
    const page = await browser.newPage();
    page.on('pageerror', (error) => {
      throw error;
    });
    await page.goto(`${server.url}${path}`);
    return page;
  }

  const output = (page: Page): Promise<string> => page.locator('#ai-output').innerText();
  const state = (page: Page): Promise<string> => page.locator('#ai-state').innerText();
  const waitForText = (page: Page, length: number): Promise<unknown> =>
    page.waitForFunction((n) => (document.querySelector('#ai-output')?.textContent ?? '').length >= n, length);

  it('continues the answer after a reload mid-answer, without a gap or a repeat', async () => {
    const page = await open('/?pace=40');
    await page.click('#ai-run');
    await waitForText(page, 30);
    expect(page.url()).toMatch(/#run=[0-9a-f-]{36}$/);
    const before = await output(page);
    await page.reload();
    // The whole answer so far comes back at once, then the rest.
    await waitForText(page, before.length);
    expect((await output(page)).startsWith(before.trimEnd())).toBe(true);
    await page.waitForFunction(() => document.querySelector('#ai-state')?.textContent === 'done', undefined, { timeout: 15_000 });
    expect(await output(page)).toBe(`${CANNED_ANSWER} [DONE]`);
    await page.close();
  }, 30_000);

  it('shows the same run in a second tab, and Stop in either ends it in both', async () => {
    const first = await open('/?pace=60');
    await first.click('#ai-run');
    await waitForText(first, 20);
    const second = await open(`/${new URL(first.url()).search}${new URL(first.url()).hash}`);
    await waitForText(second, 20);
    await second.click('#ai-stop');
    for (const page of [first, second]) {
      await page.waitForFunction(() => document.querySelector('#ai-state')?.textContent === 'stopped', undefined, { timeout: 10_000 });
    }
    const [a, b] = [await output(first), await output(second)];
    expect(a).toBe(b);
    expect(a.endsWith(' [stopped]')).toBe(true);
    expect(CANNED_ANSWER.startsWith(a.slice(0, -' [stopped]'.length))).toBe(true);
    expect(a.length).toBeLessThan(CANNED_ANSWER.length);
    expect(await state(first)).toBe('stopped');
    await Promise.all([first.close(), second.close()]);
  }, 30_000);
});
