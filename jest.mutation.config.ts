// The jest config Stryker runs for `npm run test:mutation`: only the fast, pure unit tests of the
// wire-format core that stryker.config.mjs mutates. No servers, Redis or browsers, so each mutant
// runs in milliseconds. These files are also part of the normal `npm test`.
import type { Config } from 'jest';
import base from './jest.config';

const config: Config = {
  // Plain node: Stryker wraps the environment and does not expand <rootDir> in the leak-checking
  // one of jest.config.ts (these tests open nothing to leak).
  testEnvironment: 'node',
  roots: base.roots,
  transform: base.transform,
  moduleNameMapper: base.moduleNameMapper,
  testMatch: [
    '**/serializer.test.ts',
    '**/client-parser.test.ts',
    '**/backoff.test.ts',
    '**/position.test.ts',
    '**/log-entry.test.ts',
    '**/frame.test.ts',
  ],
  testTimeout: 30_000,
};

export default config;
