// A real redis-server for the tests: started on a free port without persistence when
// redis-server is on PATH, else the server at REDIS_URL, else none (tests skip, but not in CI).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface TestRedis {
  readonly url: string;
  /** False for an external REDIS_URL, which the tests must not stop. */
  readonly ownServer: boolean;
  /** Stops the server (by the pid we started), losing its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /**
   * Restarts the server on the same port: with `keepData`, as a Redis with persistence stops and
   * comes back (SHUTDOWN SAVE, then from that snapshot); without, empty.
   */
  restart(keepData: boolean): Promise<void>;
  /** Takes a snapshot now (SAVE). */
  save(): Promise<void>;
  /**
   * Kills the server and starts it again from its last snapshot (empty if it has none): a Redis
   * whose persistence lags comes back without the writes made since.
   */
  restartFromSnapshot(): Promise<void>;
  /** Sends a signal to the server we started (SIGSTOP freezes it, SIGCONT thaws it); absent for REDIS_URL. */
  signal?(signal: NodeJS.Signals): void;
}

/** A TCP port nobody listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Sends one inline command and resolves with the first reply line. */
function command(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(5000);
    socket.on('connect', () => socket.write(`${text}\r\n`));
    socket.on('data', (d) => {
      socket.destroy();
      resolve(d.toString().split('\r\n')[0]!);
    });
    // SHUTDOWN answers nothing: the server closes the connection.
    socket.on('close', () => resolve(''));
    socket.on('error', reject);
    socket.on('timeout', () => {
      socket.destroy();
      reject(new Error(`redis: ${text} timed out`));
    });
  });
}

export const HAS_REDIS_SERVER = spawnSync('redis-server', ['--version']).status === 0;

export async function startRedis(): Promise<TestRedis | undefined> {
  if (!HAS_REDIS_SERVER) {
    const url = process.env.REDIS_URL;
    if (url !== undefined) {
      const refuse = (): Promise<void> => Promise.reject(new Error('cannot stop REDIS_URL'));
    return { url, ownServer: false, stop: refuse, start: () => Promise.resolve(), restart: refuse, save: refuse, restartFromSnapshot: refuse };
    }
    if (process.env.CI) throw new Error('CI must run the Redis tests, but neither redis-server nor REDIS_URL is available');
    console.warn('Redis tests skipped: no redis-server on PATH and no REDIS_URL (apt-get install -y redis-server)');
    return undefined;
  }
  const port = await freePort();
  // A directory of its own: a snapshot (SAVE) is written there, and loaded again by restart(true).
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sse-redis-'));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    mkdirSync(dir, { recursive: true });
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', '--dir', dir];
    child = spawn('redis-server', args, { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await ping(port))) {
      if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGKILL');
    await exited;
  };
  const restart = async (keepData: boolean): Promise<void> => {
    const running = child;
    if (keepData && running !== undefined && running.exitCode === null) {
      // SHUTDOWN SAVE snapshots and exits in one step, as a Redis with persistence stops: no
      // write can slip in between the snapshot and the exit.
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      child = undefined;
      await command(port, 'SHUTDOWN SAVE').catch(() => undefined);
      await exited;
    } else {
      rmSync(path.join(dir, 'dump.rdb'), { force: true });
      await stop();
    }
    await start();
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    ownServer: true,
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    start,
    restart,
    save: async () => {
      await command(port, 'SAVE');
    },
    restartFromSnapshot: async () => {
      await stop();
      await start();
    },
    signal: (signal) => {
      if (child !== undefined && child.exitCode === null) child.kill(signal);
    },
  };
}

/** Whether the Redis tests run: a redis-server on PATH, a REDIS_URL, or CI (where startRedis() throws if neither exists). */
export const HAS_REDIS = HAS_REDIS_SERVER || process.env.REDIS_URL !== undefined || process.env.CI !== undefined;

/** `describe` when the Redis tests run, else `describe.skip`. */
export const describeRedis = HAS_REDIS ? describe : describe.skip;

/**
 * Starts a Redis for the enclosing describe block (beforeAll) and stops it afterwards (afterAll);
 * call the returned function inside tests to get it.
 */
export function useRedis(): () => TestRedis {
  let redis: TestRedis | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    if (redis?.ownServer) await redis.stop();
  });
  return () => {
    if (redis === undefined) throw new Error('no Redis: startRedis() found none');
    return redis;
  };
}
