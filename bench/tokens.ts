// Benchmark (issue #14, resumable runs): token streaming, express-sse-hub runs against raw
// node:http and better-sse, in one run on this machine.
//   npx tsx bench/tokens.ts               1 000 concurrent runs × 150 tokens at 30 tokens/s (≈ 5 s)
//   npx tsx bench/tokens.ts --quick       200 runs × 60 tokens (the CI smoke test)
//   --runs N --tokens T --waves W --targets raw,express-sse-hub   to change or narrow a run
//   TOKENS_CPU_PROF=dir                   writes a --cpu-prof profile of every server process there
//
// One client connection per run. Each target runs in a fresh server process
// (bench/tokens-server.ts, which imports the built package: dist/); one load-generator process
// (bench/tokens-clients.ts) opens every stream first, then the runs start together (each at its
// own phase of the token interval), and it checks every stream: every token once, in order, then
// exactly one [DONE], then the end of the response. Exits non-zero if any stream failed, or if the
// memory of express-sse-hub did not stay flat over the waves.
//
//   timing   server CPU µs per token while the runs stream (process.cpuUsage ÷ tokens delivered),
//            CPU per run to open the connections, latency from a token's generation to its receipt
//            and from when it was due (by its run's schedule) to its receipt, event-loop delay
//   memory   a second fresh server: (heap after GC once half of the tokens arrived, i.e. with
//            every run active − heap after GC before any connection) ÷ runs
//   waves    express-sse-hub only, runs.ttl = 500 ms: W waves of runs, one after the other; after
//            each has ended and its logs expired, heap after GC and MemoryAdapter.size (which must
//            be back to 0): the last wave may end at most max(10 %, 1 MB) above the first
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { option, startServer, stopServer } from './process';
import type { LoaderMessage, Report, Wave } from './tokens-clients';


function count(name: string, fallback: number): number {
  const value = Number(option(name) ?? fallback);
  if (!(Number.isSafeInteger(value) && value > 0)) throw new Error(`--${name} must be a positive integer`);
  return value;
}

const quick = process.argv.includes('--quick');
const RUNS = count('runs', quick ? 200 : 1000);
const TOKENS = count('tokens', quick ? 60 : 150);
const WAVES = count('waves', 5);
const WAVE_TTL_MS = 500;
/** As in bench/tokens-server.ts. */
const TOKENS_PER_SECOND = 30;
const TARGETS = option('targets')?.split(',') ?? ['raw', 'better-sse', 'express-sse-hub'];
const HUB = 'express-sse-hub';
/** A pass that takes this much longer than the run's own duration has hung. */
const PASS_TIMEOUT_MS = (TOKENS / TOKENS_PER_SECOND) * 1000 * 4 + 30_000;

// tsx applies tsconfig.json's `paths`, which point express-sse-hub at src/: the servers run with a
// tsconfig without them, so that they import the built package (dist/) as a user would.
const SERVER_ENV = { ...process.env, TSX_TSCONFIG_PATH: path.join(__dirname, 'tokens.tsconfig.json') };

interface State {
  connections: number;
  runs: number | null;
  size: number | null;
}
interface Memory extends State {
  heap: number;
  rss: number;
}

/** CPU time used by every process of the machine so far (Linux: /proc/stat), µs; NaN elsewhere. */
function machineCpuUs(): number {
  try {
    // cpu  user nice system idle iowait irq softirq steal …, in USER_HZ (1/100 s)
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const [user, nice, system, , , irq, softirq] = fields as [number, number, number, number, number, number, number];
    return (user + nice + system + irq + softirq) * 10_000;
  } catch {
    return Number.NaN;
  }
}

async function json<T>(url: string, method = 'GET'): Promise<T> {
  const res = await fetch(url, { method, signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status}`);
  return (await res.json()) as T;
}

function startTarget(target: string, ttl?: number): Promise<{ child: ChildProcess; base: string }> {
  const profile = process.env.TOKENS_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.TOKENS_CPU_PROF}`];
  return startServer(path.join(__dirname, 'tokens-server.ts'), [target, ...(ttl === undefined ? [] : [String(ttl)])], {
    nodeArgs: ['--expose-gc', '--import', 'tsx', ...profile],
    env: SERVER_ENV,
  });
}

/** The load generator, shared by every pass; waves are answered in order. */
class Loader {
  readonly #child = fork(path.join(__dirname, 'tokens-clients.ts'), [], { execArgv: ['--import', 'tsx'] });
  #listener: ((m: LoaderMessage) => void) | undefined;

  constructor() {
    this.#child.on('message', (m: LoaderMessage) => this.#listener?.(m));
  }

  /**
   * Runs one wave: `onReady` once every stream is open (it must start the runs: POST /go),
   * `onHalf` once half of the tokens arrived (the wave goes on meanwhile); both are awaited before
   * the report is returned.
   */
  async wave(wave: Wave, onReady: () => Promise<void>, onHalf?: () => Promise<void>): Promise<Report> {
    let hooks: Promise<void> = Promise.resolve();
    let hookError: Error | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const report = await new Promise<Report>((resolve, reject) => {
        timer = setTimeout(() => {
          const hung = (server: string): void => reject(new Error(`wave ${wave.prefix}: no report after ${PASS_TIMEOUT_MS} ms; server: ${server}`));
          json<State>(`${wave.base}/state`).then((state) => hung(JSON.stringify(state)), (error: unknown) => hung(String(error)));
        }, PASS_TIMEOUT_MS);
        const fail = (error: unknown): void => {
          hookError ??= error instanceof Error ? error : new Error(String(error));
          reject(hookError);
        };
        this.#listener = (m) => {
          if ('ready' in m) hooks = onReady().catch(fail);
          else if ('half' in m && onHalf !== undefined) hooks = hooks.then(onHalf).catch(fail);
          else if ('report' in m) resolve(m.report);
        };
        this.#child.send(wave);
      });
      await hooks;
      if (hookError !== undefined) throw hookError;
      return report;
    } finally {
      clearTimeout(timer);
      this.#listener = undefined;
    }
  }

  close(): void {
    this.#child.disconnect();
  }
}

let failures = 0;
function check(label: string, report: Report, runs: number): void {
  if (report.failedStreams > 0 || report.delivered !== runs * TOKENS) {
    failures += 1;
    console.error(`${label}: ${report.delivered}/${runs * TOKENS} tokens, ${report.failedStreams} stream(s) failed: ${report.problems.join('; ')}`);
  }
}

async function withServer<T>(target: string, ttl: number | undefined, body: (base: string) => Promise<T>): Promise<T> {
  const { child, base } = await startTarget(target, ttl);
  try {
    return await body(base);
  } finally {
    await stopServer(child);
  }
}

interface Row {
  target: string;
  delivered: number;
  /** Server CPU while the runs stream (after every connection is open), µs per token. */
  cpu: number;
  /** Server CPU to open the connections (and, for express-sse-hub, start and follow the runs), µs per run. */
  setup: number;
  /** Server CPU while the runs stream ÷ their wall time, % of one core. */
  busy: number;
  /** From the start of the runs to the last token received, s (TOKENS / 30 if the server keeps up). */
  wall: number;
  /** p99 event-loop delay of the server while the runs stream, ms. */
  lag: number;
  /** CPU of the other processes of the machine (not the server or the load generator) while the runs stream, % of one core. */
  others: number;
  p50: number;
  p99: number;
  dueP50: number;
  dueP99: number;
  heap: number;
  peak: number;
}

const go = (base: string) => async (): Promise<void> => void (await json(`${base}/go`, 'POST'));

async function measure(loader: Loader, target: string): Promise<Row> {
  const timing = await withServer(target, undefined, async (base) => {
    const cpu = (): Promise<{ cpuUs: number; lagP99: number }> => json(`${base}/cpu`);
    const before = (await cpu()).cpuUs;
    let open = 0;
    let started = 0;
    let machine = 0;
    const report = await loader.wave({ base, prefix: 't', runs: RUNS, tokens: TOKENS }, async () => {
      open = (await cpu()).cpuUs;
      started = performance.now();
      machine = machineCpuUs();
      await go(base)();
    });
    const wall = performance.now() - started;
    const { cpuUs: end, lagP99 } = await cpu();
    const others = machineCpuUs() - machine - (end - open) - report.cpuUs;
    check(`${target} (timing)`, report, RUNS);
    return {
      report,
      setup: (open - before) / RUNS,
      cpu: (end - open) / report.delivered,
      busy: (end - open) / (wall * 10),
      wall: wall / 1000,
      lag: lagP99,
      others: Math.max(0, others / (wall * 10)),
    };
  });
  // A forced GC stalls the server: memory is measured in a pass of its own.
  const heap = await withServer(target, undefined, async (base) => {
    const empty = await json<Memory>(`${base}/memory`);
    let loaded: Memory | undefined;
    const report = await loader.wave({ base, prefix: 'm', runs: RUNS, tokens: TOKENS }, go(base), async () => {
      loaded = await json<Memory>(`${base}/memory`);
    });
    check(`${target} (memory)`, report, RUNS);
    if (loaded?.connections !== RUNS) {
      failures += 1;
      console.error(`${target}: ${loaded?.connections ?? 'no'} connections open at half time, not ${RUNS}`);
    }
    return loaded === undefined ? Number.NaN : (loaded.heap - empty.heap) / RUNS;
  });
  const { report } = timing;
  const { cpu, setup, busy, wall, lag, others } = timing;
  const { delivered, p50, p99, dueP50, dueP99, peak } = report;
  return { target, delivered, cpu, setup, busy, wall, lag, others, p50, p99, dueP50, dueP99, heap, peak };
}

interface WavePoint extends Memory {
  wave: string;
  delivered: number;
  expiredAfterMs: number;
}

/** express-sse-hub: waves of runs with a short runs.ttl; memory after each wave's logs expired. */
async function waves(loader: Loader): Promise<WavePoint[]> {
  return withServer(HUB, WAVE_TTL_MS, async (base) => {
    const points: WavePoint[] = [{ wave: 'before', delivered: 0, expiredAfterMs: 0, ...(await json<Memory>(`${base}/memory`)) }];
    for (let w = 1; w <= WAVES; w += 1) {
      const report = await loader.wave({ base, prefix: `w${w}-`, runs: RUNS, tokens: TOKENS }, go(base));
      check(`${HUB} (wave ${w})`, report, RUNS);
      // The logs expire runs.ttl after their end; poll (without GC) until none is left.
      const ended = performance.now();
      const deadline = ended + WAVE_TTL_MS + 10_000;
      let state = await json<State>(`${base}/state`);
      while ((state.size !== 0 || state.runs !== 0 || state.connections !== 0) && performance.now() < deadline) {
        await sleep(50);
        state = await json<State>(`${base}/state`);
      }
      const expiredAfterMs = performance.now() - ended;
      points.push({ wave: String(w), delivered: report.delivered, expiredAfterMs, ...(await json<Memory>(`${base}/memory`)) });
    }
    return points;
  });
}

// NaN (nothing measured) comes back from the load generator as null.
const int = (n: number | null): string => (n === null || !Number.isFinite(n) ? 'n/a' : Math.round(n).toLocaleString('en-US'));
const fixed = (n: number | null): string => (n === null || !Number.isFinite(n) ? 'n/a' : n.toFixed(2));
const signed = (n: number): string => `${n >= 0 ? '+' : '−'}${int(Math.abs(n))}`;

async function main(): Promise<void> {
  const started = performance.now();
  const cpus = os.cpus();
  console.log(`# express-sse-hub token-streaming benchmark${quick ? ' (quick)' : ''}`);
  console.log(
    `${cpus.length} cores (${cpus[0]?.model ?? '?'}), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}. ` +
      `The server and the load generator share these ${cpus.length} cores: latencies include the load generator's own delays, ` +
      `and CPU is the server's alone. Load average before: ${loadavg()} (anything else running skews the figures).\n`,
  );
  console.log(
    `${int(RUNS)} concurrent runs × ${TOKENS} tokens at ${TOKENS_PER_SECOND} tokens/s (≈ ${fixed(TOKENS / TOKENS_PER_SECOND)} s each, ` +
      `${int(RUNS * TOKENS_PER_SECOND)} tokens/s in all), one client connection per run; each target in a fresh server process.\n` +
      `- raw: node:http, a generator per request, one res.write per token. better-sse ${betterSseVersion()}: createSession + session.iterate(). ` +
      `express-sse-hub (dist/): the request starts registry.run(id, generator), then registry.followRun() streams it (its log is kept: resumable).\n` +
      `- Every stream is opened first; then the runs start together, each at its own phase of the 1/30 s token interval (run i of R ` +
      `at i/R of it), so that tokens come evenly, not 1 000 in the same millisecond.\n` +
      `- CPU µs/token: server process.cpuUsage from the start of the runs to the last token received ÷ tokens delivered; ` +
      `setup CPU µs/run: the same while the connections open (and the runs start), ÷ runs; server busy: CPU while streaming ÷ wall time, ` +
      `in % of one core (GC and libuv threads count too; near or above 100 %: the server is saturated and latency is queueing); ` +
      `event-loop delay p99: the server's (monitorEventLoopDelay) while streaming; streaming s: start of the runs → last token received ` +
      `(${fixed(TOKENS / TOKENS_PER_SECOND)} s if the server keeps up).\n` +
      `- other processes: CPU of the rest of the machine (/proc/stat, less the server and the load generator) while streaming, ` +
      `in % of one core: more than a few % means someone else's work skewed that row.\n` +
      `- Latency p50/p99: token generation (inside the server) → receipt. due→receipt: from when the token was due by its run's ` +
      `30 tokens/s schedule → receipt; it adds how late a busy server ran the generator (a real upstream's tokens wait that long ` +
      `to be read), which generation → receipt cannot see.\n` +
      `- heap B/run: a second pass, (heap after GC when half of the tokens arrived − heap after GC before any connection) ÷ runs; ` +
      `for express-sse-hub it includes the runs' logs so far (≈ ${Math.floor(TOKENS / 2)} tokens each).\n`,
  );
  const loader = new Loader();
  try {
    const rows: Row[] = [];
    for (const target of TARGETS) rows.push(await measure(loader, target));
    const raw = rows.find((r) => r.target === 'raw');
    console.log(
      '| target | runs | tokens delivered | CPU µs/token | × raw | p50 ms | p99 ms | heap B/run | ' +
        'due→receipt p50 ms | due→receipt p99 ms | setup CPU µs/run | server busy | event-loop delay p99 ms | streaming s | peak open streams | other processes |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const row of rows) {
      const ratio = raw === undefined ? '' : (row.cpu / raw.cpu).toFixed(2);
      console.log(
        `| ${row.target} | ${int(RUNS)} | ${int(row.delivered)} | ${fixed(row.cpu)} | ${ratio} | ${fixed(row.p50)} | ${fixed(row.p99)} | ${int(row.heap)} | ` +
          `${fixed(row.dueP50)} | ${fixed(row.dueP99)} | ${int(row.setup)} | ${int(row.busy)} % | ${fixed(row.lag)} | ${fixed(row.wall)} | ${int(row.peak)} | ${int(row.others)} % |`,
      );
    }
    console.log('');

    if (TARGETS.includes(HUB)) {
      const points = await waves(loader);
      console.log(
        `## express-sse-hub: memory as runs start, end and expire\n\n` +
          `${WAVES} waves of ${int(RUNS)} runs × ${TOKENS} tokens, one after the other, runs.ttl = ${WAVE_TTL_MS} ms; ` +
          `after each wave ended and its logs expired: heap after GC, MemoryAdapter.size (logs held), stats().runs, stats().connections.\n`,
      );
      console.log('| after wave | tokens delivered | logs expired after ms | heap after GC (B) | Δ vs wave 1 (B) | adapter.size | runs | connections |');
      console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
      const first = points[1]!;
      for (const p of points) {
        const delta = p.wave === 'before' ? '' : signed(p.heap - first.heap);
        console.log(`| ${p.wave} | ${int(p.delivered)} | ${p.wave === 'before' ? '' : int(p.expiredAfterMs)} | ${int(p.heap)} | ${delta} | ${p.size} | ${p.runs} | ${p.connections} |`);
      }
      const last = points[points.length - 1]!;
      const allowed = Math.max(0.1 * first.heap, 1024 * 1024);
      const held = points.slice(1).filter((p) => p.size !== 0 || p.runs !== 0 || p.connections !== 0);
      console.log(`\nLast wave − first: ${signed(last.heap - first.heap)} B (allowed: ${int(allowed)} B, the larger of 10 % and 1 MB).`);
      if (last.heap - first.heap > allowed) {
        failures += 1;
        console.error(`express-sse-hub: heap grew by ${int(last.heap - first.heap)} B from wave 1 to wave ${WAVES}`);
      }
      if (held.length > 0) {
        failures += 1;
        console.error(`express-sse-hub: logs, runs or connections still held after wave(s) ${held.map((p) => p.wave).join(', ')}`);
      }
    }
  } finally {
    loader.close();
  }
  console.log(`\nTotal ${fixed((performance.now() - started) / 1000)} s; load average ${loadavg()} at the end.`);
  if (failures > 0) {
    console.error(`${failures} check(s) failed`);
    process.exit(1);
  }
  console.log('Every stream received every token exactly once, in order, then one [DONE], in every pass.');
}

function loadavg(): string {
  return os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(', ');
}

function betterSseVersion(): string {
  // Its package.json is not among its exports: read it beside its entry point.
  const file = path.join(path.dirname(require.resolve('better-sse')), '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
