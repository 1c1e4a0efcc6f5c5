// The order jest starts test files in. With two workers the run lasts as long as its busiest
// worker, so the longest files must start first. Jest learns their durations from its cache, but
// a fresh clone has none (it then starts the largest files first, which are not the slowest): the
// files known to take longest here start first, the others in jest's own order.
'use strict';
const Sequencer = require('@jest/test-sequencer').default;
const path = require('node:path');

/** Longest first (seconds on 2 cores, quiet): client-conformance 136, Durable Streams 98, … */
const SLOWEST = [
  'client-conformance.test.ts',
  'durable-streams-conformance.test.ts',
  'client-browser.test.ts',
  'client-types.test.ts',
  'browser.test.ts',
  'delivery-model.test.ts',
  'history.test.ts',
  'delivery-cuts.test.ts',
  'demo-process.test.ts',
];

class SlowestFirst extends Sequencer {
  sort(tests) {
    const known = (test) => {
      const at = SLOWEST.indexOf(path.basename(test.path));
      return at === -1 ? SLOWEST.length : at;
    };
    const ordered = super.sort(tests);
    // Stable: files jest has timings for keep its order after the known ones.
    return [...ordered].sort((a, b) => known(a) - known(b));
  }
}

module.exports = SlowestFirst;
