import type { Config } from 'jest';

// `npm test`: every behaviour, in minutes. The long runs (soak, the consumer matrix, the long
// delivery checker, the Durable Streams suite on Redis and Cluster) are in __tests__/long and run
// with `npm run test:long` (jest.long.config.ts).
export const shared: Config = {
  testEnvironment: '<rootDir>/__tests__/setup/environment.cjs',
  setupFilesAfterEnv: ['<rootDir>/__tests__/setup/quiet.ts'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  moduleNameMapper: {
    '^express-sse-hub$': '<rootDir>/src/index.ts',
    '^express-sse-hub/redis$': '<rootDir>/src/adapters/redis/index.ts',
    '^express-sse-hub/adapter$': '<rootDir>/src/adapters/adapter.ts',
    '^express-sse-hub/metrics$': '<rootDir>/src/metrics/index.ts',
    '^express-sse-hub/durable-streams$': '<rootDir>/src/durable-streams/index.ts',
  },
  testTimeout: 30_000,
};

const config: Config = {
  ...shared,
  roots: ['<rootDir>/__tests__'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/__tests__/long/'],
  // Two workers even on two cores: most tests wait on sockets, Redis and Chromium, not the CPU
  // (quiet, this halves the run; nothing here depends on how fast the machine is).
  maxWorkers: 2,
};

export default config;
