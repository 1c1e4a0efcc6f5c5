// What the benchmarks share: command-line options, a target server in a process of its own, and
// the frames of an event stream as a load generator reads them.
import { spawn, type ChildProcess } from 'node:child_process';
import type http from 'node:http';

/** The value after `--name` on the command line. */
export function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

/**
 * Starts `node [nodeArgs] script [args]` and resolves once it printed `{"port":N}` (see `serve`).
 */
export function startServer(
  script: string,
  args: readonly string[],
  options: { nodeArgs?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? ['--expose-gc', '--import', 'tsx']), script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: options.env ?? process.env,
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += String(chunk);
      const newline = out.indexOf('\n');
      if (newline !== -1) resolve({ child, base: `http://127.0.0.1:${(JSON.parse(out.slice(0, newline)) as { port: number }).port}` });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} server exited early (${code})`)));
  });
}

/** Ends a server started above: SIGTERM (a clean exit, so --cpu-prof writes its profile), SIGKILL after 5 s. */
export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** The server side of `startServer`: listens on a free loopback port and prints it. */
export function serve(server: http.Server): void {
  server.maxConnections = 20_000;
  process.once('SIGTERM', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
  });
}

/**
 * Calls `onFrame` with every frame (the text between blank lines) of an event stream. Returns what
 * is left unframed (at the end of the response, anything but whitespace is a cut frame).
 */
export function onFrames(res: http.IncomingMessage, onFrame: (frame: string) => void): () => string {
  res.setEncoding('utf8');
  let buffer = '';
  res.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      onFrame(frame);
    }
  });
  return () => buffer;
}
