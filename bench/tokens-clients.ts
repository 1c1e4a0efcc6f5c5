// Load generator of the token-streaming benchmark (bench/tokens.ts): a child process (node
// --import tsx) that, for each request of its parent, opens one raw HTTP stream per run, parses
// the frames cheaply and checks per stream that every token arrived once and in order, followed by
// exactly one [DONE], and that the server then ended the response.
// Parent → { base, prefix, runs, tokens }  (any number of times, one after the other)
// Child  → { ready } once every stream is open (the parent then starts the runs with POST /go),
//          { half } once half of all tokens arrived, then a Report.
// Stream c of R asks for phase c / R: the runs' tokens are spread evenly over each 1/30 s.
import http from 'node:http';
import { onFrames } from './process';

export interface Wave {
  /** http://127.0.0.1:port */
  base: string;
  /** Run ids are `${prefix}${i}`: unique over the waves of one server. */
  prefix: string;
  runs: number;
  tokens: number;
}

export interface Report {
  /** Tokens received, over all streams. */
  delivered: number;
  /** Streams with a lost, duplicated or reordered token, a missing or repeated end, or an error. */
  failedStreams: number;
  /** The first few problems, for the log. */
  problems: string[];
  /** Generation → receipt, ms. */
  p50: number;
  p99: number;
  max: number;
  /** Due (by the 30 tokens/s schedule) → receipt, ms: includes how late the server generated it. */
  dueP50: number;
  dueP99: number;
  /** From the first request to the last stream open, ms. */
  rampMs: number;
  /** Most streams open at once. */
  peak: number;
  /** CPU of this process from all streams open to the last one ended (user + system), µs. */
  cpuUs: number;
}

export type LoaderMessage = { ready: true } | { half: true } | { report: Report };

function now(): number {
  return performance.timeOrigin + performance.now();
}

/** What the wave in progress has done, for a parent that gave up on it. */
let progress = (): string => 'idle';

// Connect in batches: a burst of thousands of SYNs overflows the listen backlog.
const BATCH = 200;

function runWave({ base, prefix, runs, tokens }: Wave, send: (m: LoaderMessage) => void): Promise<Report> {
  const latencies = new Float64Array(runs * tokens);
  const fromDue = new Float64Array(runs * tokens);
  let delivered = 0;
  let open = 0;
  let settled = 0;
  let current = 0;
  let peak = 0;
  let rampMs = Number.NaN;
  const started = performance.now();
  let cpuAtReady = process.cpuUsage();
  let halfSent = false;
  let failedStreams = 0;
  const problems: string[] = [];
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  progress = () => `${prefix}: ${open}/${runs} streams opened, ${settled} ended, ${delivered}/${runs * tokens} tokens; ${problems.join('; ')}`;
  return new Promise((resolve) => {
    const finish = (): void => {
      settled += 1;
      if (settled < runs) return;
      agent.destroy();
      const kept = Math.min(delivered, latencies.length);
      const percentile = (values: Float64Array) => {
        const sorted = values.subarray(0, kept).sort();
        return (p: number): number => (kept === 0 ? Number.NaN : sorted[Math.min(kept - 1, Math.floor((p / 100) * kept))]!);
      };
      const at = percentile(latencies);
      const due = percentile(fromDue);
      const cpu = process.cpuUsage(cpuAtReady);
      const cpuUs = cpu.user + cpu.system;
      resolve({ delivered, failedStreams, problems, p50: at(50), p99: at(99), max: at(100), dueP50: due(50), dueP99: due(99), rampMs, peak, cpuUs });
    };
    const connect = (c: number): void => {
      const id = `${prefix}${c}`;
      let failed = false;
      const fail = (why: string): void => {
        if (failed) return;
        failed = true;
        failedStreams += 1;
        if (problems.length < 10) problems.push(`${id}: ${why}`);
      };
      let opened = false;
      let over = false;
      const settle = (): void => {
        if (over) return;
        over = true;
        if (opened) current -= 1;
        finish();
      };
      const onOpen = (): void => {
        if (opened) return;
        opened = true;
        open += 1;
        current += 1;
        peak = Math.max(peak, current);
        if (open === runs) {
          rampMs = performance.now() - started;
          cpuAtReady = process.cpuUsage();
          send({ ready: true });
        }
        else if (open % BATCH === 0) for (let k = open; k < Math.min(open + BATCH, runs); k += 1) connect(k);
      };
      const req = http.get(`${base}/runs/${id}?tokens=${tokens}&phase=${c / runs}`, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
        onOpen();
        if (res.statusCode !== 200) fail(`status ${res.statusCode}`);
        let last = -1;
        let count = 0;
        let ends = 0;
        const unframed = onFrames(res, (frame) => {
          // Targets differ in the fields around it (event:, id:); the payload is {"t":…,"d":…,"n":…,"text":…}.
          const at = frame.indexOf('{"t":');
          if (at !== -1) {
            const { t, d, n } = JSON.parse(frame.slice(at, frame.indexOf('}', at) + 1)) as { t: number; d: number; n: number };
            if (n !== last + 1) fail(`token ${n} after ${last}`);
            if (ends > 0) fail(`token ${n} after the end`);
            last = n;
            count += 1;
            if (delivered < latencies.length) {
              const received = now();
              latencies[delivered] = received - t;
              fromDue[delivered] = received - d;
            }
            delivered += 1;
            if (!halfSent && delivered * 2 >= runs * tokens) {
              halfSent = true;
              send({ half: true });
            }
          } else if (frame.includes('[DONE]')) {
            ends += 1;
          }
        });
        res.on('end', () => {
          if (count !== tokens) fail(`${count}/${tokens} tokens`);
          if (ends !== 1) fail(`${ends} [DONE]`);
          if (unframed().trim() !== '') fail(`unterminated frame ${JSON.stringify(unframed().slice(0, 80))}`);
          settle();
        });
        res.on('error', (error) => fail(error.message));
        // After 'end' this changes nothing; without one, the stream was cut.
        res.on('close', () => {
          if (!over) fail(`closed after ${count}/${tokens} tokens, no end`);
          settle();
        });
      });
      req.on('error', (error) => {
        fail(error.message);
        onOpen();
        settle();
      });
    };
    for (let c = 0; c < Math.min(BATCH, runs); c += 1) connect(c);
  });
}

// Waves one after the other, in the order they were asked for.
let queue = Promise.resolve();
// Once the parent is gone (it gave up), there is no one to tell.
const send = (m: LoaderMessage): void => {
  if (process.connected) process.send!(m);
};
process.on('message', (wave: Wave) => {
  queue = queue.then(async () => {
    const report = await runWave(wave, send);
    progress = () => 'idle';
    send({ report });
  });
});
process.on('disconnect', () => {
  if (progress() !== 'idle') console.error(`load generator stopped during a wave: ${progress()}`);
  process.exit(0);
});
