// `npm start` as an operator runs it: in a copy of the repository (so its build does not touch
// the dist/ other suites read), as a real process tree, signalled by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { openStream, shutdownRetry } from './helpers/server';

const ROOT = path.join(__dirname, '..');
let copy: string;

beforeAll(() => {
  copy = mkdtempSync(path.join(os.tmpdir(), 'sse-hub-start-'));
  for (const entry of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'demo', 'public']) {
    cpSync(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
});
afterAll(() => rmSync(copy, { recursive: true, force: true }));

interface Started {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function start(command: string, args: string[], port: number): Started {
  // Its own process group, so whatever the test leaves behind is cleaned up by group below.
  const child = spawn(command, args, { cwd: copy, env: { ...process.env, PORT: String(port) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

function cleanUp(started: Started | undefined): void {
  try {
    if (started?.child.pid !== undefined) process.kill(-started.child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function serving(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/`)).ok;
  } catch {
    return false;
  }
}

async function waitServing(port: number, started: Started): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (!(await serving(port))) {
    if (Date.now() > deadline) throw new Error(`npm start did not serve within 90 s:\n${started.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

describe('npm start', () => {
  let started: Started | undefined;
  afterEach(() => cleanUp(started));

  describe('when SIGTERM is sent to the npm process itself', () => {
    it('sends every client a shutdown event and the server exits 0', async () => {
      const port = await freePort();
      started = start('npm', ['start'], port);
      await waitServing(port, started);
      const client = await openStream(`http://127.0.0.1:${port}/subscribe?channels=news`);
      await client.waitForEvents(1);
      process.kill(started.child.pid!, 'SIGTERM');
      await client.ended;
      expect(client.events.at(-1)).toMatchObject({ event: 'shutdown' });
      // The shutdown spreads reconnections: after the stream's own retry: (2 s, when it opened), a
      // second one, from 1 to 5 s, right before the last event.
      const retry = shutdownRetry(client.raw());
      expect(retry).toBeGreaterThanOrEqual(1000);
      expect(retry).toBeLessThanOrEqual(5000);
      expect(await started.exited).toBe(0);
      expect(await serving(port)).toBe(false);
    }, 120_000);
  });

  describe('when the process that started the server dies without passing a signal on', () => {
    it('shuts the server down instead of leaving it running as an orphan', async () => {
      const port = await freePort();
      // A parent that is killed outright (SIGKILL cannot be forwarded), as npm or a shell may be.
      started = start('sh', ['-c', 'node --import tsx demo/server.ts & wait'], port);
      await waitServing(port, started);
      process.kill(started.child.pid!, 'SIGKILL');
      const deadline = Date.now() + 6000;
      while ((await serving(port)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await serving(port)).toBe(false);
    }, 120_000);
  });

  describe('when the port is already in use', () => {
    it('exits non-zero with a message naming the port', async () => {
      const blocker = net.createServer();
      await new Promise<void>((resolve) => blocker.listen(0, resolve));
      const { port } = blocker.address() as net.AddressInfo;
      try {
        started = start('npm', ['start'], port);
        const code = await started.exited;
        expect(code).not.toBe(0);
        expect(started.output()).toContain(`port ${port} is already in use`);
      } finally {
        blocker.close();
      }
    }, 120_000);
  });
});
