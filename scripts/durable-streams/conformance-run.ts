// Runs the Durable Streams conformance suite against express-sse-hub's router on one backend,
// starting what it needs (a redis-server, a 3-master Redis Cluster) and stopping it after:
//
//   node --import tsx scripts/durable-streams/conformance-run.ts memory|redis|cluster|reference [--json FILE]
//
// `reference` runs it against @durable-streams/server instead. The last line printed is JSON:
// { backend, total, blocks, failed } (failed: the full names of the failing tests).
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, stopServer } from '../../bench/process';
import type { TestRedis } from '../../__tests__/helpers/redis';
import type { TestCluster } from '../../__tests__/helpers/redis-cluster';

// The tests' Redis helpers choose describe or describe.skip when loaded; outside jest neither
// exists, and they are only needed for that choice.
interface RedisHelpers {
  startRedis: () => Promise<TestRedis | undefined>;
  startRedisCluster: (options: { masters: number }) => Promise<TestCluster | undefined>;
}

function redisHelpers(): RedisHelpers {
  const global = globalThis as { describe?: unknown };
  if (global.describe === undefined) global.describe = Object.assign(() => undefined, { skip: () => undefined });
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { startRedis } = require('../../__tests__/helpers/redis') as Pick<RedisHelpers, 'startRedis'>;
  const { startRedisCluster } = require('../../__tests__/helpers/redis-cluster') as Pick<RedisHelpers, 'startRedisCluster'>;
  /* eslint-enable @typescript-eslint/no-require-imports */
  return { startRedis, startRedisCluster };
}

/** What conformance.mjs reports. */
export interface ConformanceReport {
  readonly backend: string;
  readonly total: { passed: number; failed: number; skipped: number };
  readonly blocks: Record<string, { passed: number; failed: number; skipped: number }>;
  readonly passed: readonly string[];
  readonly failed: readonly { name: string; error: string }[];
}

const BACKENDS = ['memory', 'redis', 'cluster', 'reference'] as const;
export type Backend = (typeof BACKENDS)[number];

function runSuite(base: string, jsonFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'conformance.mjs'), base, '--json', jsonFile], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the conformance suite exited with ${code}`))));
  });
}

/** Starts the backend and a server on it, runs the suite, stops everything. */
export async function runConformance(backend: Backend): Promise<ConformanceReport> {
  let redis: TestRedis | undefined;
  let cluster: TestCluster | undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ds-conformance-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: '', REDIS_CLUSTER: '' };
    const { startRedis, startRedisCluster } = redisHelpers();
    if (backend === 'redis') {
      redis = await startRedis();
      if (redis === undefined) throw new Error('express-sse-hub: the redis backend needs redis-server on PATH or REDIS_URL');
      env.REDIS_URL = redis.url;
    } else if (backend === 'cluster') {
      cluster = await startRedisCluster({ masters: 3 });
      if (cluster === undefined) throw new Error('express-sse-hub: the cluster backend needs redis-server and redis-cli on PATH');
      env.REDIS_CLUSTER = cluster.nodes.map((node) => `${node.host}:${node.port}`).join(',');
    }
    const script = path.join(__dirname, backend === 'reference' ? 'reference-server.ts' : 'server.ts');
    const { child, base } = await startServer(script, [], { nodeArgs: ['--import', 'tsx'], env });
    try {
      const jsonFile = path.join(dir, 'report.json');
      await runSuite(base, jsonFile);
      const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as Omit<ConformanceReport, 'backend'>;
      return { backend, ...report };
    } finally {
      await stopServer(child);
    }
  } finally {
    await redis?.stop();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Tests that count towards the target: all but forks and the opt-in subscriptions. */
export function isTargeted(name: string): boolean {
  return !name.startsWith('Fork - ') && !name.startsWith('Reserved subscription APIs');
}

async function main(): Promise<void> {
  const backend = process.argv[2] as Backend;
  if (!BACKENDS.includes(backend)) {
    console.error(`express-sse-hub: usage: conformance-run.ts ${BACKENDS.join('|')}, got ${JSON.stringify(process.argv[2])}`);
    process.exit(2);
  }
  const report = await runConformance(backend);
  const targeted = [...report.passed, ...report.failed.map((f) => f.name)].filter(isTargeted);
  const failedTargeted = report.failed.filter((f) => isTargeted(f.name));
  console.log(`${backend}: ${report.total.passed} passed, ${report.total.failed} failed, ${report.total.skipped} skipped of ${report.total.passed + report.total.failed + report.total.skipped}; ` +
    `without forks and subscriptions: ${targeted.length - failedTargeted.length} of ${targeted.length}`);
  for (const failure of failedTargeted) console.log(`  failed: ${failure.name} (${failure.error})`);
  console.log(JSON.stringify({ backend, total: report.total, blocks: report.blocks, failed: report.failed.map((f) => f.name) }));
}

if (require.main === module) void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
