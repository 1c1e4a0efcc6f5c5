// A Durable Streams server to test or measure: express-sse-hub's router on memory, on a
// redis-server or on a 3-master Redis Cluster it starts, or the reference server
// (@durable-streams/server). Each server runs in a process of its own.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { startServer, stopServer } from '../../bench/process';
import type { TestRedis } from '../../__tests__/helpers/redis';
import type { TestCluster } from '../../__tests__/helpers/redis-cluster';

export const BACKENDS = ['memory', 'redis', 'cluster', 'reference'] as const;
export type Backend = (typeof BACKENDS)[number];

/** A running server: its base URL (streams live below /v1/stream) and how to stop it. */
export interface RunningBackend {
  readonly base: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

interface RedisHelpers {
  startRedis: () => Promise<TestRedis | undefined>;
  startRedisCluster: (options: { masters: number }) => Promise<TestCluster | undefined>;
}

// The tests' Redis helpers choose describe or describe.skip when loaded; outside jest neither
// exists, and they are only needed for that choice.
function redisHelpers(): RedisHelpers {
  const global = globalThis as { describe?: unknown };
  if (global.describe === undefined) global.describe = Object.assign(() => undefined, { skip: () => undefined });
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { startRedis } = require('../../__tests__/helpers/redis') as Pick<RedisHelpers, 'startRedis'>;
  const { startRedisCluster } = require('../../__tests__/helpers/redis-cluster') as Pick<RedisHelpers, 'startRedisCluster'>;
  /* eslint-enable @typescript-eslint/no-require-imports */
  return { startRedis, startRedisCluster };
}

/** Starts `backend` (and the Redis it needs). */
export async function startBackend(backend: Backend): Promise<RunningBackend> {
  let redis: TestRedis | undefined;
  let cluster: TestCluster | undefined;
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: '', REDIS_CLUSTER: '' };
  const stopRedis = async (): Promise<void> => {
    await redis?.stop();
    await cluster?.stop();
  };
  try {
    if (backend === 'redis') {
      redis = await redisHelpers().startRedis();
      if (redis === undefined) throw new Error('express-sse-hub: the redis backend needs redis-server on PATH or REDIS_URL');
      env.REDIS_URL = redis.url;
    } else if (backend === 'cluster') {
      cluster = await redisHelpers().startRedisCluster({ masters: 3 });
      if (cluster === undefined) throw new Error('express-sse-hub: the cluster backend needs redis-server and redis-cli on PATH');
      env.REDIS_CLUSTER = cluster.nodes.map((node) => `${node.host}:${node.port}`).join(',');
    }
    const script = path.join(__dirname, backend === 'reference' ? 'reference-server.ts' : 'server.ts');
    // DS_CPU_PROF=dir: a --cpu-prof profile of the server process, written when it stops.
    const profile = process.env.DS_CPU_PROF;
    const nodeArgs = [...(profile === undefined || profile === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`]), '--import', 'tsx'];
    const { child, base } = await startServer(script, [], { nodeArgs, env });
    return {
      base,
      child,
      stop: async () => {
        await stopServer(child);
        await stopRedis();
      },
    };
  } catch (error) {
    await stopRedis();
    throw error;
  }
}
