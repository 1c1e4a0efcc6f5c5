// Benchmark (issue #26): the Durable Streams protocol served by express-sse-hub's router (on
// memory and on Redis) against the protocol's reference server (@durable-streams/server, in
// memory), in one run on this machine.
//   npx tsx bench/durable-streams.ts           500 live SSE readers, 400 appends; 200 catch-up readers of 2 000 appends
//   npx tsx bench/durable-streams.ts --quick   50 readers, 100 appends; 50 catch-up readers of 500 appends
//   --targets memory,reference                 to narrow a run
//   --repeats N                                rounds (default 3, --quick 1); targets take turns
//                                              in each round and the table shows medians
//
// Each target is a fresh server process (scripts/durable-streams/backends.ts); this process is
// the load generator.
//   live      R readers hold `live=sse` on one text/plain stream; one writer appends A lines
//             one after the other (each POST awaited), each carrying its send time → appends/s,
//             latency append → receipt at every reader (p50, p99), server CPU ms (from /proc);
//             every reader must get every line once, in order
//   catch-up  a stream of C appends of 100 bytes; R readers read it all at once from -1, page
//             by page until Stream-Up-To-Date → full reads/s, MB/s, server CPU ms; every read
//             must be byte-exact
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createParser } from 'eventsource-parser';
import { option } from './process';
import { startBackend, type Backend } from '../scripts/durable-streams/backends';

const quick = process.argv.includes('--quick');
const READERS = quick ? 50 : 500;
const APPENDS = quick ? 100 : 400;
const CATCHUP_READERS = quick ? 50 : 200;
const CATCHUP_APPENDS = quick ? 500 : 2000;
const REPEATS = Number(option('repeats') ?? (quick ? 1 : 3));
const TARGETS = (option('targets')?.split(',') ?? ['memory', 'redis', 'reference']) as Backend[];
const LABELS: Record<string, string> = { memory: 'express-sse-hub (memory)', redis: 'express-sse-hub (Redis)', reference: '@durable-streams/server (reference)' };

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** CPU time (user + system) of a process so far, ms (Linux /proc; NaN elsewhere). */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

function send(url: string, method: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface LiveResult {
  appendsPerSecond: number;
  p50: number;
  p99: number;
  cpu: number;
  errors: number;
}

async function live(base: string, pid: number): Promise<LiveResult> {
  const url = `${base}/v1/stream/bench-live-${Date.now()}`;
  const created = await send(url, 'PUT', undefined, { 'content-type': 'text/plain' });
  if (created.status !== 201) throw new Error(`PUT answered ${created.status}`);
  const tail = String(created.headers['stream-next-offset']);
  const latencies: number[] = [];
  const texts: string[] = Array.from({ length: READERS }, () => '');
  const requests: http.ClientRequest[] = [];
  let errors = 0;
  let done = 0;
  let allDone: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (allDone = resolve));
  const expectedLength = { value: Number.POSITIVE_INFINITY };
  await Promise.all(
    texts.map(
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const req = http.get(`${url}?offset=${encodeURIComponent(tail)}&live=sse`, { agent: false }, (res) => {
            if (res.statusCode !== 200) reject(new Error(`SSE answered ${res.statusCode}`));
            res.setEncoding('utf8');
            const parser = createParser({
              onEvent: (event) => {
                if (event.event !== 'data') return;
                const now = performance.now();
                for (const line of event.data.split('\n')) if (line !== '') latencies.push(now - Number(line.split(':')[1]));
                texts[i] += event.data;
                if (texts[i]!.length >= expectedLength.value) {
                  done += 1;
                  if (done === READERS) allDone();
                }
              },
            });
            res.on('data', (chunk: string) => parser.feed(chunk));
            resolve();
          });
          req.on('error', () => (errors += 1));
          requests.push(req);
        }),
    ),
  );
  let expected = '';
  const cpuBefore = cpuMs(pid);
  const started = performance.now();
  for (let n = 0; n < APPENDS; n += 1) {
    const line = `${n}:${performance.now().toFixed(3)}\n`;
    expected += line;
    const appended = await send(url, 'POST', line, { 'content-type': 'text/plain' });
    if (appended.status !== 204) errors += 1;
  }
  const elapsed = performance.now() - started;
  expectedLength.value = expected.length;
  if (texts.every((text) => text.length >= expected.length)) allDone();
  await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 30_000))]);
  const cpu = cpuMs(pid) - cpuBefore;
  for (const req of requests) req.destroy();
  const order = (text: string): string => text.split('\n').map((line) => line.split(':')[0]).join(',');
  const wanted = order(expected);
  errors += texts.filter((text) => order(text) !== wanted).length;
  latencies.sort((a, b) => a - b);
  return { appendsPerSecond: (APPENDS / elapsed) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99), cpu, errors };
}

interface CatchupResult {
  readsPerSecond: number;
  megabytesPerSecond: number;
  cpu: number;
  errors: number;
}

async function catchup(base: string, pid: number): Promise<CatchupResult> {
  const url = `${base}/v1/stream/bench-catchup-${Date.now()}`;
  await send(url, 'PUT', undefined, { 'content-type': 'application/octet-stream' });
  const parts: Buffer[] = [];
  for (let n = 0; n < CATCHUP_APPENDS; n += 1) {
    const part = Buffer.alloc(100, n % 251);
    parts.push(part);
    await send(url, 'POST', part, { 'content-type': 'application/octet-stream' });
  }
  const whole = Buffer.concat(parts);
  let errors = 0;
  const cpuBefore = cpuMs(pid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CATCHUP_READERS }, async () => {
      const pages: Buffer[] = [];
      let offset = '-1';
      for (;;) {
        const page = await send(`${url}?offset=${encodeURIComponent(offset)}`, 'GET');
        if (page.status !== 200) {
          errors += 1;
          return;
        }
        pages.push(page.body);
        offset = String(page.headers['stream-next-offset']);
        if (page.headers['stream-up-to-date'] === 'true') break;
      }
      if (!Buffer.concat(pages).equals(whole)) errors += 1;
    }),
  );
  const elapsed = performance.now() - started;
  return {
    readsPerSecond: (CATCHUP_READERS / elapsed) * 1000,
    megabytesPerSecond: (CATCHUP_READERS * whole.length) / 1e6 / (elapsed / 1000),
    cpu: cpuMs(pid) - cpuBefore,
    errors,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  if (!(Number.isSafeInteger(REPEATS) && REPEATS > 0)) throw new Error('--repeats must be a positive integer');
  console.log(`# Durable Streams: ${READERS} live SSE readers × ${APPENDS} appends; ${CATCHUP_READERS} catch-up readers of ${CATCHUP_APPENDS} × 100 B; median of ${REPEATS}\n`);
  const results = new Map<Backend, { live: LiveResult[]; catchup: CatchupResult[] }>(TARGETS.map((target) => [target, { live: [], catchup: [] }]));
  let failures = 0;
  for (let round = 0; round < REPEATS; round += 1) {
    for (const target of TARGETS) {
      const server = await startBackend(target);
      try {
        const l = await live(server.base, server.child.pid!);
        const c = await catchup(server.base, server.child.pid!);
        failures += l.errors + c.errors;
        results.get(target)!.live.push(l);
        results.get(target)!.catchup.push(c);
      } finally {
        await server.stop();
      }
    }
  }
  console.log('| server | appends/s | latency p50 (ms) | p99 (ms) | server CPU, live (ms) | catch-up reads/s | MB/s | server CPU, catch-up (ms) |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [target, { live: l, catchup: c }] of results) {
    const m = <T>(list: T[], pick: (item: T) => number): number => median(list.map(pick));
    console.log(
      `| ${LABELS[target] ?? target} | ${m(l, (r) => r.appendsPerSecond).toFixed(0)} | ${m(l, (r) => r.p50).toFixed(1)} | ${m(l, (r) => r.p99).toFixed(1)} | ` +
        `${m(l, (r) => r.cpu).toFixed(0)} | ${m(c, (r) => r.readsPerSecond).toFixed(0)} | ${m(c, (r) => r.megabytesPerSecond).toFixed(1)} | ${m(c, (r) => r.cpu).toFixed(0)} |`,
    );
  }
  agent.destroy();
  if (failures > 0) {
    console.error(`${failures} reader(s) missed, repeated or reordered data`);
    process.exit(1);
  }
  console.log('\nEvery live reader got every append once, in order; every catch-up read was byte-exact.');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
