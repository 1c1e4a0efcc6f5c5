// The conformance cases in a Chromium page (bundled by esbuild, served as
// /eventsource/conformance.js): window.conformance.run(suite, name, impl) runs one case against the
// page's own EventSource ('native') or express-sse-hub/client ('ours', loaded by the page first).
import { EVENTSOURCE_PACKAGE_CASES } from './eventsource-package-cases';
import { runCase, type Env, type Outcome } from './harness';
import { WPT_CASES } from './wpt-cases';

const SUITES = { wpt: WPT_CASES, eventsource: EVENTSOURCE_PACKAGE_CASES };

interface Page {
  conformance: unknown;
  hubModule: { EventSource: Env['EventSource'] };
  EventSource: Env['EventSource'];
  location: { origin: string };
}
const page = globalThis as unknown as Page;

page.conformance = {
  run(suite: keyof typeof SUITES, name: string, impl: 'ours' | 'native', other: { cross: string; closed: string }): Promise<Outcome> {
    const found = SUITES[suite].find((c) => c.name === name);
    if (found === undefined) return Promise.resolve({ ok: false, message: `no case ${name}` });
    const origin = page.location.origin;
    const env: Omit<Env, 'EventSource'> = {
      impl,
      node: false,
      // The page is in eventsource/: relative URLs resolve as in wpt.
      wpt: (path) => path,
      crossWpt: `${other.cross}/eventsource/`,
      crossOrigin: other.cross,
      esBase: `${origin}/es`,
      esCrossBase: `${other.cross}/es`,
      closedOrigin: other.closed,
      scope: globalThis,
      home: impl === 'ours' ? page.hubModule : globalThis,
    };
    return runCase(found, env, impl === 'ours' ? page.hubModule.EventSource : page.EventSource);
  },
};
