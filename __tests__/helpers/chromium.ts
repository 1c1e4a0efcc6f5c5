// Debian's Chromium for the browser tests, driven by playwright-core (never a downloaded browser).
import fs from 'node:fs';
import { chromium, type Browser, type LaunchOptions, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAS_CHROMIUM && process.env.CI) throw new Error(`CI must run the browser tests, but Chromium is missing at ${CHROMIUM}`);

/** `describe` where Chromium exists (always in CI), else `describe.skip` with a message. */
export function describeBrowser(name: string, body: () => void): void {
  if (HAS_CHROMIUM) describe(name, body);
  else describe.skip(`${name} (skipped: no Chromium at ${CHROMIUM}; apt-get install -y chromium, or set CHROMIUM_PATH)`, body);
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, ...options });
}

/** Opens the demo page at `url` (`query` appended) in `page` and waits until its stream is open; page errors fail the test. */
export async function openDemoPage(page: Page, url: string, query = ''): Promise<Page> {
  page.on('pageerror', (error) => {
    throw error;
  });
  await page.goto(`${url}/${query}`);
  await page.waitForSelector('#state[data-state="open"]');
  return page;
}
