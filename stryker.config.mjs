// Mutation testing of the pure wire-format core (issue #22): `npm run test:mutation`.
// Stryker changes the code below one small edit at a time (a mutant) and runs the unit tests of
// jest.mutation.config.ts against each; a mutant no test notices "survives". The run fails when
// fewer than `thresholds.break` % of the mutants are killed. Report: reports/mutation/.

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
const config = {
  testRunner: 'jest',
  jest: {
    projectType: 'custom',
    configFile: 'jest.mutation.config.ts',
    enableFindRelatedTests: false,
  },
  mutate: [
    'src/stream/serializer.ts',
    'src/channels/frame.ts',
    'src/log/position.ts',
    'src/log/entry.ts',
    'src/client/parser.ts',
    'src/client/backoff.ts',
  ],
  // Only the tests that cover a mutant run against it.
  coverageAnalysis: 'perTest',
  // The machines this runs on are shared: one test runner process.
  concurrency: 1,
  thresholds: { high: 95, low: 85, break: 85 },
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  // What the sandbox copy of the project can do without.
  ignorePatterns: ['dist', 'bench', 'demo', 'docs', 'public', 'reports', 'coverage', '.stryker-tmp'],
};

export default config;
