// Runs @durable-streams/server-conformance-tests against a running server with vitest's node API
// (the package's CLI cannot find its own files when installed as a dependency) and prints one JSON
// line: per top-level block { passed, failed, skipped } and the full names of every test by outcome.
//
//   node scripts/durable-streams/conformance.mjs http://127.0.0.1:4437 [--json FILE]
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { writeFileSync } from 'node:fs';
import { startVitest } from 'vitest/node';

const [baseUrl, ...rest] = process.argv.slice(2);
if (!baseUrl || !/^https?:\/\//.test(baseUrl)) {
  console.error('express-sse-hub: usage: conformance.mjs <base URL> [--json FILE], got ' + JSON.stringify(baseUrl));
  process.exit(2);
}
const jsonAt = rest.indexOf('--json');
const jsonFile = jsonAt >= 0 ? rest[jsonAt + 1] : undefined;
process.env.DURABLE_STREAMS_URL = baseUrl;

const root = dirname(fileURLToPath(import.meta.url));
const vitest = await startVitest('test', [], {
  root,
  config: false,
  include: ['conformance.suite.mjs'],
  watch: false,
  reporters: [process.env.CONFORMANCE_VERBOSE ? 'verbose' : 'dot'],
  testTimeout: 60_000,
  hookTimeout: 60_000,
  fileParallelism: false,
}, { server: { watch: null } });

const blocks = {};
const outcomes = { passed: [], failed: [], skipped: [] };
for (const module of vitest.state.getTestModules()) {
  for (const test of module.children.allTests()) {
    const names = [];
    for (let parent = test.parent; parent && parent.type === 'suite'; parent = parent.parent) names.unshift(parent.name);
    const block = names[0] ?? '(top)';
    const state = test.result().state;
    const outcome = state === 'passed' ? 'passed' : state === 'failed' ? 'failed' : 'skipped';
    blocks[block] ??= { passed: 0, failed: 0, skipped: 0 };
    blocks[block][outcome] += 1;
    const entry = { name: [...names, test.name].join(' > ') };
    if (outcome === 'failed') entry.error = String(test.result().errors?.[0]?.message ?? '').slice(0, 300);
    outcomes[outcome].push(outcome === 'failed' ? entry : entry.name);
  }
}
await vitest.close();
const total = Object.values(blocks).reduce((sum, b) => ({
  passed: sum.passed + b.passed, failed: sum.failed + b.failed, skipped: sum.skipped + b.skipped,
}), { passed: 0, failed: 0, skipped: 0 });
const report = { baseUrl, total, blocks, ...outcomes };
if (jsonFile) writeFileSync(jsonFile, JSON.stringify(report, null, 2));
console.log(JSON.stringify({ total, blocks }));
process.exit(0);
