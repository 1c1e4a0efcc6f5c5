import type { Config } from 'jest';

const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
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

export default config;
