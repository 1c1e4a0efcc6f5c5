// Benchmark: the browser client's stream parser on one large event, against eventsource-parser.
//   npx tsx bench/client-parser.ts
// One event of 1 and 8 MiB of data on a single line, fed in 16 KiB and 64 KiB chunks (what a
// fetch body reader hands over), to each parser; the median of 5 runs per case, after a warm-up.
import { createParser } from 'eventsource-parser';
import { EventStreamParser } from '../src/client/parser';

const RUNS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function time(feed: (chunks: string[]) => number, chunks: string[], bytes: number): number {
  const runs: number[] = [];
  for (let i = 0; i <= RUNS; i += 1) {
    const started = performance.now();
    const got = feed(chunks);
    const took = performance.now() - started;
    if (got !== bytes) throw new Error(`parsed ${got} bytes of data, expected ${bytes}`);
    if (i > 0) runs.push(took); // the first is the warm-up
  }
  return median(runs);
}

const ours = (chunks: string[]): number => {
  let length = 0;
  const parser = new EventStreamParser('', (_id, _type, data) => (length = data.length), () => undefined);
  for (const chunk of chunks) parser.feed(chunk);
  return length;
};

const reference = (chunks: string[]): number => {
  let length = 0;
  const parser = createParser({ onEvent: (event) => (length = event.data.length) });
  for (const chunk of chunks) parser.feed(chunk);
  return length;
};

console.log('| data | chunks | express-sse-hub/client | eventsource-parser |');
console.log('| --- | --- | --- | --- |');
for (const mib of [1, 8]) {
  const bytes = mib * 1024 * 1024;
  const text = `data: ${'x'.repeat(bytes)}\n\n`;
  for (const size of [16, 64]) {
    const chunks: string[] = [];
    for (let at = 0; at < text.length; at += size * 1024) chunks.push(text.slice(at, at + size * 1024));
    console.log(`| ${mib} MiB | ${size} KiB | ${time(ours, chunks, bytes).toFixed(0)} ms | ${time(reference, chunks, bytes).toFixed(0)} ms |`);
  }
}
