import type { Config } from 'jest';
import { shared } from './jest.config';

// `npm run test:long` (scripts/test-long.sh runs this, then the longer model run and other Node
// versions): the tests too long for `npm test`.
const config: Config = {
  ...shared,
  roots: ['<rootDir>/__tests__/long'],
  testTimeout: 120_000,
  // The delivery checker runs beside the others (they wait on Redis, sockets and child processes).
  maxWorkers: 2,
};

export default config;
