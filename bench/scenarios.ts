// The scenarios the benchmarks share (bench/run.ts, bench/compare.ts): a target server in a
// process of its own (bench/server.ts), a load generator in another (bench/sse-clients.ts) that
// holds N raw HTTP connections and checks that every client got every event once and in order,
// and what each scenario measures.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { startServer, stopServer } from './process';

export interface Scenario {
  /** Events per client in the burst and multi scenarios. */
  readonly burstEvents: number;
  /** Events of the steady scenario, one every `steadyIntervalMs`. */
  readonly steadyEvents: number;
  readonly steadyIntervalMs: number;
  /** Channels of the multi scenario; each client joins 3 of them on one connection. */
  readonly multiChannels: number;
  /** Environment of the target server (bench/compare.ts points SSE_HUB_DIST at a build). */
  readonly env?: NodeJS.ProcessEnv;
}

interface LoaderMessage {
  ready?: boolean;
  counts?: number[];
  errors?: number;
  latencies?: number[];
}

interface Session {
  base: string;
  loader: ChildProcess;
  /** Resolves with the loader's final report. */
  report: Promise<LoaderMessage>;
}

/** Runs that lost, duplicated or reordered events (the caller exits non-zero if any). */
export const failures: string[] = [];

function startTarget(target: string, scenario: Scenario): Promise<{ child: ChildProcess; base: string }> {
  return startServer(path.join(__dirname, 'server.ts'), [target], scenario.env === undefined ? {} : { env: scenario.env });
}

async function json<T>(url: string, method = 'GET'): Promise<T> {
  return (await (await fetch(url, { method })).json()) as T;
}

/** Starts `target`, connects `clients` streams expecting `expect` events each, runs `body`. */
async function withTarget<T>(
  target: string,
  scenario: Scenario,
  clients: number,
  expect: number,
  latency: boolean,
  body: (s: Session) => Promise<T>,
  channels = 0,
): Promise<T> {
  const { child, base } = await startTarget(target, scenario);
  const loader = fork(path.join(__dirname, 'sse-clients.ts'), [], { execArgv: ['--import', 'tsx'] });
  try {
    const ready = new Promise<void>((resolve) => loader.on('message', (m: LoaderMessage) => m.ready === true && resolve()));
    const report = new Promise<LoaderMessage>((resolve) => loader.on('message', (m: LoaderMessage) => m.counts !== undefined && resolve(m)));
    loader.send({ url: `${base}/events`, clients, expect, latency, channels });
    await ready;
    while ((await json<{ count: number }>(`${base}/count`)).count < clients) await new Promise((r) => setTimeout(r, 20));
    return await body({ base, loader, report });
  } finally {
    if (loader.exitCode === null) loader.kill('SIGKILL');
    await stopServer(child);
  }
}

function check(target: string, clients: number, expect: number, report: LoaderMessage): void {
  const delivered = report.counts!.reduce((s, c) => s + c, 0);
  if ((report.errors ?? 0) > 0 || delivered !== clients * expect) {
    const failure = `${target} N=${clients}: ${delivered}/${clients * expect} delivered, ${report.errors} lost/duplicated/out of order`;
    failures.push(failure);
    console.error(failure);
  }
}

/** E events back to back, each broadcast awaited and followed by one event-loop turn. */
export async function burst(target: string, scenario: Scenario, clients: number): Promise<{ rate: number; cpu: number }> {
  const events = scenario.burstEvents;
  return withTarget(target, scenario, clients, events, false, async ({ base, report }) => {
    const started = performance.now();
    const { cpuUs } = await json<{ cpuUs: number }>(`${base}/burst?events=${events}`, 'POST');
    const result = await report;
    const seconds = (performance.now() - started) / 1000;
    check(target, clients, events, result);
    const delivered = clients * events;
    return { rate: delivered / seconds, cpu: cpuUs / delivered };
  });
}

/** Clients on 3 of K channels each, one connection; E events round-robin over the channels. */
export async function multi(target: string, scenario: Scenario, clients: number): Promise<{ rate: number } | undefined> {
  const probe = await startTarget(target, scenario);
  const { multi: supported } = await json<{ multi: boolean }>(`${probe.base}/multi`).finally(() => stopServer(probe.child));
  if (!supported) return undefined;
  const { burstEvents: events, multiChannels: channels } = scenario;
  // Each client is on 3 of the channels: it gets 3 of every K events.
  const perClient = (events * 3) / channels;
  return withTarget(
    target,
    scenario,
    clients,
    perClient,
    false,
    async ({ base, report }) => {
      const started = performance.now();
      await json(`${base}/burst?events=${events}&channels=${channels}`, 'POST');
      const result = await report;
      check(`${target} (multi)`, clients, perClient, result);
      return { rate: (clients * perClient) / ((performance.now() - started) / 1000) };
    },
    channels,
  );
}

/** An event every interval carrying its publish time: publish → receive latency. */
export async function steady(target: string, scenario: Scenario, clients: number): Promise<{ p50: number; p99: number }> {
  const { steadyEvents: events, steadyIntervalMs: interval } = scenario;
  return withTarget(target, scenario, clients, events, true, async ({ base, report }) => {
    await json(`${base}/steady?events=${events}&interval=${interval}`, 'POST');
    const result = await report;
    check(target, clients, events, result);
    const sorted = result.latencies!.sort((a, b) => a - b);
    const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
    return { p50: at(50), p99: at(99) };
  });
}

/** N idle connections: heap and RSS per connection after GC, minus the same server empty. */
export async function memory(target: string, scenario: Scenario, clients: number): Promise<{ heap: number; rss: number }> {
  const empty = await startTarget(target, scenario);
  const baseline = await json<{ heap: number; rss: number }>(`${empty.base}/memory`).finally(() => stopServer(empty.child));
  return withTarget(target, scenario, clients, 0, false, async ({ base: url }) => {
    const loaded = await json<{ heap: number; rss: number }>(`${url}/memory`);
    return { heap: (loaded.heap - baseline.heap) / clients, rss: (loaded.rss - baseline.rss) / clients };
  });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
