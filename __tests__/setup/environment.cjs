// Jest's node environment, plus a check that each test file leaves nothing running: a server, a
// socket, a timer or a child process still keeping the event loop alive once the file's tests and
// hooks are done fails the run, with what was left. (jest's --detectOpenHandles says where a
// handle was made, but only warns, and slows every test.)
'use strict';
const { TestEnvironment } = require('jest-environment-node');

/** How long teardown waits for handles that are already closing (a socket's close is async; a
 * loaded machine can take seconds). Only a file that does leave something waits that long. */
const SETTLE_MS = Number(process.env.SSE_LEAK_SETTLE_MS ?? 15_000);

function count(resources) {
  const counts = new Map();
  for (const type of resources) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** Resource types (and how many) in `now` beyond those in `before`. */
function extra(before, now) {
  const was = count(before);
  const left = [];
  for (const [type, n] of count(now)) {
    const more = n - (was.get(type) ?? 0);
    if (more > 0) left.push(`${more} ${type}`);
  }
  return left;
}

class LeakCheckingEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.testPath = context.testPath;
  }

  async setup() {
    await super.setup();
    // A piped stdout or stderr counts as a resource once written to: make both count before, so
    // that output (which setup/quiet.ts judges) is not taken for a leak.
    process.stdout.write('');
    process.stderr.write('');
    this.before = process.getActiveResourcesInfo();
  }

  async teardown() {
    const deadline = Date.now() + SETTLE_MS;
    let left = extra(this.before, process.getActiveResourcesInfo());
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20).unref());
      left = extra(this.before, process.getActiveResourcesInfo());
    }
    await super.teardown();
    if (left.length > 0 && process.env.SSE_ALLOW_LEAKS !== '1') {
      throw new Error(`${this.testPath} left ${left.join(', ')} running after its tests (close what a test opens, in afterEach/afterAll)`);
    }
  }
}

module.exports = LeakCheckingEnvironment;
