// A real redis-server for the tests: started on a free port without persistence when
// redis-server is on PATH, else the server at REDIS_URL, else none (tests skip, but not in CI).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export interface TestRedis {
  readonly url: string;
  /** False for an external REDIS_URL, which the tests must not stop. */
  readonly ownServer: boolean;
  /** Stops the server (by the pid we started), losing its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

function freePort(): Promise<number> {
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

export const HAS_REDIS_SERVER = spawnSync('redis-server', ['--version']).status === 0;

export async function startRedis(): Promise<TestRedis | undefined> {
  if (!HAS_REDIS_SERVER) {
    const url = process.env.REDIS_URL;
    if (url !== undefined) {
      return { url, ownServer: false, stop: () => Promise.reject(new Error('cannot stop REDIS_URL')), start: () => Promise.resolve() };
    }
    if (process.env.CI) throw new Error('CI must run the Redis tests, but neither redis-server nor REDIS_URL is available');
    console.warn('Redis tests skipped: no redis-server on PATH and no REDIS_URL (apt-get install -y redis-server)');
    return undefined;
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
      stdio: 'ignore',
    });
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
  await start();
  return { url: `redis://127.0.0.1:${port}`, ownServer: true, stop, start };
}
