// Benchmark: express-sse-hub against raw node:http and the peers, in one run, same machine.
//   npm run bench                 N = 100, 1 000, 5 000; 3 repeats
//   npm run bench -- --quick      N = 100, 1 000; 1 repeat, fewer events (the CI smoke test)
//   --sizes 1000,5000 --targets raw,express-sse-hub   to narrow a run (raw and better-sse are
//   needed for the ratio columns)
// Each target runs in its own fresh server process (bench/server.ts); a separate load-generator
// process (bench/sse-clients.ts) holds N raw HTTP connections and checks that every client got
// every event once and in order. Exits non-zero if any event was lost, duplicated or reordered.
//
// Scenarios:
//   burst    E events back to back, each broadcast awaited and followed by one event-loop turn
//            (a real source emits one event per macrotask) → deliveries/s, server CPU µs/delivery
//   steady   an event every 20 ms carrying its publish time → p50/p99 publish→receive latency
//   memory   N idle connections → heap and RSS per connection after GC, minus the empty server
//   multi    10 channels; each client joins 3 of them on one connection; E events round-robin
//            over the channels → deliveries/s (only targets that can multiplex a connection)
//   tokens   resumable runs against raw and better-sse (bench/tokens.ts, run after the others)
//   durable-streams  the Durable Streams router (memory, Redis) against the protocol's reference
//            server: live SSE readers of appends, catch-up reads (bench/durable-streams.ts)
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { option } from './process';
import { burst, failures, median, memory, multi, steady, type Scenario } from './scenarios';


const quick = process.argv.includes('--quick');
const SIZES = option('sizes')?.split(',').map(Number) ?? (quick ? [100, 1000] : [100, 1000, 5000]);
const BURST_EVENTS = quick ? 50 : 200;
const STEADY_EVENTS = quick ? 20 : 50;
const STEADY_INTERVAL_MS = 20;
const REPEATS = quick ? 1 : 3;
const MULTI_CHANNELS = 10;
/** --scenarios burst,steady,multi,memory,tokens,durable-streams runs only those (default: all). */
const SCENARIOS = new Set(option('scenarios')?.split(',') ?? ['burst', 'steady', 'multi', 'memory', 'tokens', 'durable-streams']);
const TARGETS = option('targets')?.split(',') ?? ['raw', 'express-sse-hub', 'better-sse', 'sse-channel', 'express-sse'];
const SCENARIO: Scenario = { burstEvents: BURST_EVENTS, steadyEvents: STEADY_EVENTS, steadyIntervalMs: STEADY_INTERVAL_MS, multiChannels: MULTI_CHANNELS };

// A scenario left out with --scenarios shows as n/a.
const int = (n: number): string => (Number.isNaN(n) ? 'n/a' : Math.round(n).toLocaleString('en-US'));
const fixed = (n: number): string => (Number.isNaN(n) ? 'n/a' : n.toFixed(2));
const spread = (values: number[], f: (n: number) => string): string => (values.length > 1 ? `${f(Math.min(...values))} – ${f(Math.max(...values))}` : '–');

async function main(): Promise<void> {
  console.log(`# express-sse-hub benchmark${quick ? ' (quick)' : ''}`);
  console.log(`${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; medians of ${REPEATS} run(s), spread as min – max.\n`);
  for (const clients of SIZES) {
    console.log(`## N = ${int(clients)} clients\n`);
    const rows: { target: string; rate: number[]; cpu: number[]; p50: number[]; p99: number[]; multi: number[]; heap: number; rss: number }[] = [];
    for (const target of TARGETS) {
      const row = { target, rate: [] as number[], cpu: [] as number[], p50: [] as number[], p99: [] as number[], multi: [] as number[], heap: Number.NaN, rss: Number.NaN };
      for (let r = 0; r < REPEATS; r += 1) {
        if (SCENARIOS.has('burst')) {
          const b = await burst(target, SCENARIO, clients);
          row.rate.push(b.rate);
          row.cpu.push(b.cpu);
        }
        if (SCENARIOS.has('steady')) {
          const s = await steady(target, SCENARIO, clients);
          row.p50.push(s.p50);
          row.p99.push(s.p99);
        }
        if (SCENARIOS.has('multi')) {
          const m = await multi(target, SCENARIO, clients);
          if (m !== undefined) row.multi.push(m.rate);
        }
      }
      if (SCENARIOS.has('memory')) {
        const m = await memory(target, SCENARIO, clients);
        row.heap = m.heap;
        row.rss = m.rss;
      }
      rows.push(row);
    }
    const ref = (name: string): (typeof rows)[number] | undefined => rows.find((r) => r.target === name);
    const raw = ref('raw');
    const better = ref('better-sse');
    // A ratio to a target left out with --targets, or to a scenario left out with --scenarios, is blank.
    const ratio = (value: number, base: number[] | undefined): string =>
      base === undefined || base.length === 0 || Number.isNaN(value) ? '' : (value / median(base)).toFixed(2);
    console.log(
      `burst: ${BURST_EVENTS} events per client · steady: ${STEADY_EVENTS} events every ${STEADY_INTERVAL_MS} ms · ` +
        `multi: ${BURST_EVENTS} events over ${MULTI_CHANNELS} channels, 3 per connection · memory: idle connections\n`,
    );
    console.log('| target | burst deliveries/s | spread | × raw | × better-sse | CPU µs/delivery | × raw | p50 ms | p99 ms | p99 spread | multi deliveries/s | × raw | heap B/conn | RSS B/conn |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const row of rows) {
      const rate = median(row.rate);
      const cpu = median(row.cpu);
      console.log(
        `| ${row.target} | ${int(rate)} | ${spread(row.rate, int)} | ${ratio(rate, raw?.rate)} | ${ratio(rate, better?.rate)} | ` +
          `${fixed(cpu)} | ${ratio(cpu, raw?.cpu)} | ${fixed(median(row.p50))} | ${fixed(median(row.p99))} | ` +
          `${spread(row.p99, fixed)} | ${row.multi.length === 0 ? 'n/a' : int(median(row.multi))} | ` +
          `${row.multi.length === 0 ? '' : ratio(median(row.multi), raw?.multi)} | ${int(row.heap)} | ${int(row.rss)} |`,
      );
    }
    console.log('');
  }
  if (failures.length > 0) {
    console.error(`${failures.length} run(s) lost, duplicated or reordered events`);
    process.exit(1);
  }
  console.log('Every client received every event exactly once, in order, in every run.');
  if (SCENARIOS.has('tokens')) await script('Token streaming', 'tokens.ts');
  if (SCENARIOS.has('durable-streams')) await script('Durable Streams', 'durable-streams.ts');
}

// The token-streaming (resumable runs) and Durable Streams scenarios have scripts of their own.
async function script(title: string, file: string): Promise<void> {
  console.log(`\n# ${title} (bench/${file})\n`);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, file), ...(quick ? ['--quick'] : [])], { stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) process.exit(code ?? 1);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
