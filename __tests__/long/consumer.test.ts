// The package as a TypeScript user gets it: `npm pack`, installed into fresh projects (NodeNext ESM
// and CommonJS, TypeScript 5.9 and 7, strict options, skipLibCheck off), where every ```ts block of
// README.md, read now, is typechecked, compiled and run as pasted, each in its own process.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { extractTsBlocks, firstGetPath, importedPackages, LISTEN_PRELOAD, LISTENING_MARK, needsRedis, type ReadmeBlock } from '../helpers/readme';
import { startRedis, type TestRedis } from '../helpers/redis';
import { startRedisCluster, type TestCluster } from '../helpers/redis-cluster';

jest.setTimeout(10 * 60_000);

const ROOT = path.join(__dirname, '..', '..');
const BLOCKS = extractTsBlocks(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
const ROOT_PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

/** What every consumer project installs besides the package itself, its TypeScript and its ioredis. */
const BASE_PACKAGES = ['express@5', '@types/express@5', '@types/node@20'];

/** Platforms with a native TypeScript 7 compiler (the optionalDependencies of typescript@7). */
const TS7_PLATFORMS = new Set(
  [
    'win32-x64', 'win32-arm64', 'linux-x64', 'linux-arm', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'aix-ppc64',
    'freebsd-arm64', 'freebsd-x64', 'linux-loong64', 'linux-mips64el', 'linux-ppc64', 'linux-riscv64', 'linux-s390x',
    'netbsd-arm64', 'netbsd-x64', 'openbsd-arm64', 'openbsd-x64', 'sunos-x64',
  ],
);

interface TypeScriptUnderTest {
  readonly name: string;
  readonly dir: string;
  readonly spec: string;
  /**
   * The ioredis of this project (both majors of the peer range are covered). ioredis 6 declares
   * types that import the untyped `redis-errors`: with skipLibCheck off a user needs
   * `@types/redis-errors`, as the README's Redis section says.
   */
  readonly ioredis: readonly string[];
  /** Why it cannot run here, if it cannot. */
  readonly unavailable?: string;
}

const PLATFORM = `${process.platform}-${process.arch}`;
const TYPESCRIPTS: readonly TypeScriptUnderTest[] = [
  { name: 'TypeScript 5.9 and ioredis 5', dir: 'ts-5.9', spec: 'typescript@~5.9', ioredis: ['ioredis@5'] },
  {
    name: 'TypeScript 7 and ioredis 6',
    dir: 'ts-7',
    spec: 'typescript@7',
    ioredis: ['ioredis@6', '@types/redis-errors'],
    ...(TS7_PLATFORMS.has(PLATFORM) ? {} : { unavailable: `typescript@7 ships no native compiler for ${PLATFORM}` }),
  },
];

interface Flavour {
  readonly name: string;
  readonly dir: string;
  readonly type: 'module' | 'commonjs';
}

const FLAVOURS: readonly Flavour[] = [
  { name: 'NodeNext ESM', dir: 'esm', type: 'module' },
  { name: 'CommonJS', dir: 'cjs', type: 'commonjs' },
];

/** Options every consumer project compiles with: the strictest a user may reasonably pick. */
const COMPILER_OPTIONS = {
  target: 'ES2022',
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  strict: true,
  skipLibCheck: false,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  esModuleInterop: true,
  types: ['node'],
  rootDir: '.',
  outDir: 'out',
};

/** A consumer of both entry points; with skipLibCheck off it also checks every .d.ts it reaches. */
const CONSUMER_FILE = 'consumer-check.ts';
const CONSUMER_CODE = `import express from 'express';
import { ChannelRegistry, sse, type SseResponse } from 'express-sse-hub';
import { createRedisAdapter, RedisAdapter } from 'express-sse-hub/redis';

interface ChatEvents { chat: { user: string; text: string }; presence: number }

const app = express();
app.use(sse({ heartbeat: 15_000, retry: 2000 }));

app.get('/plain', (_req, res) => {
  const sent: boolean = res.sse.send({ now: Date.now() }, { event: 'tick', id: 1 });
  res.sse.comment('still here');
  const signal: AbortSignal = res.sse.signal;
  void [sent, signal];
});

app.get('/chat/:room', sse<ChatEvents>(), (req, res) => {
  res.sse.send({ user: 'ann', text: req.params.room }, { event: 'chat' });
  res.sse.send(3, { event: 'presence' });
  // @ts-expect-error a presence event carries a number
  res.sse.send('three', { event: 'presence' });
  // @ts-expect-error the map has no such event
  res.sse.send(1, { event: 'typo' });
});

const onPresence = (_req: express.Request, res: SseResponse<ChatEvents>): void => {
  res.sse.send(3, { event: 'presence' });
};
app.get('/presence', sse<ChatEvents>(), onPresence);

export async function scaledOut(url: string): Promise<ChannelRegistry> {
  const adapter = await RedisAdapter.connect({ url, prefix: 'consumer', connectTimeout: 1000 });
  const registry = new ChannelRegistry({ adapter, history: 100 });
  app.get('/subscribe', sse(), (_req, res) => {
    registry.subscribe(res, ['news']);
  });
  await registry.channel('news').broadcast({ hello: 'world' }, { event: 'news' });
  return registry;
}

export const localOnly = createRedisAdapter({ url: 'redis://127.0.0.1:1', onUnavailable: 'memory' });
export { app };
`;

interface ProcessResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (killed after `timeout` ms), never rejecting: the caller judges the result. */
function exec(file: string, args: readonly string[], cwd: string, timeout: number, env: NodeJS.ProcessEnv = process.env): Promise<ProcessResult> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout, env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      const killed = error?.killed === true ? `\n[killed after ${timeout} ms]` : '';
      resolve({ code, stdout, stderr: `${stderr}${error !== null && code === null ? `\n${error.message}` : ''}${killed}` });
    });
  });
}

/** The environment for npm: without the npm_package_* / npm_lifecycle_* / prefix variables of an enclosing `npm test`. */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const k = key.toLowerCase();
    if (k.startsWith('npm_') && !k.startsWith('npm_config_')) continue;
    if (k === 'npm_config_local_prefix' || k === 'init_cwd') continue;
    env[key] = value;
  }
  return env;
}

const tail = (text: string, max = 4000): string => (text.length > max ? `…${text.slice(-max)}` : text);
const numbered = (code: string): string =>
  code
    .trimEnd()
    .split('\n')
    .map((l, i) => `${String(i + 1).padStart(3)} | ${l}`)
    .join('\n');

interface Installed {
  readonly dir: string;
  /** The compiler's JS entry (its package.json "bin", `tsc` or `tsgo`), run with this Node. */
  readonly tsc: string;
  readonly version: string;
}

/** The packages README blocks import beyond the base set, at the ranges this repository uses (with their @types). */
function extraPackages(): string[] {
  const declared = { ...ROOT_PACKAGE.dependencies, ...ROOT_PACKAGE.devDependencies };
  const base = new Set(['express-sse-hub', 'express', 'ioredis', 'typescript']);
  const extras: string[] = [];
  for (const name of new Set(BLOCKS.flatMap((b) => importedPackages(b.code)))) {
    const range = declared[name];
    if (base.has(name) || range === undefined) continue; // undeclared: the block fails with "Cannot find module"
    extras.push(`${name}@${range}`);
    const types = declared[`@types/${name}`];
    if (types !== undefined) extras.push(`@types/${name}@${types}`);
  }
  return extras;
}

async function install(dir: string, tarball: string, ts: TypeScriptUnderTest): Promise<Installed> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: `consumer-${ts.dir}`, private: true }, null, 2)}\n`);
  const args = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, ...BASE_PACKAGES, ...ts.ioredis, ts.spec, ...extraPackages()];
  const result = await exec('npm', args, dir, 5 * 60_000, npmEnv());
  if (result.code !== 0) throw new Error(`npm ${args.join(' ')} failed (exit ${result.code}):\n${tail(result.stderr)}`);
  const manifestPath = path.join(dir, 'node_modules', 'typescript', 'package.json');
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as { version: string; bin?: string | Record<string, string> };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : (manifest.bin?.tsc ?? manifest.bin?.tsgo ?? Object.values(manifest.bin ?? {})[0]);
  if (bin === undefined) throw new Error(`${manifestPath} declares no compiler in "bin"`);
  const tsc = path.join(dir, 'node_modules', 'typescript', bin);
  const probe = await exec(process.execPath, [tsc, '--version'], dir, 60_000);
  if (probe.code !== 0) throw new Error(`${ts.spec} ${manifest.version} (${tsc}) cannot run here: ${tail(probe.stderr || probe.stdout)}`);
  return { dir, tsc, version: probe.stdout.trim() };
}

/** tsc's `--pretty false` output, grouped by file (relative to the project; '' for global errors). */
function diagnosticsByFile(output: string, projectDir: string): Map<string, string[]> {
  const byFile = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of output.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    if (/^\s/.test(line) && current !== undefined) {
      current[current.length - 1] += `\n${line}`;
      continue;
    }
    const match = /^(.+?)\(\d+,\d+\): (?:error|warning)/.exec(line);
    const file = match?.[1] === undefined ? '' : path.relative(projectDir, path.resolve(projectDir, match[1]));
    current = byFile.get(file) ?? [];
    current.push(line);
    byFile.set(file, current);
  }
  return byFile;
}

interface Project {
  readonly dir: string;
  /** Per file (relative to the project), from every typecheck run. */
  readonly diagnostics: Map<string, string[]>;
  readonly checks: readonly ProcessResult[];
  readonly emit: ProcessResult;
}

/**
 * A block that augments global or module types (`declare global`, `declare module`, a triple-slash
 * reference) would change how the other blocks typecheck in a shared program, so it gets its own.
 */
const augments = (block: ReadmeBlock): boolean => /\bdeclare\s+(global|module)\b|^\s*\/\/\/\s*<reference/m.test(block.code);

async function prepareProject(installed: Installed, flavour: Flavour): Promise<Project> {
  const dir = path.join(installed.dir, flavour.dir);
  const write = (file: string, text: string): void => fs.writeFileSync(path.join(dir, file), text);
  const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  write('package.json', json({ private: true, type: flavour.type }));
  for (const block of BLOCKS) write(block.fileName, block.code);
  write(CONSUMER_FILE, CONSUMER_CODE);
  // Everything in one program for the emit; blocks that augment types are checked each on its own.
  write('tsconfig.json', json({ compilerOptions: COMPILER_OPTIONS, include: ['*.ts'] }));
  const isolated = BLOCKS.filter(augments);
  const programs = [
    { name: 'tsconfig.shared.json', files: [...BLOCKS.filter((b) => !augments(b)).map((b) => b.fileName), CONSUMER_FILE] },
    ...isolated.map((b) => ({ name: `tsconfig.${b.fileName.replace(/\.ts$/, '')}.json`, files: [b.fileName] })),
  ];
  for (const program of programs) write(program.name, json({ extends: './tsconfig.json', files: program.files, include: [] }));
  const tsc = (args: string[]): Promise<ProcessResult> => exec(process.execPath, [installed.tsc, ...args, '--pretty', 'false'], dir, 3 * 60_000);
  // Emits JavaScript whatever the type errors, so each block also runs (and fails) for what it does.
  const [emit, ...checks] = await Promise.all([tsc(['-p', 'tsconfig.json', '--noCheck']), ...programs.map((p) => tsc(['--noEmit', '-p', p.name]))]);
  const diagnostics = new Map<string, string[]>();
  for (const check of checks) {
    for (const [file, found] of diagnosticsByFile(`${check.stdout}\n${check.stderr}`, dir)) {
      const known = diagnostics.get(file) ?? [];
      diagnostics.set(file, [...known, ...found.filter((d) => !known.includes(d))]);
    }
  }
  return { dir, diagnostics, checks, emit };
}

const children = new Set<ChildProcess>();

function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** Stops a child we started (by its pid): SIGTERM, then SIGKILL if it is still there after 3 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (!(await exited(child, 3000))) {
    child.kill('SIGKILL');
    await exited(child, 3000);
  }
}

/** One GET with `Accept: text/event-stream`: the status, or why there was none (within 5 s). */
function getOnce(address: string, port: number, urlPath: string): Promise<{ status?: number; error?: string }> {
  const host = address === '::' || address === '0.0.0.0' ? '127.0.0.1' : address;
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: urlPath, headers: { accept: 'text/event-stream' }, agent: false, timeout: 5000 }, (res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.destroy();
      req.destroy();
    });
    req.on('timeout', () => {
      resolve({ error: `no response within 5 s` });
      req.destroy();
    });
    req.on('error', (error) => resolve({ error: error.message }));
  });
}

const START_DEADLINE_MS = 8000;
const SETTLE_MS = 300;

/**
 * Runs one compiled example in its own Node process (preloaded so that `listen(3000)` takes a free
 * port and says so) and returns what went wrong: nothing for a clean run.
 */
async function runExample(script: string, cwd: string, preload: string, env: NodeJS.ProcessEnv, getPath: string): Promise<string[]> {
  const child = spawn(process.execPath, ['--require', preload, script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const streamsClosed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  let deadline: NodeJS.Timeout | undefined;
  const listening = new Promise<{ port: number; address: string } | undefined>((resolve) => {
    deadline = setTimeout(() => resolve(undefined), START_DEADLINE_MS);
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      for (const line of stdout.split('\n')) {
        if (!line.includes(LISTENING_MARK)) continue;
        try {
          const parsed = (JSON.parse(line) as Record<string, { port: number; address: string }>)[LISTENING_MARK];
          if (parsed !== undefined) resolve(parsed);
        } catch {
          // an incomplete line: wait for the rest
        }
      }
    });
    child.once('exit', () => resolve(undefined));
  });
  const problems: string[] = [];
  const server = await listening;
  clearTimeout(deadline);
  const report = (): string => `--- stdout ---\n${tail(stdout)}\n--- stderr ---\n${tail(stderr)}`;
  try {
    if (server === undefined) {
      if (!(await exited(child, 0))) {
        problems.push(`neither listened nor exited within ${START_DEADLINE_MS / 1000} s (a block that does not listen must end by itself)`);
      } else if (child.exitCode !== 0) {
        problems.push(`exited with ${child.exitCode === null ? `signal ${child.signalCode}` : `code ${child.exitCode}`} without listening`);
      }
    } else {
      const response = await getOnce(server.address, server.port, getPath);
      if (response.error !== undefined) problems.push(`GET ${getPath} failed: ${response.error}`);
      else if ((response.status ?? 0) >= 500) problems.push(`GET ${getPath} answered ${response.status}`);
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      if (await exited(child, 0)) {
        problems.push(`exited (${child.exitCode === null ? `signal ${child.signalCode}` : `code ${child.exitCode}`}) after listening on ${server.port}`);
      }
    }
  } finally {
    await stop(child);
  }
  // All of stderr, up to its end (bounded: a grandchild could hold the pipe open).
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([streamsClosed, new Promise((r) => (grace = setTimeout(r, 2000)))]);
  clearTimeout(grace);
  if (/Error|[Uu]ncaught/.test(stderr)) problems.push('wrote an error to stderr');
  if (problems.length > 0) problems.push(report());
  return problems;
}

describe('the packed package in a TypeScript consumer project', () => {
  let work: string;
  let tarball: string;
  let preload: string;
  let redis: TestRedis | undefined;
  /** A real 3-master cluster, for examples that read REDIS_CLUSTER. */
  let cluster: TestCluster | undefined;
  const installs = new Map<string, Promise<Installed>>();

  beforeAll(async () => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) {
      throw new Error('dist/ is missing: run `npm run build` (npm test does it for you)');
    }
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'express-sse-hub-consumer-'));
    preload = path.join(work, 'listen-preload.cjs');
    fs.writeFileSync(preload, LISTEN_PRELOAD);
    const packed = await exec('npm', ['pack', '--pack-destination', work, '--json', '--loglevel=error'], ROOT, 2 * 60_000, npmEnv());
    if (packed.code !== 0) throw new Error(`npm pack failed (exit ${packed.code}):\n${tail(packed.stderr)}`);
    const [info] = JSON.parse(packed.stdout) as { filename: string }[];
    if (info === undefined) throw new Error(`npm pack reported no tarball:\n${packed.stdout}`);
    tarball = path.join(work, info.filename);
    for (const ts of TYPESCRIPTS) {
      if (ts.unavailable !== undefined) continue;
      const installing = install(path.join(work, ts.dir), tarball, ts);
      installing.catch(() => undefined); // awaited (and reported) by that TypeScript's tests
      installs.set(ts.dir, installing);
    }
    if (BLOCKS.some((b) => needsRedis(b.code))) redis = await startRedis();
    if (BLOCKS.some((b) => b.code.includes('REDIS_CLUSTER'))) cluster = await startRedisCluster({ masters: 3 });
  }, 5 * 60_000);

  afterAll(async () => {
    await Promise.allSettled([...installs.values()]);
    await Promise.all([...children].map(stop));
    if (redis?.ownServer === true) await redis.stop();
    await cluster?.stop();
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('finds TypeScript examples in README.md', () => {
    expect(BLOCKS.length).toBeGreaterThan(0);
  });

  describe.each(TYPESCRIPTS)('with $name', (ts) => {
    if (ts.unavailable !== undefined) {
      console.warn(`${ts.name} consumer tests skipped: ${ts.unavailable}`);
      it.skip(`typechecks and runs the README examples (skipped: ${ts.unavailable})`, () => undefined);
      return;
    }
    let installed: Installed;

    beforeAll(async () => {
      const installing = installs.get(ts.dir);
      if (installing === undefined) throw new Error(`${ts.spec} was not installed (see the first beforeAll)`);
      installed = await installing;
    }, 5 * 60_000);

    describe.each(FLAVOURS)('as a $name project', (flavour) => {
      let project: Project;
      const where = (): string => `${installed.version}, ${flavour.name}`;

      beforeAll(async () => {
        project = await prepareProject(installed, flavour);
      }, 5 * 60_000);

      it('finds no errors in the published declaration files with skipLibCheck off', () => {
        const elsewhere = [...project.diagnostics].filter(([file]) => file !== CONSUMER_FILE && !BLOCKS.some((b) => b.fileName === file));
        if (elsewhere.length > 0) {
          throw new Error(`tsc (${where()}) reports errors outside the examples:\n${elsewhere.flatMap(([, d]) => d).join('\n')}`);
        }
        for (const check of project.checks) {
          if (check.code !== 0 && project.diagnostics.size === 0) {
            throw new Error(`tsc (${where()}) failed (exit ${check.code}) without diagnostics:\n${tail(check.stdout + check.stderr)}`);
          }
        }
      });

      it("typechecks a consumer of 'express-sse-hub' and 'express-sse-hub/redis' (res.sse.send, ChannelRegistry, RedisAdapter.connect)", () => {
        const errors = project.diagnostics.get(CONSUMER_FILE) ?? [];
        if (errors.length > 0) {
          throw new Error(`${CONSUMER_FILE} does not typecheck (${where()}):\n${errors.join('\n')}\n--- ${CONSUMER_FILE} ---\n${numbered(CONSUMER_CODE)}`);
        }
      });

      describe.each(BLOCKS.map((b) => [b.label, b] as const))('%s', (_label, block: ReadmeBlock) => {
        it('typechecks as pasted', () => {
          const errors = project.diagnostics.get(block.fileName) ?? [];
          if (errors.length > 0) {
            throw new Error(`${block.label} does not typecheck (${where()}):\n${errors.join('\n')}\n--- ${block.fileName} ---\n${numbered(block.code)}`);
          }
        });

        it('runs as pasted: listens and serves, or exits with code 0', async () => {
          const script = path.join(project.dir, 'out', block.fileName.replace(/\.ts$/, '.js'));
          if (!fs.existsSync(script)) {
            throw new Error(`${block.label}: tsc emitted no ${path.relative(project.dir, script)} (${where()}):\n${tail(project.emit.stdout + project.emit.stderr)}`);
          }
          if (needsRedis(block.code) && redis === undefined) {
            console.warn(`${block.label} not run: it needs Redis, and neither redis-server nor REDIS_URL is available`);
            return;
          }
          if (block.code.includes('REDIS_CLUSTER') && cluster === undefined) {
            console.warn(`${block.label} not run: it needs a Redis Cluster, and redis-server or redis-cli is missing`);
            return;
          }
          // The environment of someone trying the example: not jest's NODE_ENV=test (which, for one,
          // silences Express's error log), no PORT or REDIS_URL but ours.
          const env: NodeJS.ProcessEnv = { ...process.env };
          delete env.NODE_ENV;
          delete env.PORT;
          delete env.REDIS_URL;
          delete env.REDIS_CLUSTER;
          if (redis !== undefined) env.REDIS_URL = redis.url;
          if (cluster !== undefined) env.REDIS_CLUSTER = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
          const problems = await runExample(script, project.dir, preload, env, firstGetPath(block.code));
          if (problems.length > 0) {
            throw new Error(`${block.label} does not run as pasted (${where()}):\n${problems.join('\n')}\n--- ${block.fileName} ---\n${numbered(block.code)}`);
          }
        });
      });
    });
  });
});
