// Conformance of express-sse-hub/client, proven by tests nobody here wrote: the web-platform-tests
// for EventSource and the `eventsource` npm package's suite (ported in ./conformance/), run
// against the client in Node and in Chromium, and against Chromium's own EventSource as the
// reference (in Node, the `eventsource` package is the reference: it passing its own suite on our
// port of its server also shows the port is faithful). Where Chromium passes a case, the client passes it too, or the case is listed in
// ./conformance/divergences.ts (and the README) with the reason it deliberately differs; such a
// case must still fail in the way written there, so the list stays true.
import fs from 'node:fs';
import path from 'node:path';
import esbuild from 'esbuild';
import { EventSource as PackageEventSource } from 'eventsource';
import type { Browser, Page } from 'playwright-core';
import { EventSource } from '../src/client';
import { DIVERGENCES, divergence, type Where } from './conformance/divergences';
import { EVENTSOURCE_PACKAGE_CASES } from './conformance/eventsource-package-cases';
import { runCase, type Case, type Env, type Outcome } from './conformance/harness';
import { conformanceApp, conformanceState, resetState } from './conformance/server';
import { WPT_CASES } from './conformance/wpt-cases';
import { describeBrowser, launchChromium } from './helpers/chromium';
import { startServer, waitUntil, type TestServer } from './helpers/server';
import { report } from './helpers/report';

const SUITES = [
  ['wpt', 'the web-platform-tests eventsource/', WPT_CASES],
  ['eventsource', "the eventsource package's suite", EVENTSOURCE_PACKAGE_CASES],
] as const;
type Suite = (typeof SUITES)[number][0];

const ROOT = path.join(__dirname, '..');
const state = conformanceState();
let main: TestServer;
let cross: TestServer;
let closedOrigin: string;

beforeAll(async () => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'client', 'index.mjs'))) throw new Error('dist/client is missing: run `npm run build` (npm test does it for you)');
  main = await startServer(conformanceApp(state, () => main.url));
  cross = await startServer(conformanceApp(state, () => cross.url));
  state.other.set(main.url, cross.url);
  state.other.set(cross.url, main.url);
  const closed = await startServer(() => undefined);
  closedOrigin = closed.url;
  await closed.close();
  const built = await esbuild.build({ entryPoints: [path.join(__dirname, 'conformance', 'browser-entry.ts')], bundle: true, format: 'esm', target: 'es2022', write: false, logLevel: 'warning' });
  state.bundle = built.outputFiles[0]!.text;
});
afterAll(async () => {
  await main?.close();
  await cross?.close();
});
beforeEach(() => resetState(state));

/** Outcomes by suite, implementation and where, for the summary. */
const results = new Map<string, { passed: number; total: number; failed: string[] }>();
function count(key: string, outcome: Outcome, name: string): void {
  const entry = results.get(key) ?? { passed: 0, total: 0, failed: [] };
  entry.total += 1;
  if (outcome.ok) entry.passed += 1;
  else entry.failed.push(name);
  results.set(key, entry);
}

/** The client must pass, or fail as its documented divergence says. */
function judge(suite: Suite, c: Case, where: Where, ours: Outcome, native?: Outcome): void {
  const known = divergence(suite, c.name, where);
  if (known !== undefined) {
    const failing: unknown = expect.stringMatching(known.fails);
    if (known.sometimes !== true || !ours.ok) expect(ours).toEqual({ ok: false, message: failing });
  } else if (native === undefined || native.ok) {
    expect(ours).toEqual({ ok: true });
  }
}

describe.each(SUITES)('%s, in Node, against express-sse-hub/client', (suite, _title, cases) => {
  const env: Omit<Env, 'EventSource'> = {
    impl: 'ours',
    node: true,
    wpt: (p) => new URL(p, `${main.url}/eventsource/`).href,
    get crossWpt() {
      return `${cross.url}/eventsource/`;
    },
    get crossOrigin() {
      return cross.url;
    },
    get esBase() {
      return `${main.url}/es`;
    },
    get esCrossBase() {
      return `${cross.url}/es`;
    },
    get closedOrigin() {
      return closedOrigin;
    },
    scope: globalThis,
    home: { EventSource },
  };
  const runnable = cases.filter((c) => c.browserOnly === undefined);
  const browserOnly = cases.filter((c) => c.browserOnly !== undefined);

  it.each(runnable.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const reference = await runCase(c, { ...env, home: { EventSource: PackageEventSource } }, PackageEventSource as unknown as Env['EventSource']);
    resetState(state);
    const outcome = await runCase(c, env, EventSource as unknown as Env['EventSource']);
    count(`${suite} node eventsource@4`, reference, c.name);
    count(`${suite} node ours`, outcome, c.name);
    judge(suite, c, 'node', outcome, reference);
  }, 40_000);

  if (browserOnly.length > 0) {
    it.skip.each(browserOnly.map((c) => [c.name, c.browserOnly] as const))('%s (needs a browser: %s)', () => undefined);
  }
});

describeBrowser('in Chromium, against its own EventSource and express-sse-hub/client', () => {
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    browser = await launchChromium();
    page = await browser.newPage();
    page.on('pageerror', (error) => {
      throw error;
    });
    await page.goto(`${main.url}/eventsource/conformance.html`);
    await page.waitForFunction(`window.ready === true`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Runs a case in the page (loaded again after a case that spoils it). */
  async function inPage(suite: Suite, c: Case, impl: 'ours' | 'native'): Promise<Outcome> {
    resetState(state);
    const outcome: Outcome = await page.evaluate(
      ([s, name, which, other]) => (globalThis as unknown as { conformance: { run(...args: unknown[]): Promise<Outcome> } }).conformance.run(s, name, which, other),
      [suite, c.name, impl, { cross: cross.url, closed: closedOrigin }] as const,
    );
    if (c.spoilsPage === true) {
      await page.goto(`${main.url}/eventsource/conformance.html`);
      await page.waitForFunction(`window.ready === true`);
    }
    return outcome;
  }

  describe.each(SUITES)('%s', (suite, _title, cases) => {
    it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const native = c.oursOnly === undefined ? await inPage(suite, c, 'native') : undefined;
      const ours = await inPage(suite, c, 'ours');
      if (native !== undefined) count(`${suite} chromium native`, native, c.name);
      count(`${suite} chromium ours`, ours, c.name);
      judge(suite, c, 'chromium', ours, native);
    }, 40_000);
  });
});

describeBrowser('eventsource-bfcache.window.js in Chromium (navigation is driven from here)', () => {
  let browser: Browser;
  beforeAll(async () => {
    // The back/forward cache on: Playwright turns it off by default.
    browser = await launchChromium({ ignoreDefaultArgs: ['--disable-back-forward-cache'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  const open = (token: string): number => state.open.get(token) ?? 0;

  /** The case for one implementation: open, into the cache (closed), back (open again). */
  async function bfcache(impl: 'native' | 'ours'): Promise<Outcome> {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const token = `${impl}-${Date.now()}`;
      await page.goto(`${main.url}/eventsource/bfcache.html?impl=${impl}&token=${token}`);
      await waitUntil(() => open(token) === 1, 'one open stream');
      await page.goto(`${main.url}/eventsource/elsewhere.html`);
      // When the page enters BFCache its EventSource connection must be closed (wpt allows 3 s).
      await waitUntil(() => open(token) === 0, 'the stream to close as the page enters the cache', 3000);
      await page.goBack({ waitUntil: 'commit' });
      // Restored from the cache, not loaded again (assertImplementsBFCacheOptional).
      if ((await page.evaluate(`typeof window.source`)) !== 'object') return { ok: false, message: 'the page was not restored from the back/forward cache' };
      await waitUntil(() => open(token) === 1, 'the stream to reopen', 3000);
      return { ok: true };
    } catch (error) {
      return { ok: false, message: (error as Error).message };
    } finally {
      await context.close();
    }
  }

  it('EventSource should close when a page enters BFCache and reconnect when restored.', async () => {
    const c = { name: 'EventSource should close when a page enters BFCache and reconnect when restored.', from: 'eventsource-bfcache.window.js', run: () => undefined };
    const native = await bfcache('native');
    resetState(state);
    const ours = await bfcache('ours');
    count('wpt chromium native', native, c.name);
    count('wpt chromium ours', ours, c.name);
    judge('wpt', c, 'chromium', ours, native);
  }, 30_000);
});

afterAll(() => {
  const lines = [...results].map(([key, { passed, total, failed }]) => `${key}: ${passed}/${total}${failed.map((name) => `\n    fails: ${name}`).join('')}`);
  // The counts the README states (a summary to compare with it).
  report(`conformance:\n  ${lines.join('\n  ')}\n  documented divergences: ${DIVERGENCES.length}`);
});
